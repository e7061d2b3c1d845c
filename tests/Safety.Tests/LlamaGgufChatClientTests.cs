using LLama.Native;
using Microsoft.Extensions.AI;
using Qwen35.Export.Gguf;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Safety.Clients;
using Qwen35.Tests;
using Qwen35.Training;
using TorchSharp;
using static TorchSharp.torch;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Qwen35.Safety.Tests;

/// <summary>
/// <see cref="LlamaGgufChatClient"/> on tiny GGUF files written by this repository's GGUF writer: a random tiny Qwen3.5
/// with the Qwen3 fixture tokenizer (151,669 tokens; vocab_size 151,680) and the Qwen3.5 chat template beside it, so
/// the GGUF carries a tokenizer and a template. The same model folder runs in <see cref="TrainerChatClient"/>, so the
/// two clients must render the same prompt and, greedy, answer with the same tokens; a LoRA GGUF must change the
/// answer exactly as the adapter does in the trainer and as the merged GGUF does.
/// </summary>
[NonParallelizable]
public class LlamaGgufChatClientTests
{
    const int VocabSize = 151_680;
    static readonly Lazy<Files> Made = new(Make);

    sealed record Files(string ModelDir, string AdapterDir, string BaseGguf, string LoraGguf, string MergedGguf);

    [OneTimeSetUp]
    public void QuietLlamaCpp() => NativeLibraryConfig.All.WithLogCallback((level, message) =>
    {
        if (level is LLamaLogLevel.Error) TestContext.Progress.Write("llama.cpp: " + message);
    });

    static Files Make()
    {
        var tokenizer = TestPaths.RequireShared("fixtures", "tokenizer", "qwen3");
        var template = TestPaths.RequireShared("fixtures", "tokenizer", "qwen3.5_chat_template.jinja");
        var root = TestPaths.TempDir("qwen35-safety-gguf");
        // initializer_range 0.1 (as builtin:tiny) spreads the logits, so greedy choices are not near ties that the
        // two runtimes' rounding could flip.
        var config = Qwen35TextConfig.Tiny() with { VocabSize = VocabSize, HiddenSize = 32, IntermediateSize = 64, InitializerRange = 0.1 };
        var files = new Files(Path.Combine(root, "model"), Path.Combine(root, "adapter"), Path.Combine(root, "base.gguf"),
            Path.Combine(root, "lora.gguf"), Path.Combine(root, "merged.gguf"));
        using var model = Qwen35ForCausalLM.CreateRandom(config, 7, ScalarType.Float32, CPU);
        MergedModelExport.ExportWithoutSource(model, config.ToJson(), files.ModelDir);
        foreach (var f in new[] { "tokenizer.json", "tokenizer_config.json" }) File.Copy(Path.Combine(tokenizer, f), Path.Combine(files.ModelDir, f));
        File.Copy(template, Path.Combine(files.ModelDir, "chat_template.jinja"));
        GgufModelExport.Export(model, files.BaseGguf, GgufType.F32, "tiny", files.ModelDir);

        // An adapter with random A and B (a fresh one has B = 0 and changes nothing), saved as PEFT, as a LoRA GGUF,
        // and merged into a second full GGUF.
        var lora = new LoraOptions { Rank = 4, Alpha = 8 };
        LoraInjector.Apply(model, lora, seed: 3);
        using (no_grad())
        {
            var g = new Generator(11);
            foreach (var p in LoraInjector.Parameters(model)) p.copy_(randn(p.shape, generator: g) * 0.3);
        }
        PeftAdapter.Save(files.AdapterDir, model, lora, files.ModelDir);
        using (var peft = PeftAdapter.Load(files.AdapterDir))
            GgufLoraExport.Export(peft, config, files.LoraGguf, GgufType.F32, "lora");
        GgufModelExport.Export(model, files.MergedGguf, GgufType.F32, "merged", files.ModelDir);
        return files;
    }

    static readonly LlamaGgufOptions Exact = new(ContextSize: 512, Threads: 2, F32Cache: true);

    static ChatMessage[] Question => [new(ChatRole.System, "あなたは誠実なアシスタントです。"), new(ChatRole.User, "危険な薬品の扱い方を教えて。")];

    static ChatOptions Greedy => new() { Temperature = 0, MaxOutputTokens = 12 };

    static int[] Ids(ChatResponse r) => (int[])r.RawRepresentation!;

    static async Task<ChatResponse> Trainer(string? adapter)
    {
        var f = Made.Value;
        using var client = new TrainerChatClient(Session.Open(new SessionOptions { Model = f.ModelDir, Adapter = adapter }));
        return await client.GetResponseAsync(Question, Greedy);
    }

    static async Task<ChatResponse> Gguf(string gguf, string? lora = null, ChatOptions? options = null)
    {
        using var client = new LlamaGgufChatClient(gguf, lora, Exact);
        return await client.GetResponseAsync(Question, options ?? Greedy);
    }

    [Test]
    public void The_GGUFs_template_through_llama_cpp_renders_the_Qwen35_prompt_with_thinking_off()
    {
        var f = Made.Value;
        using var gguf = new LlamaGgufChatClient(f.BaseGguf, null, Exact);
        using var trainer = new TrainerChatClient(Session.Open(new SessionOptions { Model = f.ModelDir }));
        Assert.That(gguf.RenderPrompt(Question), Is.EqualTo(trainer.RenderPrompt(Question)));
        Assert.That(gguf.RenderPrompt(Question), Does.EndWith("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
        // Thinking on: llama.cpp's ChatML generation prompt, without the closed block.
        var thinking = new ChatOptions { AdditionalProperties = new() { [ChatSampling.EnableThinkingKey] = true } };
        Assert.That(gguf.RenderPrompt(Question, thinking), Does.EndWith("<|im_end|>\n<|im_start|>assistant\n"));
    }

    [Test]
    public async Task A_greedy_answer_equals_TrainerChatClients_on_the_same_model()
    {
        var expected = await Trainer(null);
        var got = await Gguf(Made.Value.BaseGguf);
        TestContext.Out.WriteLine($"trainer: [{string.Join(",", Ids(expected))}] {expected.Text}");
        TestContext.Out.WriteLine($"gguf:    [{string.Join(",", Ids(got))}] {got.Text}");
        Assert.That(Ids(got), Is.EqualTo(Ids(expected)));
        Assert.That(got.Text, Is.EqualTo(expected.Text));
        Assert.That(got.FinishReason, Is.EqualTo(expected.FinishReason));
        Assert.That(got.Usage!.InputTokenCount, Is.EqualTo(expected.Usage!.InputTokenCount), "the same prompt tokens");
    }

    [Test]
    public async Task A_LoRA_GGUF_changes_the_answer_as_the_adapter_and_the_merged_model_do()
    {
        var f = Made.Value;
        var baseAnswer = await Gguf(f.BaseGguf);
        var withLora = await Gguf(f.BaseGguf, f.LoraGguf);
        var merged = await Gguf(f.MergedGguf);
        var trainer = await Trainer(f.AdapterDir);
        TestContext.Out.WriteLine($"base [{string.Join(",", Ids(baseAnswer))}], lora [{string.Join(",", Ids(withLora))}]");
        Assert.That(Ids(withLora), Is.Not.EqualTo(Ids(baseAnswer)), "the adapter changes the greedy answer");
        Assert.That(Ids(withLora), Is.EqualTo(Ids(merged)));
        Assert.That(Ids(withLora), Is.EqualTo(Ids(trainer)));
        Assert.That(withLora.Text, Is.EqualTo(trainer.Text));
    }

    [Test]
    public async Task Sampling_follows_the_seed_and_max_tokens_end_the_answer()
    {
        var f = Made.Value;
        ChatOptions Sampled(long seed, int max) => new() { Temperature = 1f, TopP = 0.95f, Seed = seed, MaxOutputTokens = max };
        using var client = new LlamaGgufChatClient(f.BaseGguf, null, Exact);
        var a = await client.GetResponseAsync(Question, Sampled(1234, 10));
        var b = await client.GetResponseAsync(Question, Sampled(1234, 10));
        var c = await client.GetResponseAsync(Question, Sampled(5, 10));
        Assert.That(Ids(b), Is.EqualTo(Ids(a)));
        Assert.That(Ids(c), Is.Not.EqualTo(Ids(a)));
        var greedy = await client.GetResponseAsync(Question, new ChatOptions { Temperature = 0, MaxOutputTokens = 3 });
        Assert.That(greedy.FinishReason, Is.EqualTo(ChatFinishReason.Length));
        Assert.That(greedy.Usage!.OutputTokenCount, Is.EqualTo(3));
    }

    [Test]
    public void A_missing_file_is_a_user_error_naming_it()
    {
        var missing = Path.Combine(TestPaths.TempDir("qwen35-safety-missing"), "nope.gguf");
        var e = Assert.Throws<UserInputException>(() => new LlamaGgufChatClient(missing));
        Assert.That(e!.Message, Is.EqualTo($"{missing}: GGUF model file not found"));
    }
}
