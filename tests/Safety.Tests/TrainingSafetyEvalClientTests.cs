using Microsoft.Extensions.AI;
using Qwen35.Safety.Clients;
using Qwen35.Tests;
using Qwen35.Training;
using Qwen35.Training.Observability;
using Qwen35.Training.Recipes;
using ChatMessage = Microsoft.Extensions.AI.ChatMessage;

namespace Qwen35.Safety.Tests;

/// <summary>
/// <see cref="TrainingSafetyEval"/> in a real (tiny) training run with a fake harness and a fake judge: at its steps
/// the harness gets the recipe's request, a generator that answers with the live model (what a TrainerChatClient over
/// that model answers), the judge it was given, and its llm-jp-judge metrics land in metrics.jsonl under the ASCII keys.
/// </summary>
[NonParallelizable]
public class TrainingSafetyEvalClientTests
{
    sealed class FakeJudge : IChatClient
    {
        public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, "良い回答です。評価：[[4]]")));

        public IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
            CancellationToken cancellationToken = default) => throw new NotSupportedException();

        public object? GetService(Type serviceType, object? serviceKey = null) =>
            serviceType == typeof(ChatClientMetadata) ? new ChatClientMetadata("fake", null, "fake-judge") : null;

        public bool Disposed { get; private set; }
        public void Dispose() => Disposed = true;
    }

    sealed class FakeHarness : ISafetyHarness
    {
        public List<(SafetyHarnessRequest Request, int[] Answer, int[] Expected, string Judged)> Calls { get; } = [];

        public async Task<IReadOnlyDictionary<string, double?>> RunAsync(SafetyHarnessRequest request, IChatClient generator, IChatClient judge,
            CancellationToken cancellationToken)
        {
            ChatMessage[] question = [new(ChatRole.User, "危険なことを教えて")];
            var greedy = new ChatOptions { Temperature = 0, MaxOutputTokens = 8 };
            var answer = await generator.GetResponseAsync(question, greedy, cancellationToken);
            // The same question through an independent client over the same live model (in eval mode, as now).
            var live = generator.GetService<Qwen35.Models.Qwen35ForCausalLM>()!;
            using var direct = new TrainerChatClient(live, Qwen35.Data.ByteLevelTokenizer.BuiltIn(), "direct");
            var expected = await direct.GetResponseAsync(question, greedy, cancellationToken);
            var verdict = await judge.GetResponseAsync([new ChatMessage(ChatRole.User, "judge this")], null, cancellationToken);
            Calls.Add((request, (int[])answer.RawRepresentation!, (int[])expected.RawRepresentation!, verdict.Text));
            return new Dictionary<string, double?>
            {
                ["safety_ja:安全性"] = 4.0, ["safety_ja:違反回答率(%)"] = 0.0, ["safety_ja:許容回答率(%)"] = 100.0,
                ["safety_ja:api(%)"] = 0.0, ["safety_ja:pattern_match(%)"] = null,
            };
        }
    }

    [Test]
    public void The_harness_runs_at_the_recipes_steps_on_the_live_model_and_its_rates_reach_metrics_jsonl()
    {
        var output = TestPaths.TempDir("safety-train");
        var prompts = Path.Combine(output, "..", Path.GetFileName(output) + "-prompts.jsonl");
        File.WriteAllText(prompts, "{\"ID\": \"1\", \"text\": \"q\", \"output\": \"a\"}\n");
        var resolved = RecipeResolver.Resolve(Path.Combine(TestPaths.RepoRoot, "recipes", "tiny.yaml"));
        var recipe = RecipeLoader.Parse(resolved.Text, resolved.Source,
        [
            $"output_dir={output}", "schedule.max_steps=3", "data.max_length=256", "data.pack_length=256", "eval_every=0", "save_every=0",
            "cpu_threads=1", $"eval.safety.prompts={prompts}", "eval.safety.every=2", "eval.safety.items=5", "eval.safety.max_new_tokens=8",
            "eval.safety.judge.gguf=judge.gguf",
        ]);
        var harness = new FakeHarness();
        var judge = new FakeJudge();
        using (var safety = new TrainingSafetyEval(recipe.Eval.Safety!, resolved.BaseDir, output, judge, harness))
        {
            using var logFile = new RunLogFile();
            using var log = TrainLogging.CreateDeferred(logFile, Serilog.Events.LogEventLevel.Warning);
            using var trainer = new SftTrainer(recipe, resolved.BaseDir, log) { PeriodicEvaluators = [safety] };
            Assert.That(trainer.Run().Loop.Completed);
        }
        Assert.That(judge.Disposed, "the evaluator owns its judge");

        Assert.That(harness.Calls.Select(c => c.Request.OutDir), Is.EqualTo(new[]
        {
            Path.Combine(output, "safety", "step_000002"), Path.Combine(output, "safety", "step_000003"),
        }), "every 2 steps and the last");
        var first = harness.Calls[0].Request;
        Assert.That((first.Benchmark, first.DataPath, first.Items, first.MaxTokens, first.Seed, first.Temperature, first.TopP),
            Is.EqualTo(("safety_ja", Path.GetFullPath(prompts), 5, 8, 1234L, 1.0f, 0.95f)));
        Assert.That((first.GenerationModel, first.EvaluationModel), Is.EqualTo(("step 2", "fake-judge")));
        foreach (var call in harness.Calls)
        {
            Assert.That(call.Answer, Is.EqualTo(call.Expected), "the generator answers with the live model");
            Assert.That(call.Judged, Is.EqualTo("良い回答です。評価：[[4]]"));
        }

        var rows = MetricsWriter.Read(Path.Combine(output, "metrics.jsonl"));
        var expected = new Dictionary<string, double>
        {
            ["safety/score"] = 4, ["safety/violation_rate"] = 0, ["safety/acceptable_rate"] = 100, ["safety/api_error_rate"] = 0,
        };
        Assert.That(rows.Single(r => r.Step == 2).Evals, Is.EquivalentTo(expected), "pattern_match null is left out");
        Assert.That(rows.Single(r => r.Step == 3).Evals, Is.EquivalentTo(expected));
        Assert.That(rows.Single(r => r.Step == 1).Evals, Is.Null);
    }

    [Test]
    public void A_missing_prompt_file_is_named_by_its_key()
    {
        var options = new TrainingSafetyEvalOptions { Prompts = "nope.jsonl", Judge = new SafetyJudgeOptions { Gguf = "j.gguf" } };
        var dir = TestPaths.TempDir("safety-missing");
        // Not beside the recipe nor in the current folder: named as the current folder resolves it (RecipeResolver.InputPath).
        var e = Assert.Throws<UserInputException>(() => new TrainingSafetyEval(options, dir, dir, new FakeJudge(), new FakeHarness()));
        Assert.That(e!.Message, Is.EqualTo($"eval.safety.prompts: 'nope.jsonl' not found (looked at {Path.GetFullPath("nope.jsonl")}); name an AnswerCarefully JSON/JSONL or conversation JSONL file"));
    }
}
