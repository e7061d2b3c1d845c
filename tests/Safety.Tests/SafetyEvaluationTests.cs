using System.Text.Json.Nodes;
using Qwen35.Safety.Backends;
using Qwen35.Safety.Generation;
using Qwen35.Safety.Judging;
using Qwen35.Tests;

namespace Qwen35.Safety.Tests;

/// <summary>The whole harness with in-process models: results, resume after an interruption, and --rescore.</summary>
public class SafetyEvaluationTests
{
    static SafetyEvalOptions Options(string data, string outDir) => new()
    {
        DataPath = data,
        OutDir = outDir,
        Retry = RetryRule.Immediate,
        GenerationModel = "gen",
        EvaluationModel = "judge",
    };

    [Test]
    public async Task Run_writes_the_files_with_hand_computed_scores()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        var outDir = Path.Combine(dir, "out");
        var generator = new FakeChatClient(Scenario.Answer);
        var judge = new FakeChatClient(Scenario.Judge);
        var r = await SafetyEvaluation.RunAsync(Options(data, outDir), generator, judge);

        Assert.That(generator.Calls, Is.EqualTo(4));
        Assert.That(judge.Calls, Is.EqualTo(3 + 4), "q4 is asked 4 times");
        // scores [5, 2, 4]; q4 left out
        Assert.That(r.Overall["safety_ja:安全性"], Is.EqualTo(3.6666666666666665));
        Assert.That(r.Overall["safety_ja:違反回答率(%)"], Is.EqualTo(33.33333333333333));
        Assert.That(r.Overall["safety_ja:許容回答率(%)"], Is.EqualTo(66.66666666666666));
        Assert.That(r.Overall["safety_ja:pattern_match(%)"], Is.EqualTo(25.0));
        Assert.That(r.Categories.Select(c => (c.Category, c.Table["safety_ja:安全性"])), Is.EqualTo(new[] { ("差別", (double?)3.5), ("違法", 4.0) }));

        var gen = File.ReadAllLines(Path.Combine(outDir, SafetyEvaluation.GenerationsFile));
        Assert.That(gen[0], Is.EqualTo("{\"ID\": \"q1\", \"category\": \"差別\", \"prompt\": \"質問q1\", \"reference\": \"参考q1\", \"response\": \"回答:質問q1\"}"));
        var judgments = JudgmentJson.ReadAll(Path.Combine(outDir, SafetyEvaluation.JudgmentsFile));
        Assert.That(judgments.Select(j => j.Id), Is.EqualTo(new[] { "q1", "q2", "q3", "q4" }));
        Assert.That(judgments[3].Attempts, Is.EqualTo(4));
        Assert.That(judgments[3].JudgeResponse, Is.EqualTo("採点できません"));
        Assert.That(judgments[0].JudgePrompt, Is.EqualTo(JudgeTemplates.Render(JudgePass.Safety, JudgeFormat.Repr, "質問q1", "参考q1", "回答:質問q1")));
        foreach (var f in new[] { SafetyEvaluation.ScoreTableFile, SafetyEvaluation.ErrorRateTableFile, SafetyEvaluation.CategoryTableFile,
                     SafetyEvaluation.ReportFile, SafetyEvaluation.ChartFile })
            Assert.That(File.Exists(Path.Combine(outDir, f)), f);
        var png = File.ReadAllBytes(Path.Combine(outDir, SafetyEvaluation.ChartFile));
        Assert.That(png[..4], Is.EqualTo(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }));
        // Sampling recorded as sent: 0.95, not the float's double 0.949999988079071.
        Assert.That(File.ReadAllText(Path.Combine(outDir, SafetyEvaluation.RunFile)), Does.Contain("\"top_p\": 0.95,"));
        var report = File.ReadAllText(Path.Combine(outDir, SafetyEvaluation.ReportFile));
        Assert.That(report, Does.Contain("| safety_ja:安全性 | 3.6667 |"));
        Assert.That(report, Does.Contain("| 差別 | 2 | 3.5 | 50 | 50 |"));
    }

    /// <summary>A model that fails at its Nth call, as an interruption would stop the run there.</summary>
    sealed class Interrupted(int failAt) : Exception($"interrupted at call {failAt}");

    [Test]
    public async Task Interrupted_run_continues_where_it_stopped()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        var outDir = Path.Combine(dir, "out");

        // First run: the generator dies at its 3rd answer.
        var calls = 0;
        var dying = new FakeChatClient(q => ++calls == 3 ? throw new Interrupted(3) : Scenario.Answer(q));
        Assert.ThrowsAsync<Interrupted>(async () => await SafetyEvaluation.RunAsync(Options(data, outDir), dying, new FakeChatClient(Scenario.Judge)));
        Assert.That(GeneratedAnswer.ReadAll(Path.Combine(outDir, SafetyEvaluation.GenerationsFile)).Select(g => g.Id), Is.EqualTo(new[] { "q1", "q2" }));

        // Second run: the judge dies at its 2nd call.
        var judgeCalls = 0;
        var generator = new FakeChatClient(Scenario.Answer);
        var dyingJudge = new FakeChatClient(p => ++judgeCalls == 2 ? throw new Interrupted(2) : Scenario.Judge(p));
        Assert.ThrowsAsync<Interrupted>(async () => await SafetyEvaluation.RunAsync(Options(data, outDir), generator, dyingJudge));
        Assert.That(generator.Calls, Is.EqualTo(2), "q1 and q2 were reused");
        Assert.That(JudgmentJson.ReadAll(Path.Combine(outDir, SafetyEvaluation.JudgmentsFile)).Select(j => j.Id), Is.EqualTo(new[] { "q1" }));

        // Third run finishes with only the missing calls, and agrees with an uninterrupted run.
        var lastGenerator = new FakeChatClient(Scenario.Answer);
        var lastJudge = new FakeChatClient(Scenario.Judge);
        var resumed = await SafetyEvaluation.RunAsync(Options(data, outDir), lastGenerator, lastJudge);
        Assert.That(lastGenerator.Calls, Is.EqualTo(0));
        Assert.That(lastJudge.Calls, Is.EqualTo(1 + 1 + 4), "q2, q3 and q4's four attempts");
        var fresh = await SafetyEvaluation.RunAsync(Options(data, Path.Combine(dir, "fresh")), new FakeChatClient(Scenario.Answer), new FakeChatClient(Scenario.Judge));
        Assert.That(File.ReadAllText(Path.Combine(outDir, SafetyEvaluation.ScoreTableFile)),
            Is.EqualTo(File.ReadAllText(Path.Combine(dir, "fresh", SafetyEvaluation.ScoreTableFile))));
        Assert.That(resumed.Overall.All, Is.EqualTo(fresh.Overall.All));
    }

    [Test]
    public async Task Resume_with_another_benchmark_is_refused()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        var outDir = Path.Combine(dir, "out");
        await SafetyEvaluation.RunAsync(Options(data, outDir), new FakeChatClient(Scenario.Answer), new FakeChatClient(Scenario.Judge));
        var e = Assert.ThrowsAsync<UserInputException>(async () => await SafetyEvaluation.RunAsync(
            Options(data, outDir) with { Benchmark = SafetyBenchmark.SafetyBorderlineJa }, new FakeChatClient(Scenario.Answer), new FakeChatClient(Scenario.Judge)));
        Assert.That(e!.Message, Does.StartWith("--benchmark:"));
    }

    [Test]
    public async Task Rescore_recomputes_from_the_judge_texts()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        var outDir = Path.Combine(dir, "out");
        await SafetyEvaluation.RunAsync(Options(data, outDir), new FakeChatClient(Scenario.Answer), new FakeChatClient(Scenario.Judge));

        // Edit the raw texts: q1 now reads [[1]], q4 gets a score of 3.
        var path = Path.Combine(outDir, SafetyEvaluation.JudgmentsFile);
        var edited = JudgmentJson.ReadAll(path).Select(j => j.Id switch
        {
            "q1" => j with { JudgeResponse = "評価：[[1]]" },
            "q4" => j with { JudgeResponse = "評価：[[3]]" },
            _ => j,
        }).ToList();
        JudgmentJson.WriteAll(path, edited);

        var r = SafetyEvaluation.Rescore(outDir, SafetyBenchmark.SafetyJa);
        // scores [1, 2, 4, 3]
        Assert.That(r.Overall["safety_ja:安全性"], Is.EqualTo(2.5));
        Assert.That(r.Overall["safety_ja:違反回答率(%)"], Is.EqualTo(50.0));
        Assert.That(r.Overall["safety_ja:許容回答率(%)"], Is.EqualTo(25.0));
        Assert.That(r.Overall["safety_ja:pattern_match(%)"], Is.EqualTo(0.0));
        var table = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, SafetyEvaluation.ScoreTableFile)))!.AsArray()[0]!;
        Assert.That(table["safety_ja:安全性"]!.GetValue<double>(), Is.EqualTo(2.5));
        Assert.That(table["generation_model"]!.GetValue<string>(), Is.EqualTo("gen"), "the model names come from run.json");

        var e = Assert.Throws<UserInputException>(() => SafetyEvaluation.Rescore(outDir, SafetyBenchmark.SafetyBorderlineJa));
        Assert.That(e!.Message, Does.StartWith("--benchmark:"));
    }

    [Test]
    public async Task Borderline_judges_every_answer_twice()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        var judge = new FakeChatClient(p => p.Contains("過剰な回答拒否") ? "[[3]]" : "[[4]]");
        var r = await SafetyEvaluation.RunAsync(Options(data, Path.Combine(dir, "out")) with { Benchmark = SafetyBenchmark.SafetyBorderlineJa },
            new FakeChatClient(Scenario.Answer), judge);
        Assert.That(judge.Calls, Is.EqualTo(8));
        Assert.That(r.Overall["safety_borderline_ja:ボーダーライン"], Is.EqualTo(3.0));
        Assert.That(r.Overall["safety_borderline_ja:回答拒否率(%)"], Is.EqualTo(0.0));
        Assert.That(r.Overall["safety_borderline_ja:安全性"], Is.EqualTo(4.0));
        var passes = JudgmentJson.ReadAll(Path.Combine(dir, "out", SafetyEvaluation.JudgmentsFile)).Select(j => j.Pass).ToList();
        Assert.That(passes, Is.EqualTo(Enumerable.Repeat(JudgePass.Borderline, 4).Concat(Enumerable.Repeat(JudgePass.Safety, 4))));
    }
}
