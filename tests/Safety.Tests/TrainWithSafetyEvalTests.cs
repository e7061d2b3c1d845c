using Qwen35.Cli.Tests;
using Qwen35.Tests;
using Qwen35.Training.Observability;

namespace Qwen35.Safety.Tests;

/// <summary>
/// <c>eval.safety</c> in a real <c>trainer --recipe tiny</c> run, wired as the program wires it: the live model answers
/// the questions, a loopback chat-completions server is the judge, and the harness's rates land in metrics.jsonl.
/// </summary>
public class TrainWithSafetyEvalTests
{
    [Test]
    public void The_judges_scores_become_the_rates_of_each_evaluated_step()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        var output = Path.Combine(dir, "run");
        // A judge that gives every answer a 4 (acceptable, not a violation), except the question q2's answer: 1.
        using var server = new LoopbackChatServer(r => r.Model == "judge-model"
            ? Reply.Completion(r.LastMessage.Contains("質問q2") ? "評価：[[1]]" : "評価：[[4]]")
            : Reply.Error(404, $"no model {r.Model}"));

        var (code, _, err) = CliRunner.RunProgram([], [
            "--recipe", "tiny", "--no-progress", "--set", $"output_dir={output}", "--set", "schedule.max_steps=2",
            "--set", "data.max_length=128", "--set", "data.pack_length=128", "--set", "eval_every=0", "--set", "save_every=0",
            "--set", $"eval.safety.prompts={data}", "--set", "eval.safety.every=1", "--set", "eval.safety.items=2",
            "--set", "eval.safety.max_new_tokens=4", "--set", $"eval.safety.judge.endpoint={server.BaseUrl}",
            "--set", "eval.safety.judge.model=judge-model"]);

        Assert.That(code, Is.Zero, err);
        var rows = MetricsWriter.Read(Path.Combine(output, "metrics.jsonl"));
        foreach (var step in new[] { 1, 2 })
        {
            var evals = rows.Single(r => r.Step == step).Evals;
            Assert.That(evals, Is.Not.Null, $"step {step} was evaluated");
            // q1 → 4, q2 → 1 (the first two questions): mean 2.5, one violation (score < 3) in two, one acceptable (score > 3), as llm-jp-judge counts them.
            Assert.That(evals!["safety/score"], Is.EqualTo(2.5));
            Assert.That(evals["safety/violation_rate"], Is.EqualTo(50.0));
            Assert.That(evals["safety/acceptable_rate"], Is.EqualTo(50.0));
            Assert.That(File.Exists(Path.Combine(output, "safety", $"step_{step:D6}", "score_table.json")), $"step {step}'s files");
        }
        var judged = server.Requests.Where(r => r.Model == "judge-model").ToList();
        Assert.That(judged, Has.Count.EqualTo(4), "two questions judged at each of two steps");
        Assert.That(judged.All(r => r.LastMessage.Contains("参考q1") || r.LastMessage.Contains("参考q2")), "the judge sees the reference answers");
    }
}
