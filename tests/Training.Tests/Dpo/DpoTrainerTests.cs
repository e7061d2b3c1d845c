using System.Text;
using System.Text.Json;
using Qwen35.Lora;
using Qwen35.Tests;
using Qwen35.Training.Checkpointing;
using Qwen35.Training.Dpo;
using Qwen35.Training.Observability;
using Qwen35.Training.Recipes;
using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace Qwen35.Training.Tests.Dpo;

/// <summary>DPO through the trainer: the recipe, the reference pass and its cache, the loop, checkpoints and resume.</summary>
public class DpoTrainerTests
{
    sealed class Collect : ILogEventSink
    {
        public List<string> Lines { get; } = [];
        public void Emit(LogEvent e) => Lines.Add($"{e.Level}: {e.RenderMessage()}");
    }

    static Logger Log(Collect sink) => new LoggerConfiguration().MinimumLevel.Debug().WriteTo.Sink(sink).CreateLogger();

    /// <summary>12 short Japanese pairs in TRL's standard format, two categories (a run takes seconds).</summary>
    static string PairFile()
    {
        var path = Path.Combine(TestPaths.TempDir("dpo-pairs"), "pairs.jsonl");
        var sb = new StringBuilder();
        for (var i = 0; i < 12; i++)
            sb.AppendLine(JsonSerializer.Serialize(new
            {
                id = $"q{i}", category = i % 2 == 0 ? "refusal" : "helpful",
                prompt = $"質問{i}: これは何ですか？", chosen = $"答え{i}です。丁寧に説明します。", rejected = $"知らない{i}。",
            }));
        File.WriteAllText(path, sb.ToString());
        return path;
    }

    static Recipe Recipe(string output, string pairs, int maxSteps, params string[] more) =>
        RecipeLoader.Parse(RecipeResolver.Resolve(Path.Combine(TestPaths.RepoRoot, "recipes", "dpo-tiny.yaml")).Text, "dpo-tiny.yaml",
        [
            $"output_dir={output}", $"data.train={pairs}", "data.eval_split=0.25", "data.max_length=128", "data.pack_length=256",
            $"schedule.max_steps={maxSteps}", "schedule.warmup_steps=1", "eval_every=3", "save_every=3", "cpu_threads=1", .. more,
        ]);

    static double Extra(MetricsRecord r, string key) => ((JsonElement)r.Extra![key]).GetDouble();

    [Test]
    public void AResumedDpoRunEqualsTheUninterruptedOneAndReusesTheCachedReference()
    {
        var pairs = PairFile();
        var a = TestPaths.TempDir("dpo-resume-a");
        using (var log = Log(new Collect()))
        using (var trainer = new SftTrainer(Recipe(a, pairs, 6), TestPaths.RepoRoot, log))
            Assert.That(trainer.Run().Loop.Completed);

        var b = TestPaths.TempDir("dpo-resume-b");
        using (var log = Log(new Collect()))
        using (var trainer = new SftTrainer(Recipe(b, pairs, 6), TestPaths.RepoRoot, log))
            Assert.That(trainer.Run(stopAfterStep: 3).Loop.Completed, Is.False);
        var cacheBefore = File.ReadAllText(Path.Combine(b, ReferenceLogps.FileName));
        var sink = new Collect();
        using (var log = Log(sink))
        using (var trainer = new SftTrainer(Recipe(b, pairs, 6), TestPaths.RepoRoot, log))
        {
            trainer.Setup(OutputMode.Resume);
            Assert.That(trainer.Run(resume: "latest").Loop.Completed);
        }
        Assert.That(sink.Lines, Has.Some.Contains("reference log-probs of 12 pairs reused from"));
        Assert.That(sink.Lines, Has.None.Contains("recomputing"));
        Assert.That(File.ReadAllText(Path.Combine(b, ReferenceLogps.FileName)), Is.EqualTo(cacheBefore));
        Assert.That(File.ReadAllText(Path.Combine(b, ReferenceLogps.FileName)), Is.EqualTo(File.ReadAllText(Path.Combine(a, ReferenceLogps.FileName))),
            "the same reference log-probs in both runs");

        var ma = MetricsWriter.Read(Path.Combine(a, "metrics.jsonl"));
        var mb = MetricsWriter.Read(Path.Combine(b, "metrics.jsonl"));
        Assert.That(mb.Select(r => r.Step), Is.EqualTo(Enumerable.Range(1, 6)));
        Assert.That(mb.Select(r => r.Loss), Is.EqualTo(ma.Select(r => r.Loss)), "bit-exact loss curve");
        foreach (var key in DpoLoss.MetricNames)
            Assert.That(mb.Select(r => Extra(r, key)), Is.EqualTo(ma.Select(r => Extra(r, key))), key);
        Assert.That(mb.Select(r => r.EvalLoss), Is.EqualTo(ma.Select(r => r.EvalLoss)));
        var lastEval = mb[^1];
        Assert.That(Extra(lastEval, "eval_rewards/accuracies"), Is.InRange(0.0, 1.0));
        Assert.That(lastEval.EvalLossByCategory!.Keys, Is.EquivalentTo(new[] { "helpful", "refusal" }));
        Assert.That(((JsonElement)lastEval.Extra!["eval_metrics_by_category"]).GetProperty("refusal").TryGetProperty("rewards/margins", out _));

        // A cache that does not match this run (here: its fingerprint edited) is named and recomputed before the
        // checkpoint loads, which gives the same values, so the resumed run still equals the uninterrupted one.
        var c = TestPaths.TempDir("dpo-resume-c");
        using (var log = Log(new Collect()))
        using (var trainer = new SftTrainer(Recipe(c, pairs, 6), TestPaths.RepoRoot, log))
            trainer.Run(stopAfterStep: 3);
        var cachePath = Path.Combine(c, ReferenceLogps.FileName);
        File.WriteAllText(cachePath, File.ReadAllText(cachePath).Replace("reference=base", "reference=other"));
        var sinkC = new Collect();
        using (var log = Log(sinkC))
        using (var trainer = new SftTrainer(Recipe(c, pairs, 6), TestPaths.RepoRoot, log))
        {
            trainer.Setup(OutputMode.Resume);
            trainer.Run(resume: "latest");
        }
        Assert.That(sinkC.Lines, Has.Some.Contains("Warning: dpo: recomputing the reference log-probs:").And.Contains("reference=other"));
        Assert.That(File.ReadAllText(cachePath), Is.EqualTo(cacheBefore), "the rewritten cache");
        Assert.That(MetricsWriter.Read(Path.Combine(c, "metrics.jsonl")).Select(r => r.Loss), Is.EqualTo(ma.Select(r => r.Loss)));

        // The policy starts as the reference (fresh adapter, B = 0): the first step's loss is log 2, its rewards 0.
        Assert.That(ma[0].Loss!.Value, Is.EqualTo(Math.Log(2)).Within(1e-6));
        Assert.That(Extra(ma[0], "rewards/chosen"), Is.EqualTo(0).Within(1e-7));
        Assert.That(Extra(ma[0], "rewards/rejected"), Is.EqualTo(0).Within(1e-7));
        Assert.That(File.Exists(Path.Combine(a, "adapter", PeftAdapter.WeightsFileName)));
    }

    [Test]
    public void AReferenceAdapterIsTrainedAsACopyAndStaysTheReference()
    {
        var pairs = PairFile();
        var first = TestPaths.TempDir("dpo-ref-first");
        using (var log = Log(new Collect()))
        using (var trainer = new SftTrainer(Recipe(first, pairs, 3, "lora.rank=8", "lora.alpha=16"), TestPaths.RepoRoot, log))
            Assert.That(trainer.Run().Loop.Completed);
        var reference = Path.Combine(first, "adapter");

        // The second run names the first run's adapter as its reference, with a recipe whose lora section differs:
        // the adapter's own settings are trained (rank 8), and the first step's policy equals the reference.
        var second = TestPaths.TempDir("dpo-ref-second");
        using (var log = Log(new Collect()))
        using (var trainer = new SftTrainer(Recipe(second, pairs, 2, $"dpo.reference_adapter={reference}", "lora.rank=4"), TestPaths.RepoRoot, log))
            Assert.That(trainer.Run().Loop.Completed);
        var m = MetricsWriter.Read(Path.Combine(second, "metrics.jsonl"));
        Assert.That(m[0].Loss!.Value, Is.EqualTo(Math.Log(2)).Within(1e-6), "policy == reference: loss log 2");
        Assert.That(Extra(m[0], "rewards/margins"), Is.EqualTo(0).Within(1e-7));
        using var file = PeftAdapter.Load(Path.Combine(second, "adapter"));
        Assert.That(file.Modules.All(x => x.Rank == 8), "the copy keeps the reference adapter's rank");

        // The reference log-probs differ from the base model's (the first run moved the adapter).
        var baseRef = File.ReadAllText(Path.Combine(first, ReferenceLogps.FileName));
        Assert.That(File.ReadAllText(Path.Combine(second, ReferenceLogps.FileName)), Is.Not.EqualTo(baseRef));
    }

    [Test]
    public void AMissingReferenceAdapterIsBadInputNamingTheKey()
    {
        var e = Assert.Throws<UserInputException>(() =>
        {
            using var log = Log(new Collect());
            using var trainer = new SftTrainer(Recipe(TestPaths.TempDir("dpo-ref-missing"), PairFile(), 1, "dpo.reference_adapter=no/such/adapter"),
                TestPaths.RepoRoot, log);
            trainer.Setup();
        });
        Assert.That(e!.Message, Does.StartWith("dpo.reference_adapter: 'no/such/adapter' is not a PEFT adapter folder"));
    }

    [Test]
    public void TheDpoTinyRecipeResolvesByNameAndFromTheEmbeddedCopy()
    {
        var recipe = RecipeLoader.Parse(RecipeResolver.Resolve("dpo-tiny").Text, "dpo-tiny");
        Assert.That((recipe.Objective, recipe.Dpo.Beta, recipe.Dpo.LossType), Is.EqualTo((TrainingObjectiveKind.Dpo, 0.1, DpoLossType.Sigmoid)));
        Assert.That(recipe.Data.Train, Is.EqualTo(new[] { "data/sample/ja_preference_sample.jsonl" }));
        using var s = typeof(Recipe).Assembly.GetManifestResourceStream("Qwen35.Training.recipes.dpo-tiny.yaml");
        Assert.That(new StreamReader(s!).ReadToEnd(), Is.EqualTo(File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "recipes", "dpo-tiny.yaml"))));
    }

    [TestCase("9b-dpo", "runs/9b/adapter")]
    [TestCase("27b-dpo", "runs/27b/adapter")]
    public void TheShippedDpoRecipesAreValidAndFitAPairInARow(string name, string reference)
    {
        var recipe = RecipeLoader.LoadFile(Path.Combine(TestPaths.RepoRoot, "recipes", name + ".yaml"));
        Assert.That((recipe.Objective, recipe.Dpo.ReferenceAdapter, recipe.Precision), Is.EqualTo((TrainingObjectiveKind.Dpo, reference, Qwen35.Models.Precision.Bf16)));
        Assert.That(recipe.Data.RowLength(), Is.GreaterThanOrEqualTo(2 * recipe.Dpo.MaxLength!.Value), "both sides of the longest pair fit one packed row");
    }

    [Test]
    public void BadDpoKeysAreNamedWithTheirLine()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse("objective: dpo\ndpo:\n  beta: 0\n  loss_type: hinge\n", "r.yaml"));
        Assert.That(e!.Message, Does.Contain("r.yaml line 4").And.Contain("dpo.loss_type").And.Contain("'hinge' is not one of sigmoid, ipo"));
        var e2 = Assert.Throws<RecipeException>(() => RecipeLoader.Parse("objective: dpo\ndpo:\n  beta: 0\n", "r.yaml"));
        Assert.That(e2!.Message, Does.Contain("r.yaml line 3").And.Contain("dpo.beta: must be a finite number > 0"));
    }
}
