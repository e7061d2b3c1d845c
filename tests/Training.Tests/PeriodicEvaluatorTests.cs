using Qwen35.Tests;
using Qwen35.Training.Loop;
using Qwen35.Training.Observability;
using Qwen35.Training.Recipes;
using TorchSharp;

namespace Qwen35.Training.Tests;

/// <summary>
/// The training loop's extension point for evaluations during training (<see cref="IPeriodicEvaluator"/>, used by
/// <c>eval.safety</c>): a fake evaluator's numbers land in metrics.jsonl at its steps and the last step, it sees the
/// model in eval mode without gradients, training mode comes back, a failing evaluator costs a warning, not the run;
/// and the recipe's <c>eval.safety</c> section reads and checks like every other section.
/// </summary>
public class PeriodicEvaluatorTests
{
    sealed class Fake(string name, int every, int? failAt = null) : IPeriodicEvaluator
    {
        public string Name => name;
        public int Every => every;
        public List<(int Step, bool Training, bool Grad, int Vocab)> Calls { get; } = [];

        public IReadOnlyDictionary<string, double> Evaluate(PeriodicEvalContext context)
        {
            Calls.Add((context.Step, context.Model.training, torch.is_grad_enabled(), context.Tokenizer.VocabSize));
            if (context.Step == failAt) throw new InvalidOperationException("judge unreachable");
            return new Dictionary<string, double> { [$"{name}/step_x10"] = context.Step * 10.0, [$"{name}/half"] = 0.5 };
        }
    }

    [Test]
    public void Numbers_land_in_metrics_jsonl_at_the_evaluators_steps_and_the_last_step()
    {
        var output = TestPaths.TempDir("periodic-eval");
        var resolved = RecipeResolver.Resolve(Path.Combine(TestPaths.RepoRoot, "recipes", "tiny.yaml"));
        // log_every 4: rows at 4 and 7 (last) anyway; the evaluators add rows at 2 and 6; steps 3 and 5 have none.
        var recipe = RecipeLoader.Parse(resolved.Text, resolved.Source,
            [$"output_dir={output}", "schedule.max_steps=7", "data.max_length=256", "data.pack_length=256", "eval_every=0", "save_every=0", "log_every=4", "cpu_threads=1"]);
        var a = new Fake("a", every: 2, failAt: 4);
        var b = new Fake("b", every: 3);
        using var logFile = new RunLogFile();
        using var log = TrainLogging.CreateDeferred(logFile, Serilog.Events.LogEventLevel.Warning);
        using var trainer = new SftTrainer(recipe, resolved.BaseDir, log) { PeriodicEvaluators = [a, b] };
        var result = trainer.Run();
        Assert.That(result.Loop.Completed);

        Assert.That(a.Calls.Select(c => c.Step), Is.EqualTo(new[] { 2, 4, 6, 7 }));
        Assert.That(b.Calls.Select(c => c.Step), Is.EqualTo(new[] { 3, 6, 7 }));
        Assert.That(a.Calls.Concat(b.Calls).All(c => !c.Training && !c.Grad && c.Vocab == 282), "eval mode, no_grad, the run's (byte) tokenizer");

        var rows = MetricsWriter.Read(Path.Combine(output, "metrics.jsonl"));
        Assert.That(rows.Select(r => r.Step), Is.EqualTo(new[] { 2, 3, 4, 6, 7 }));
        var evals = rows.ToDictionary(r => r.Step, r => r.Evals);
        Assert.That(evals[2], Is.EquivalentTo(new Dictionary<string, double> { ["a/step_x10"] = 20, ["a/half"] = 0.5 }));
        Assert.That(evals[3], Is.EquivalentTo(new Dictionary<string, double> { ["b/step_x10"] = 30, ["b/half"] = 0.5 }));
        Assert.That(evals[4], Is.Null, "a failed at step 4: a log row without numbers");
        Assert.That(evals[6]!.Keys, Is.EquivalentTo(new[] { "a/step_x10", "a/half", "b/step_x10", "b/half" }));
        Assert.That(evals[7]!["a/step_x10"], Is.EqualTo(70));
        Assert.That(evals[7]!["b/step_x10"], Is.EqualTo(70));
        Assert.That(rows.All(r => r.Loss is not null), "training rows as before");
        Assert.That(new FileInfo(Path.Combine(output, "loss.png")).Length, Is.GreaterThan(1000));
    }

    const string Recipe = """
        model: builtin:tiny
        data:
          train: data/sample/ja_safety_sample.jsonl
        eval:
          safety:
            prompts: ac_test.json
            benchmark: safety_borderline_ja
            every: 50
            items: 8
            judge:
              endpoint: http://127.0.0.1:8000/v1
              model: qwen3.5-9b
        """;

    [Test]
    public void The_eval_safety_section_reads_with_llm_jp_judge_defaults_and_round_trips()
    {
        var r = RecipeLoader.Parse(Recipe, "t.yaml");
        var s = r.Eval.Safety!;
        Assert.That((s.Prompts, s.Benchmark, s.Every, s.Items), Is.EqualTo(("ac_test.json", SafetyEvalBenchmark.SafetyBorderlineJa, 50, 8)));
        Assert.That((s.Temperature, s.TopP, s.Seed), Is.EqualTo((1.0, 0.95, 1234L)), "llm-jp-judge's sampling");
        Assert.That((s.Judge.Endpoint, s.Judge.Model, s.Judge.ApiKeyEnv), Is.EqualTo(("http://127.0.0.1:8000/v1", "qwen3.5-9b", "OPENAI_API_KEY")));
        var back = RecipeLoader.Parse(RecipeLoader.ToYaml(r), "written.yaml");
        Assert.That(back.Eval.Safety, Is.EqualTo(s with { Judge = back.Eval.Safety!.Judge }));
        Assert.That(back.Eval.Safety!.Judge, Is.EqualTo(s.Judge));
        var without = RecipeLoader.Parse("model: builtin:tiny\ndata:\n  train: data/sample/ja_safety_sample.jsonl\n", "t.yaml");
        Assert.That(without.Eval.Safety, Is.Null, "no section, no evaluation");
        // The evaluation does not change the training trajectory: a resumed run may add, drop or change it silently.
        Assert.That(RecipeLoader.Hash(r), Is.EqualTo(RecipeLoader.Hash(without)));
        Assert.That(RecipeLoader.Hash(r with { Lora = r.Lora with { Rank = 4 } }), Is.Not.EqualTo(RecipeLoader.Hash(without)));
    }

    [Test]
    public void Bad_eval_safety_values_are_named_by_key_and_line()
    {
        var yaml = Recipe.Replace("    items: 8", "    items: 0").Replace("      model: qwen3.5-9b", "      gguf: judge.gguf");
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(yaml, "t.yaml"))!;
        Assert.That(e.Problems.Select(p => $"{p.Location}: {p.Key}: {p.Message}"), Is.EquivalentTo(new[]
        {
            "t.yaml line 9: eval.safety.items: must be >= 1",
            "t.yaml line 12: eval.safety.judge.gguf: give only one of endpoint, gguf and model_dir (also set: endpoint)",
            "t.yaml line 10: eval.safety.judge.model: the model name to request from the endpoint is required with endpoint",
        }));
        var unknown = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Recipe.Replace("    items: 8", "    itemz: 8"), "t.yaml"))!;
        Assert.That(unknown.Problems.Single().Key, Is.EqualTo("eval.safety.itemz"));
        Assert.That(unknown.Problems.Single().Message, Does.StartWith("unknown key (did you mean 'items'?)"));
    }
}
