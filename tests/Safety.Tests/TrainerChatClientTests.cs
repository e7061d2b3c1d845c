using Microsoft.Extensions.AI;
using Qwen35.Data;
using Qwen35.Models.Generation;
using Qwen35.Safety.Clients;
using Qwen35.Training;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Qwen35.Safety.Tests;

/// <summary>
/// <see cref="TrainerChatClient"/> on <c>builtin:tiny</c> (random weights from seed 42, the byte tokenizer): the
/// prompt is the Qwen3.5 template's text with thinking off, a greedy answer is exactly what <see cref="TokenGenerator"/>
/// gives for that prompt, batching does not change greedy answers, a seed repeats a sampled answer, and
/// MaxOutputTokens / StopSequences end answers where they say.
/// </summary>
[NonParallelizable]
public class TrainerChatClientTests
{
    static readonly SessionOptions Tiny = new() { Model = Session.BuiltinTiny };
    TrainerChatClient _client = null!;

    [OneTimeSetUp]
    public void Load() => _client = new TrainerChatClient(Session.Open(Tiny)) { BatchSize = 3 };

    [OneTimeTearDown]
    public void Free() => _client.Dispose();

    static ChatMessage[] Ask(string question, string? system = null) => system is null
        ? [new ChatMessage(ChatRole.User, question)]
        : [new ChatMessage(ChatRole.System, system), new ChatMessage(ChatRole.User, question)];

    static ChatOptions Greedy(int max) => new() { Temperature = 0, MaxOutputTokens = max };

    static int[] Ids(ChatResponse r) => (int[])r.RawRepresentation!;

    [Test]
    public void The_prompt_is_the_Qwen35_template_with_thinking_off_or_on()
    {
        // The strings transformers' apply_chat_template gives for Qwen3.5 with add_generation_prompt=True.
        Assert.That(_client.RenderPrompt(Ask("Hi", "Be kind.")),
            Is.EqualTo("<|im_start|>system\nBe kind.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"));
        var thinking = new ChatOptions { AdditionalProperties = new() { [ChatSampling.EnableThinkingKey] = true } };
        Assert.That(_client.RenderPrompt(Ask("Hi"), thinking), Is.EqualTo("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n"));
        // Instructions become the system message when there is none.
        Assert.That(_client.RenderPrompt(Ask("Hi"), new ChatOptions { Instructions = "Be kind." }),
            Is.EqualTo(_client.RenderPrompt(Ask("Hi", "Be kind."))));
    }

    [Test]
    public async Task A_greedy_answer_is_TokenGenerators_on_the_rendered_prompt()
    {
        const int max = 24;
        var response = await _client.GetResponseAsync(Ask("What is 2+2?", "Answer briefly."), Greedy(max));

        // Independently: the same seeded model, the prompt written out by hand, the byte tokenizer, TokenGenerator.
        var tokenizer = ByteLevelTokenizer.BuiltIn();
        var prompt = tokenizer.Encode("<|im_start|>system\nAnswer briefly.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n");
        using var model = Session.Open(Tiny).LoadModel(Serilog.Core.Logger.None, 42);
        model.eval();
        GenerationResult expected;
        using (var step = new Qwen35StepModel(model))
            expected = new TokenGenerator(step).Generate([prompt], new GenerationOptions
            {
                MaxNewTokens = max, StopTokenIds = [tokenizer.EndOfTurnId, tokenizer.PadId], PadTokenId = tokenizer.PadId,
            });
        var ids = expected.NewTokens[0];
        var stopped = expected.FinishReasons[0] == FinishReason.StopToken;

        Assert.That(Ids(response), Is.EqualTo(ids));
        // The text: the ids before the stop token that the tokenizer knows (the tiny model's 512-id vocabulary is
        // padded past the byte tokenizer's 282 ids; transformers leaves such ids out of the text too).
        var body = (stopped ? ids[..^1] : ids).Where(id => id < tokenizer.VocabSize);
        Assert.That(response.Text, Is.EqualTo(tokenizer.Decode(body)));
        Assert.That(response.FinishReason, Is.EqualTo(stopped ? ChatFinishReason.Stop : ChatFinishReason.Length));
        Assert.That(response.Usage!.InputTokenCount, Is.EqualTo(prompt.Length));
        Assert.That(response.Usage.OutputTokenCount, Is.EqualTo(ids.Length));
        Assert.That(response.Messages.Single().Role, Is.EqualTo(ChatRole.Assistant));
    }

    [Test]
    public async Task Batched_greedy_answers_equal_one_at_a_time_answers()
    {
        // Five prompts of different lengths: batches of 3 + 2 with left padding, against five batches of 1.
        string[] questions = ["Hi", "How are you today?", "Tell me a story about a cat.", "x", "What is the capital of France, please?"];
        var conversations = questions.Select(q => (IEnumerable<ChatMessage>)Ask(q)).ToList();
        var batched = await _client.GetResponsesAsync(conversations, Greedy(16));
        using var single = new TrainerChatClient(Session.Open(Tiny)) { BatchSize = 1 };
        var alone = new List<ChatResponse>();
        foreach (var c in conversations) alone.Add(await single.GetResponseAsync(c, Greedy(16)));

        Assert.That(batched, Has.Count.EqualTo(questions.Length));
        Assert.That(batched.Select(Ids), Is.EqualTo(alone.Select(Ids)));
        Assert.That(batched.Select(r => r.Text), Is.EqualTo(alone.Select(r => r.Text)));
        // The answers are not all the same text (the prompts reached the model row by row).
        Assert.That(batched.Select(r => r.Text).Distinct().Count(), Is.GreaterThan(1));
    }

    [Test]
    public async Task A_seeded_sampled_answer_is_the_same_alone_in_a_batch_or_among_concurrent_calls()
    {
        // Per-row generators (vLLM's per-request seed): the batch a conversation lands in does not change its draw.
        var options = new ChatOptions { Temperature = 1.0f, TopP = 0.95f, Seed = 1234, MaxOutputTokens = 16 };
        string[] questions = ["Hi", "How are you today?", "Tell me a story about a cat.", "x"];
        var conversations = questions.Select(q => (IEnumerable<ChatMessage>)Ask(q)).ToList();
        using var single = new TrainerChatClient(Session.Open(Tiny)) { BatchSize = 1 };
        var alone = new List<int[]>();
        foreach (var c in conversations) alone.Add(Ids(await single.GetResponseAsync(c, options)));

        var batched = await _client.GetResponsesAsync(conversations, options);
        Assert.That(batched.Select(Ids), Is.EqualTo(alone));
        var concurrent = await Task.WhenAll(conversations.Select(c => _client.GetResponseAsync(c, options)));
        Assert.That(concurrent.Select(Ids), Is.EqualTo(alone));
    }

    [Test]
    public async Task A_seed_repeats_a_sampled_answer_and_another_seed_changes_it()
    {
        ChatOptions Sampled(long seed) => new() { Temperature = 1.0f, TopP = 0.95f, Seed = seed, MaxOutputTokens = 32 };
        var question = Ask("Say something.");
        var a = await _client.GetResponseAsync(question, Sampled(1234));
        var b = await _client.GetResponseAsync(question, Sampled(1234));
        var c = await _client.GetResponseAsync(question, Sampled(99));
        var greedy = await _client.GetResponseAsync(question, Greedy(32));
        Assert.That(Ids(b), Is.EqualTo(Ids(a)));
        Assert.That(Ids(c), Is.Not.EqualTo(Ids(a)));
        Assert.That(Ids(a), Is.Not.EqualTo(Ids(greedy)), "temperature 1 sampled, not argmax");
    }

    [Test]
    public async Task MaxOutputTokens_ends_the_answer_with_finish_reason_length()
    {
        var full = await _client.GetResponseAsync(Ask("Count to ten."), Greedy(40));
        Assert.That(Ids(full).Length, Is.GreaterThan(5), "the model does not stop by itself within 5 tokens");
        var cut = await _client.GetResponseAsync(Ask("Count to ten."), Greedy(5));
        Assert.That(cut.FinishReason, Is.EqualTo(ChatFinishReason.Length));
        Assert.That(cut.Usage!.OutputTokenCount, Is.EqualTo(5));
        Assert.That(Ids(cut), Is.EqualTo(Ids(full)[..5]), "the first 5 tokens of the longer greedy answer");
    }

    [Test]
    public async Task A_stop_sequence_cuts_the_answer_before_it()
    {
        var full = await _client.GetResponseAsync(Ask("Count to ten."), Greedy(40));
        var text = full.Text;
        Assert.That(text.Length, Is.GreaterThan(10));
        // A two-character stop text taken from the middle of the greedy answer: the answer ends before its first occurrence.
        var stop = text.Substring(6, 2);
        var options = Greedy(40);
        options.StopSequences = [stop];
        var cut = await _client.GetResponseAsync(Ask("Count to ten."), options);
        Assert.That(cut.Text, Is.EqualTo(text[..text.IndexOf(stop, StringComparison.Ordinal)]));
        Assert.That(cut.FinishReason, Is.EqualTo(ChatFinishReason.Stop));
    }

    [Test]
    public async Task A_model_in_training_mode_answers_in_eval_mode_and_is_left_in_training_mode()
    {
        // The in-training constructor: the caller's model, borrowed; its mode is the trainer's business.
        var session = Session.Open(Tiny);
        using var model = session.LoadModel(Serilog.Core.Logger.None, 42);
        model.train();
        using var client = new TrainerChatClient(model, session.Tokenizer, "live");
        var answer = await client.GetResponseAsync(Ask("Hi"), Greedy(12));
        Assert.That(model.training, Is.True);
        Assert.That(Ids(answer), Is.EqualTo(Ids(await _client.GetResponseAsync(Ask("Hi"), Greedy(12)))));
        Assert.That(client.GetService<ChatClientMetadata>()!.DefaultModelId, Is.EqualTo("live"));
    }
}
