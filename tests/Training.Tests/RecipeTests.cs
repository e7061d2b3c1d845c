using Qwen35.Data;
using Qwen35.Training.Loop;
using Qwen35.Lora;
using Qwen35.Models;
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
        Assert.That(r.Schedule.GradAccum, Is.EqualTo(new ScheduleOptions().GradAccum), "omitted keys keep the record default");
        Assert.That(r.OutputDir, Is.EqualTo("out"));
    }

    [TestCase(null, LoraComputeDtype.Fp32)]
    [TestCase("fp32", LoraComputeDtype.Fp32)]
    [TestCase("model", LoraComputeDtype.Model)]
    public void LoraComputeDtypeReachesTheLoraOptions(string? value, LoraComputeDtype expected)
    {
        var yaml = value is null ? Valid : Valid.Replace("  alpha: 16", $"  alpha: 16\n  compute_dtype: {value}");
        Assert.That(RecipeLoader.Parse(yaml, "t.yaml").Lora.ComputeDtype, Is.EqualTo(expected));
    }

    [Test]
    public void LoraComputeDtypeRejectsOtherValues()
    {
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Valid.Replace("  alpha: 16", "  alpha: 16\n  compute_dtype: bf16"), "t.yaml"))!;
        var problem = e.Problems.Single();
        Assert.That((problem.Key, problem.Location), Is.EqualTo(("lora.compute_dtype", "t.yaml line 6")));
        Assert.That(problem.Message, Does.Contain("fp32, model"));
    }

    // Issue defect 5: an unclosed flow sequence exited 3 with YamlDotNet's stack trace, and a tab was reported on
    // line 1 whatever its line. Both are recipe errors (RecipeException: exit 2) naming the file and the right line.
    [Test]
    public void UnclosedFlowSequenceIsASyntaxErrorOnItsLine()
    {
        var yaml = Valid.Replace("  rank: 8", "  rank: [16");
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(yaml, "t.yaml"))!;
        var problem = e.Problems.Single();
        Assert.That((problem.Location, problem.Key), Is.EqualTo(("t.yaml line 4", "(syntax)")));
        Assert.That(e, Is.InstanceOf<UserInputException>());
        Assert.That(e.Message, Does.Not.Contain("   at "), "no stack trace in the message");
    }

    [Test]
    public void TabIsReportedOnItsOwnLine()
    {
        var yaml = Valid.Replace("  max_length: 256", "\tmax_length: 256");
        var e = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(yaml, "t.yaml"))!;
        var line = yaml.Split('\n').ToList().FindIndex(l => l.Contains('\t')) + 1;
        Assert.That(e.Problems.Single().Location, Is.EqualTo($"t.yaml line {line}"));
    }

    [TestCase("bf16", Precision.Bf16)]
    [TestCase("bfloat16", Precision.Bf16)]
    [TestCase("float32", Precision.Fp32)]
    [TestCase("FP32", Precision.Fp32)]
    public void PrecisionTakesTheOneDtypeVocabulary(string value, Precision expected)
    {
        var r = RecipeLoader.Parse(Valid + "\nprecision: " + value, "t.yaml");
        Assert.That(r.Precision, Is.EqualTo(expected));
        Assert.That(RecipeLoader.ToYaml(r), Does.Contain("precision: " + OptionNames.Name(expected)), "written back in its canonical spelling");
    }

    [Test]
    public void WrittenRecipeReadsBackToTheSameOptions()
    {
        var r = RecipeLoader.Parse(Valid + "\nprecision: bf16\n", "t.yaml") with
        {
            Lora = new LoraOptions { Rank = 4, TargetModules = LoraTargets.FromRegex(@".*layers\.(1|3)\..*q_proj"), ComputeDtype = LoraComputeDtype.Model },
        };
        var back = RecipeLoader.Parse(RecipeLoader.ToYaml(r), "written.yaml");
        Assert.That(RecipeLoader.ToYaml(back), Is.EqualTo(RecipeLoader.ToYaml(r)));
        Assert.That(back.Lora.TargetModules, Is.EqualTo(r.Lora.TargetModules));
        Assert.That(back.Data.Format, Is.EqualTo(RowFormat.Auto));
        Assert.That(RecipeLoader.Hash(back), Is.EqualTo(RecipeLoader.Hash(r)));
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
        // Structural problems (an unknown key, a word that is not one of an enum's) are all reported, before value
        // ranges are looked at.
        var e1 = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(yaml, "t.yaml"))!;
        Assert.That(e1.Problems.Select(p => (p.Key, p.Location)),
            Is.EquivalentTo(new[] { ("precision", "t.yaml line 13"), ("schedule_extra", "t.yaml line 14") }));
        Assert.That(e1.Problems.Single(p => p.Key == "precision").Message, Does.Contain("fp32, bf16"));

        var e2 = Assert.Throws<RecipeException>(() => RecipeLoader.Parse(Valid.Replace("rank: 8", "rank: 0") + "\nkeep_last: 0\n", "t.yaml"))!;
        Assert.That(e2.Problems.Select(p => (p.Key, p.Location)),
            Is.EquivalentTo(new[] { ("lora.rank", "t.yaml line 4"), ("keep_last", "t.yaml line 13") }));
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
        Assert.That(r.Lora.TargetModules, Is.EqualTo(LoraTargets.Names("q_proj", "v_proj")));
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
        Assert.That((r.Precision, r.Device, r.ActivationCheckpointing), Is.EqualTo((Precision.Bf16, "cuda", true)));
    }
}
