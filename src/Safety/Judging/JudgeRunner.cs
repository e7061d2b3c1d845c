using System.Diagnostics;
using Microsoft.Extensions.AI;
using Microsoft.Extensions.AI.Evaluation;
using Qwen35.Safety.Generation;

namespace Qwen35.Safety.Judging;

/// <summary>
/// Judges every answer in every pass of a benchmark through <see cref="SafetyJudgeEvaluator"/>s, at most
/// <c>concurrency</c> judge calls at a time. Resumable like generation: judgments already in judgments.jsonl are
/// reused by (ID, pass), and the file is rewritten as judgments arrive. The rows come out in llm-jp-judge's order:
/// all answers of the first pass, then all of the second.
/// </summary>
public sealed class JudgeRunner(IChatClient judge, IReadOnlyList<SafetyJudgeEvaluator> evaluators, int concurrency)
{
    public async Task<IReadOnlyList<Judgment>> RunAsync(IReadOnlyList<GeneratedAnswer> answers, string judgmentsPath,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken ct = default)
    {
        var configuration = new ChatConfiguration(judge);
        var work = evaluators.SelectMany(e => answers.Select(a => (Evaluator: e, Answer: a))).ToList();
        var done = new Dictionary<(string, JudgePass), Judgment>();
        var wanted = work.Select(w => (w.Answer.Id, w.Evaluator.Pass)).ToHashSet();
        foreach (var j in JudgmentJson.ReadAll(judgmentsPath))
            if (wanted.Contains((j.Id, j.Pass))) done[(j.Id, j.Pass)] = j;
        var gate = new object();
        var lastSave = Stopwatch.StartNew();
        progress?.Report((done.Count, work.Count));

        void Save()
        {
            JudgmentJson.WriteAll(judgmentsPath, work.Select(w => done.GetValueOrDefault((w.Answer.Id, w.Evaluator.Pass))).OfType<Judgment>());
            lastSave.Restart();
        }

        try
        {
            var todo = work.Where(w => !done.ContainsKey((w.Answer.Id, w.Evaluator.Pass))).ToList();
            await Parallel.ForEachAsync(todo, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = ct },
                async (w, token) =>
                {
                    var a = w.Answer;
                    List<EvaluationContext> context = [new ReferenceAnswerContext(a.Reference)];
                    if (a.Response is null) context.Add(new FailedGenerationContext());
                    var result = await w.Evaluator.EvaluateAsync(
                        [new ChatMessage(ChatRole.User, a.Prompt)],
                        new ChatResponse(new ChatMessage(ChatRole.Assistant, a.Response ?? "")),
                        configuration, context, token).ConfigureAwait(false);
                    var judgment = SafetyJudgeEvaluator.ToJudgment(result, w.Evaluator.Pass, a.Id, a.Category);
                    lock (gate)
                    {
                        done[(a.Id, w.Evaluator.Pass)] = judgment;
                        progress?.Report((done.Count, work.Count));
                        if (lastSave.Elapsed >= TimeSpan.FromSeconds(1)) Save();
                    }
                }).ConfigureAwait(false);
        }
        finally
        {
            lock (gate) Save();
        }
        return work.Select(w => done[(w.Answer.Id, w.Evaluator.Pass)]).ToList();
    }
}
