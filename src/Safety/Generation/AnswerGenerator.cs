using System.Diagnostics;
using Microsoft.Extensions.AI;
using Qwen35.Safety.Backends;
using Qwen35.Safety.Data;
using Qwen35.Safety.Output;

namespace Qwen35.Safety.Generation;

/// <summary>
/// Answers every question with a chat client: llm-jp-judge's messages (optional system message, then the question
/// as the one user message) and sampling, at most <c>concurrency</c> calls at a time. Resumable: answers already in
/// <c>generations.jsonl</c> are reused by ID, and the file is rewritten (whole, atomically) as answers arrive, so an
/// interrupted run loses at most the answers of its last second.
/// </summary>
public sealed class AnswerGenerator(IChatClient client, SamplingSettings sampling, RetryRule retry, int concurrency, string backendName)
{
    public async Task<IReadOnlyList<GeneratedAnswer>> RunAsync(IReadOnlyList<SafetyItem> items, string generationsPath,
        IProgress<(int Done, int Total)>? progress = null, CancellationToken ct = default)
    {
        var done = new Dictionary<string, GeneratedAnswer>();
        var wanted = items.Select(i => i.Id).ToHashSet();
        foreach (var row in GeneratedAnswer.ReadAll(generationsPath))
            if (wanted.Contains(row.Id)) done[row.Id] = row;
        var todo = items.Where(i => !done.ContainsKey(i.Id)).ToList();
        var gate = new object();
        var lastSave = Stopwatch.StartNew();
        progress?.Report((done.Count, items.Count));

        void Save()
        {
            JsonlFile.Write(generationsPath, items.Where(i => done.ContainsKey(i.Id)).Select(i => done[i.Id].ToJson()));
            lastSave.Restart();
        }

        try
        {
            await Parallel.ForEachAsync(todo, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, concurrency), CancellationToken = ct },
                async (item, token) =>
                {
                    var result = await AttemptLoop.RunAsync(
                        async t => (await client.GetResponseAsync(sampling.Messages(item.Question), sampling.ToChatOptions(), t).ConfigureAwait(false)).Text,
                        accept: null, retry, backendName, token).ConfigureAwait(false);
                    var answer = new GeneratedAnswer(item.Id, item.Category, item.Question, item.Reference, result.Text);
                    lock (gate)
                    {
                        done[item.Id] = answer;
                        progress?.Report((done.Count, items.Count));
                        if (lastSave.Elapsed >= TimeSpan.FromSeconds(1)) Save();
                    }
                }).ConfigureAwait(false);
        }
        finally
        {
            // Whatever finished is kept, also when a backend failure or Ctrl-C stops the loop.
            lock (gate) Save();
        }
        return items.Select(i => done[i.Id]).ToList();
    }
}
