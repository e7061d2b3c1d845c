using Qwen35.Tests;
using Qwen35.Training.Recipes;

namespace Qwen35.Training.Tests;

public class RecipeTests
{
    const string Valid = """
        model: builtin:tiny
        tokenizer: builtin
        lora:
          rank: 8
          alpha: 16
        data:
          train: data/sample/ja_safety_sample.jsonl
          max_length: 256
        schedule:
          max_steps: 30
          learning_rate: 1.0e-3
        output_dir: out
        """;

    [Test]
    public void ValidRecipeParsesWithDefaultsForOmittedKeys()
    {
        var r = RecipeLoader.Parse(Valid, "t.yaml");
        Assert.That(r.Lora.Rank, Is.EqualTo(8));
        Assert.That(r.Lora.Alpha, Is.EqualTo(16));
        Assert.That(r.Data.Train, Is.EqualTo(new[] { "data/sample/ja_safety_sample.jsonl" }), "a lone string becomes a one-item list");
        Assert.That(r.Schedule.MaxSteps, Is.EqualTo(30));
        Assert.That(r.Schedule.LearningRate, Is.EqualTo(1e-3));
        Assert.That(r.Schedule.GradAccum, Is.EqualTo(new ScheduleSection().GradAccum), "omitted keys keep the record default");
        Assert.That(r.OutputDir, Is.EqualTo("out"));
    }

    [TestCase(null, false)]
    [TestCase("fp32", false)]
    [TestCase("model", true)]
    public void LoraComputeDtypeReachesTheLoraOptions(string? value, bool inModelDtype)
    {
        var yaml = value is null ? Valid : Valid.Replace("  alpha: 16", $"  alpha: 16\n  compute_dtype: {value}");
        var options = ModelSetup.ToLoraOptions(RecipeLoader.Parse(yaml, "t.yaml").Lora);
        Assert.That(options.ComputeInModelDtype, Is.EqualTo(inModelDtype));
    }

    [Test]
    public void LoraComputeDtypeRejectsOtherValues()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Valid.Replace("  alpha: 16", "  alpha: 16\n  compute_dtype: bf16"), "t.yaml"))!;
        var problem = e.Problems.Single();
        Assert.That((problem.Key, problem.Location), Is.EqualTo(("lora.compute_dtype", "t.yaml line 6")));
        Assert.That(problem.Message, Does.Contain("fp32, model"));
    }

    [Test]
    public void UnknownKeysAreAllReportedWithTheirLines()
    {
        var yaml = Valid.Replace("  learning_rate: 1.0e-3", "  learning_rat: 1.0e-3").Replace("  rank: 8", "  rnak: 8");
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(yaml, "t.yaml"))!;
        Assert.That(e.Problems, Has.Count.EqualTo(2));
        var rank = e.Problems.Single(p => p.Key == "lora.rnak");
        Assert.That(rank.Location, Is.EqualTo("t.yaml line 4"));
        Assert.That(rank.Message, Does.Contain("did you mean 'rank'"));
        var lr = e.Problems.Single(p => p.Key == "schedule.learning_rat");
        Assert.That(lr.Location, Is.EqualTo("t.yaml line 11"));
        Assert.That(lr.Message, Does.Contain("learning_rate"));
        Assert.That(e.Message, Does.Contain("t.yaml line 4").And.Contain("t.yaml line 11"));
    }

    [Test]
    public void BadValuesNameKeyAndLine()
    {
        var yaml = Valid.Replace("rank: 8", "rank: eight").Replace("max_length: 256", "max_length: [1, 2]");
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(yaml, "t.yaml"))!;
        Assert.That(e.Problems.Select(p => (p.Key, p.Location)),
            Is.EquivalentTo(new[] { ("lora.rank", "t.yaml line 4"), ("data.max_length", "t.yaml line 8") }));
        Assert.That(e.Problems.Single(p => p.Key == "lora.rank").Message, Does.Contain("'eight' is not an integer"));
    }

    [Test]
    public void OutOfRangeAndUnknownWordsAreReportedTogether()
    {
        var yaml = Valid.Replace("rank: 8", "rank: 0") + "\nprecision: fp16\nschedule_extra: 1\n";
        // A structural problem (unknown key) is reported before value ranges are looked at.
        var e1 = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(yaml, "t.yaml"))!;
        Assert.That(e1.Problems.Single().Key, Is.EqualTo("schedule_extra"));

        var e2 = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Valid.Replace("rank: 8", "rank: 0") + "\nprecision: fp16\n", "t.yaml"))!;
        Assert.That(e2.Problems.Select(p => (p.Key, p.Location)),
            Is.EquivalentTo(new[] { ("lora.rank", "t.yaml line 4"), ("precision", "t.yaml line 13") }));
        Assert.That(e2.Problems.Single(p => p.Key == "precision").Message, Does.Contain("fp32, bf16"));
    }

    [Test]
    public void SetOverridesAreTypedAndCanCreateSections()
    {
        var r = RecipeLoader.Parse(Valid, "t.yaml",
        [
            "schedule.learning_rate=5e-4", "lora.target_modules=[q_proj, v_proj]", "output_dir=elsewhere",
            "data.category_weights.violence=2.5", "activation_checkpointing=true", "schedule.warmup_steps=~",
        ]);
        Assert.That(r.Schedule.LearningRate, Is.EqualTo(5e-4));
        Assert.That(r.Lora.TargetModules, Is.EqualTo(new[] { "q_proj", "v_proj" }));
        Assert.That(r.OutputDir, Is.EqualTo("elsewhere"));
        Assert.That(r.Data.CategoryWeights!["violence"], Is.EqualTo(2.5));
        Assert.That(r.ActivationCheckpointing, Is.True);
        Assert.That(r.Schedule.WarmupSteps, Is.Null);
    }

    [Test]
    public void BadSetOverridesNameTheOverride()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Valid, "t.yaml",
            ["schedule.micro_batch_size=two", "lora.rankk=4", "noequals", "schedule.grad_accum=0"]))!;
        Assert.That(e.Problems.Select(p => (p.Key, p.Location)), Is.EquivalentTo(new[]
        {
            ("schedule.micro_batch_size", "--set schedule.micro_batch_size=two"),
            ("lora.rankk", "--set lora.rankk=4"),
            ("noequals", "--set noequals"),
        }));
        var e2 = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Valid, "t.yaml", ["schedule.grad_accum=0"]))!;
        Assert.That(e2.Problems.Single().Location, Is.EqualTo("--set schedule.grad_accum=0"));
    }

    [Test]
    public void HashIgnoresOutputDirButNotHyperparameters()
    {
        var a = RecipeLoader.Parse(Valid, "t.yaml");
        Assert.That(RecipeLoader.Hash(a with { OutputDir = "x", LogEvery = 7 }), Is.EqualTo(RecipeLoader.Hash(a)));
        Assert.That(RecipeLoader.Hash(a with { Lora = a.Lora with { Rank = 4 } }), Is.Not.EqualTo(RecipeLoader.Hash(a)));
    }

    [Test]
    public void ShippedRecipesAreValidAndBareNamesResolve()
    {
        foreach (var name in new[] { "tiny", "9b", "9b-base", "27b" })
        {
            var resolved = RecipeResolver.Resolve(Path.Combine(TestPaths.RepoRoot, "recipes", name + ".yaml"));
            Assert.DoesNotThrow(() => RecipeLoader.Parse(resolved.Text, resolved.Source), name);
            Assert.That(resolved.BaseDir, Is.EqualTo(TestPaths.RepoRoot));
        }
        var old = Directory.GetCurrentDirectory();
        try
        {
            Directory.SetCurrentDirectory(Path.Combine(TestPaths.RepoRoot, "src"));
            Assert.That(RecipeResolver.Resolve("tiny").Source, Is.EqualTo(Path.Combine(TestPaths.RepoRoot, "recipes", "tiny.yaml")));
        }
        finally { Directory.SetCurrentDirectory(old); }
        Assert.Throws<RecipeException>(() => RecipeResolver.Resolve("no-such-recipe"));
    }

    [Test]
    public void TwentySevenBRecipeUsesBf16AndCheckpointing()
    {
        var r = RecipeLoader.LoadFile(Path.Combine(TestPaths.RepoRoot, "recipes", "27b.yaml"));
        Assert.That((r.Precision, r.Device, r.ActivationCheckpointing), Is.EqualTo(("bf16", "cuda", true)));
    }
}
