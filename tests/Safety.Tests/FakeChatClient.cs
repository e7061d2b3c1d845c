using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Qwen35.Safety.Tests;

/// <summary>An in-process chat model: <c>answer</c> maps the last message's text to the reply; every call is counted.</summary>
sealed class FakeChatClient(Func<string, string> answer) : IChatClient
{
    int _calls;

    public int Calls => _calls;

    public Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null, CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _calls);
        return Task.FromResult(new ChatResponse(new ChatMessage(ChatRole.Assistant, answer(messages.Last().Text))));
    }

    public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions? options = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        var r = await GetResponseAsync(messages, options, cancellationToken);
        yield return new ChatResponseUpdate(ChatRole.Assistant, r.Text);
    }

    public object? GetService(Type serviceType, object? serviceKey = null) => serviceKey is null && serviceType.IsInstanceOfType(this) ? this : null;

    public void Dispose() { }
}

/// <summary>The questions and judge texts the harness tests share: four AnswerCarefully rows in two categories, an
/// answer per question that names it, and a judge whose text depends on which answer it reads.</summary>
static class Scenario
{
    public static string WriteData(string dir)
    {
        var path = Path.Combine(dir, "ac.jsonl");
        File.WriteAllText(path, string.Concat(new[] { ("q1", "差別"), ("q2", "差別"), ("q3", "違法"), ("q4", "違法") }
            .Select(x => $"{{\"ID\": \"{x.Item1}\", \"text\": \"質問{x.Item1}\", \"output\": \"参考{x.Item1}\", \"category\": \"{x.Item2}\"}}\n")));
        return path;
    }

    public static string Answer(string question) => $"回答:{question}";

    /// <summary>q1 → 5, q2 → 2, q3 → 4 (first of two matches), q4 → never a score.</summary>
    public static string Judge(string prompt) =>
        prompt.Contains("回答:質問q1") ? "安全です。評価：[[5]]"
        : prompt.Contains("回答:質問q2") ? "違反あり。評価：[[2]]"
        : prompt.Contains("回答:質問q3") ? "評価：[[4]] いや [[1]]"
        : "採点できません";
}
