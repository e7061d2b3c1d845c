using Microsoft.Extensions.AI;
using Microsoft.Extensions.AI.Evaluation;
using Qwen35.Safety.Backends;
using Qwen35.Safety.Generation;
using Qwen35.Safety.Judging;

namespace Qwen35.Safety.Tests;

/// <summary>The OpenAI-compatible backend and the judge's retry rule against a chat-completions server on loopback.</summary>
public class OpenAiEndpointTests
{
    const string KeyVariable = "QWEN35_SAFETY_TEST_KEY";

    static IChatClient Client(LoopbackChatServer server, string model = "judge-x") =>
        OpenAiEndpoint.Create(new EndpointOptions(server.BaseUrl, model, KeyVariable, RetryDelay: TimeSpan.FromMilliseconds(5)));

    static async Task<(EvaluationResult Result, Judgment Judgment)> Judge(IChatClient client, JudgePass pass = JudgePass.Safety)
    {
        var evaluator = new SafetyJudgeEvaluator(pass, JudgeFormat.Repr, retry: RetryRule.Immediate);
        var result = await evaluator.EvaluateAsync([new ChatMessage(ChatRole.User, "質問")], new ChatResponse(new ChatMessage(ChatRole.Assistant, "回答")),
            new ChatConfiguration(client), [new ReferenceAnswerContext("参考")]);
        return (result, SafetyJudgeEvaluator.ToJudgment(result, pass, "id1", null));
    }

    [Test]
    public async Task Sends_llm_jp_judges_request_fields()
    {
        Environment.SetEnvironmentVariable(KeyVariable, "secret-key");
        try
        {
            using var server = new LoopbackChatServer(_ => Reply.Completion("説明。評価：[[4]]"));
            using var client = Client(server);
            var (result, judgment) = await Judge(client);

            Assert.That(result.Get<NumericMetric>("safety").Value, Is.EqualTo(4));
            var r = server.Requests.Single();
            Assert.That(r.Path, Is.EqualTo("/v1/chat/completions"));
            Assert.That(r.Headers["authorization"], Is.EqualTo("Bearer secret-key"));
            var body = r.Body;
            Assert.That(body["model"]!.GetValue<string>(), Is.EqualTo("judge-x"));
            Assert.That(body["temperature"]!.GetValue<double>(), Is.EqualTo(1.0));
            Assert.That(body["top_p"]!.GetValue<double>(), Is.EqualTo(0.95));
            Assert.That(body["seed"]!.GetValue<long>(), Is.EqualTo(1234));
            Assert.That(body["max_tokens"]!.GetValue<int>(), Is.EqualTo(1024));
            Assert.That(body.ContainsKey("max_completion_tokens"), Is.False, "llm-jp-judge sends max_tokens only");
            Assert.That(body["frequency_penalty"]!.GetValue<double>(), Is.EqualTo(0.0));
            var messages = body["messages"]!.AsArray();
            Assert.That(messages, Has.Count.EqualTo(2));
            Assert.That(messages[0]!["role"]!.GetValue<string>(), Is.EqualTo("system"));
            Assert.That(messages[0]!["content"]!.GetValue<string>(), Is.EqualTo(JudgeTemplates.SystemPrompt));
            Assert.That(messages[1]!["role"]!.GetValue<string>(), Is.EqualTo("user"));
            Assert.That(messages[1]!["content"]!.GetValue<string>(),
                Is.EqualTo(JudgeTemplates.Render(JudgePass.Safety, JudgeFormat.Repr, "質問", "参考", "回答")));
            Assert.That(judgment.JudgePrompt, Is.EqualTo(messages[1]!["content"]!.GetValue<string>()));
            Assert.That(judgment.JudgeResponse, Is.EqualTo("説明。評価：[[4]]"));
        }
        finally { Environment.SetEnvironmentVariable(KeyVariable, null); }
    }

    [Test]
    public async Task Borderline_generation_sends_the_empty_system_message()
    {
        using var server = new LoopbackChatServer(_ => Reply.Completion("答え"));
        using var client = Client(server, "gen");
        var s = SamplingSettings.Generation(SafetyBenchmark.SafetyBorderlineJa);
        var response = await client.GetResponseAsync(s.Messages("質問"), s.ToChatOptions());
        Assert.That(response.Text, Is.EqualTo("答え"));
        var messages = server.Requests.Single().Body["messages"]!.AsArray();
        Assert.That(messages[0]!["role"]!.GetValue<string>(), Is.EqualTo("system"));
        Assert.That(messages[0]!["content"]!.GetValue<string>(), Is.EqualTo(""));
        Assert.That(server.Requests.Single().Headers["authorization"], Is.EqualTo($"Bearer {OpenAiEndpoint.PlaceholderKey}"));
    }

    [Test]
    public async Task Answer_without_a_score_is_asked_again_until_one_matches()
    {
        var n = 0;
        using var server = new LoopbackChatServer(_ => Reply.Completion(Interlocked.Increment(ref n) < 3 ? "スコアなし" : "評価：[[2]]"));
        using var client = Client(server);
        var (result, judgment) = await Judge(client);
        Assert.That(server.Requests, Has.Count.EqualTo(3));
        Assert.That(result.Get<NumericMetric>("safety").Value, Is.EqualTo(2));
        Assert.That(judgment.Attempts, Is.EqualTo(3));
        Assert.That(judgment.Errors, Is.EqualTo(new[] { "No score found in the response", "No score found in the response" }));
    }

    [Test]
    public async Task Four_misses_keep_the_last_text_and_no_score()
    {
        var n = 0;
        using var server = new LoopbackChatServer(_ => Reply.Completion($"miss {Interlocked.Increment(ref n)}"));
        using var client = Client(server);
        var (result, judgment) = await Judge(client, JudgePass.Borderline);
        Assert.That(server.Requests, Has.Count.EqualTo(4));
        Assert.That(result.Get<NumericMetric>("borderline").Value, Is.Null);
        Assert.That(judgment.JudgeResponse, Is.EqualTo("miss 4"));
        Assert.That(judgment.IsApiError, Is.False);
    }

    [Test]
    public async Task Malformed_answer_body_is_a_counted_attempt()
    {
        var n = 0;
        using var server = new LoopbackChatServer(_ => Interlocked.Increment(ref n) == 1 ? new Reply(200, "{\"choices\": [tru") : Reply.Completion("[[3]]"));
        using var client = Client(server);
        var (result, judgment) = await Judge(client);
        Assert.That(server.Requests, Has.Count.EqualTo(2));
        Assert.That(result.Get<NumericMetric>("safety").Value, Is.EqualTo(3));
        Assert.That(judgment.Attempts, Is.EqualTo(2));
    }

    [TestCase(429)]
    [TestCase(500)]
    public async Task Rate_limit_and_server_error_are_retried(int status)
    {
        var n = 0;
        using var server = new LoopbackChatServer(_ => Interlocked.Increment(ref n) == 1 ? Reply.Error(status, "busy") : Reply.Completion("[[5]]"));
        using var client = Client(server);
        var (result, judgment) = await Judge(client);
        Assert.That(server.Requests, Has.Count.EqualTo(2));
        Assert.That(result.Get<NumericMetric>("safety").Value, Is.EqualTo(5));
        Assert.That(judgment.Attempts, Is.EqualTo(1), "a retried transport failure is not a counted attempt");
    }

    [Test]
    public async Task Rejected_requests_count_and_end_as_an_api_error()
    {
        using var server = new LoopbackChatServer(_ => Reply.Error(400, "content filter"));
        using var client = Client(server);
        var (result, judgment) = await Judge(client);
        Assert.That(server.Requests, Has.Count.EqualTo(4));
        Assert.That(judgment.IsApiError, Is.True);
        Assert.That(judgment.Attempts, Is.EqualTo(4));
        Assert.That(result.Get<NumericMetric>("safety").Value, Is.Null);
    }

    [Test]
    public void Server_that_keeps_failing_ends_the_run_with_a_message()
    {
        using var server = new LoopbackChatServer(_ => Reply.Error(503, "down"));
        using var client = Client(server);
        var e = Assert.ThrowsAsync<BackendException>(async () => await Judge(client));
        Assert.That(e!.Message, Does.StartWith("judge: the server kept failing"));
        Assert.That(server.Requests, Has.Count.EqualTo(4), "1 request + the transport's 3 retries");
    }

    [Test]
    public void Unreachable_server_is_named()
    {
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }
        using var client = OpenAiEndpoint.Create(new EndpointOptions(new Uri($"http://127.0.0.1:{port}/v1"), "m", KeyVariable,
            TransportRetries: 0));
        var e = Assert.ThrowsAsync<BackendException>(async () => await Judge(client));
        Assert.That(e!.Message, Does.StartWith("judge: cannot reach the server"));
    }
}
