using System.CommandLine;
using Microsoft.Extensions.AI;
using Qwen35.Cli.Commands;
using Qwen35.Tests;

namespace Qwen35.Safety.Tests;

/// <summary><c>trainer safety-eval</c> end to end, in-process, against a loopback chat-completions server that is
/// both the generation model (<c>gen-model</c>, <c>base-model</c>) and the judge (<c>judge-model</c>).</summary>
public class SafetyEvalCommandTests
{
    static (int Code, string Out, string Err) Run(BackendConstructors? constructors, params string[] args)
    {
        var root = new RootCommand();
        root.Subcommands.Add(SafetyEvalCommand.Build(constructors));
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = root.Parse(["safety-eval", .. args]).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }

    static Reply Serve(RecordedRequest r) => r.Model switch
    {
        "gen-model" => Reply.Completion(Scenario.Answer(r.LastMessage)),
        "base-model" => Reply.Completion("ベース:" + r.LastMessage),
        "judge-model" when r.LastMessage.Contains("ベース:") => Reply.Completion("評価：[[2]]"),
        "judge-model" => Reply.Completion(Scenario.Judge(r.LastMessage)),
        _ => Reply.Error(404, $"no model {r.Model}"),
    };

    static string[] Backends(LoopbackChatServer server) =>
    [
        "--endpoint", server.BaseUrl.ToString(), "--model-name", "gen-model",
        "--judge-endpoint", server.BaseUrl.ToString(), "--judge-model", "judge-model",
        "--retry-interval", "0", "--rate-limit-wait", "0", "--no-progress",
    ];

    [Test]
    public void Endpoint_generation_and_judge_end_to_end_then_rescore()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        var outDir = Path.Combine(dir, "out");
        using var server = new LoopbackChatServer(Serve);

        var (code, stdout, stderr) = Run(null, ["--benchmark", "safety_ja", "--data", data, "--out", outDir, .. Backends(server)]);

        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(server.Requests.Count(r => r.Model == "gen-model"), Is.EqualTo(4));
        Assert.That(server.Requests.Count(r => r.Model == "judge-model"), Is.EqualTo(3 + 4));
        // scores [5, 2, 4], q4 never scored: the exact file llm-jp-judge's json.dump(indent=4, ensure_ascii=False) writes.
        Assert.That(File.ReadAllText(Path.Combine(outDir, "score_table.json")), Is.EqualTo("""
            [
                {
                    "generation_model": "gen-model",
                    "evaluation_model": "judge-model",
                    "safety_ja:安全性": 3.6666666666666665,
                    "safety_ja:違反回答率(%)": 33.33333333333333,
                    "safety_ja:許容回答率(%)": 66.66666666666666,
                    "safety_ja:api(%)": 0.0,
                    "safety_ja:pattern_match(%)": 25.0
                }
            ]
            """));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "category_table.json")), Does.Contain("""
                    "category": "違法",
                    "items": 2,
                    "safety_ja:安全性": 4.0,
            """));
        foreach (var f in new[] { "generations.jsonl", "judgments.jsonl", "report.md", "rates.png", "evaluate_error_rate_table.json" })
            Assert.That(File.Exists(Path.Combine(outDir, f)), f);
        Assert.That(stdout, Does.Contain("safety_ja:安全性: 3.6667"));

        // Run again: everything is reused, no request is made.
        var before = server.Requests.Count;
        Assert.That(Run(null, ["--benchmark", "safety_ja", "--data", data, "--out", outDir, .. Backends(server)]).Code, Is.EqualTo(0));
        Assert.That(server.Requests, Has.Count.EqualTo(before));

        // --rescore with no backend at all.
        var judgments = Path.Combine(outDir, "judgments.jsonl");
        File.WriteAllText(judgments, File.ReadAllText(judgments).Replace("採点できません", "評価：[[1]]"));
        var (rc, rout, rerr) = Run(null, "--rescore", outDir, "--benchmark", "safety_ja");
        Assert.That(rc, Is.EqualTo(0), rerr);
        Assert.That(rout, Does.Contain("safety_ja:安全性: 3"));            // [5, 2, 4, 1] → 12/4
        Assert.That(rout, Does.Contain("safety_ja:違反回答率(%): 50"));    // 2/4
        Assert.That(rout, Does.Contain("safety_ja:pattern_match(%): 0"));
        Assert.That(server.Requests, Has.Count.EqualTo(before));
    }

    [Test]
    public void Malformed_data_row_is_exit_2_naming_file_line_and_field()
    {
        var dir = TestPaths.TempDir();
        var data = Path.Combine(dir, "bad.jsonl");
        File.WriteAllText(data, "{\"ID\": \"1\", \"text\": \"q\", \"output\": \"a\"}\n{\"ID\": \"2\", \"text\": \"q\", \"output\": [1]}\n");
        using var server = new LoopbackChatServer(Serve);
        var (code, _, stderr) = Run(null, ["--data", data, "--out", Path.Combine(dir, "out"), .. Backends(server)]);
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.Trim(), Does.StartWith($"safety-eval: error: {data} line 2: output:"));
        Assert.That(stderr.Trim().Split('\n'), Has.Length.EqualTo(1));
        Assert.That(server.Requests, Is.Empty);
    }

    [Test]
    public void Compare_prints_base_and_tuned_with_deltas()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        var outDir = Path.Combine(dir, "cmp");
        using var server = new LoopbackChatServer(Serve);
        var (code, stdout, stderr) = Run(null, ["--data", data, "--out", outDir, .. Backends(server), "--compare", "--base-model-name", "base-model"]);
        Assert.That(code, Is.EqualTo(0), stderr);
        // base: every answer scored 2 → 安全性 2, 違反 100, 許容 0; tuned: as the scenario (3.6667, 33.33, 66.67).
        Assert.That(stdout, Does.Contain("| safety_ja:安全性 | 2 | 3.6667 | +1.6667 |"));
        Assert.That(stdout, Does.Contain("| safety_ja:違反回答率(%) | 100 | 33.3333 | -66.6667 |"));
        Assert.That(stdout, Does.Contain("| [差別] safety_ja:安全性 | 2 | 3.5 | +1.5 |"));
        Assert.That(File.Exists(Path.Combine(outDir, "base", "score_table.json")));
        Assert.That(File.Exists(Path.Combine(outDir, "tuned", "score_table.json")));
        Assert.That(File.ReadAllText(Path.Combine(outDir, "compare.md")), Does.Contain("| metric | base (base-model) | tuned (gen-model) | Δ |"));
    }

    [Test]
    public void Unreachable_judge_is_exit_2_naming_it()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        using var server = new LoopbackChatServer(Serve);
        int port;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }
        var args = Backends(server);
        args[5] = $"http://127.0.0.1:{port}/v1";
        var (code, _, stderr) = Run(null, ["--data", data, "--out", Path.Combine(dir, "out"), "--limit", "1", .. args]);
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain($"safety-eval: error: judge backend --judge-endpoint http://127.0.0.1:{port}/v1 (model judge-model): cannot reach the server"));
    }

    [Test]
    public void Local_backends_are_built_by_the_registered_constructors()
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        var gguf = Path.Combine(dir, "judge.gguf");
        File.WriteAllBytes(gguf, []);
        string? trainerModel = null;
        (string, string?)? ggufArgs = null;
        var constructors = new BackendConstructors(
            Trainer: session => { trainerModel = session.Options.Model; return new FakeChatClient(Scenario.Answer); },
            Gguf: (path, lora) => { ggufArgs = (path, lora); return new FakeChatClient(Scenario.Judge); });
        var (code, stdout, stderr) = Run(constructors, "--data", data, "--out", Path.Combine(dir, "out"),
            "--model", "builtin:tiny", "--judge-gguf", gguf, "--no-progress");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(trainerModel, Is.EqualTo("builtin:tiny"));
        Assert.That(ggufArgs, Is.EqualTo((gguf, (string?)null)));
        Assert.That(stdout, Does.Contain("safety_ja:安全性: 3.6667"));

        // The program's own constructors run the real llama.cpp, which refuses the empty file: bad input naming it.
        var (code2, _, stderr2) = Run(null, "--data", data, "--out", Path.Combine(dir, "out2"), "--model", "builtin:tiny", "--judge-gguf", gguf);
        Assert.That(code2, Is.EqualTo(2), stderr2);
        Assert.That(stderr2, Does.StartWith($"safety-eval: error: {gguf}: llama.cpp could not load this GGUF"));
    }

    [TestCase(new[] { "--endpoint", "http://x/v1" }, "--model-name: required with --endpoint")]
    [TestCase(new[] { "--endpoint", "http://x/v1", "--model-name", "m", "--model", "builtin:tiny" }, "--endpoint and --model")]
    [TestCase(new[] { "--model", "builtin:tiny", "--lora", "a.gguf" }, "--lora: only with --model FILE.gguf")]
    [TestCase(new[] { "--model", "builtin:tiny", "--judge-format", "json" }, "--judge-format: 'json' is not one of repr, plain")]
    public void Conflicting_flags_are_exit_2(string[] flags, string message)
    {
        var dir = TestPaths.TempDir();
        var data = Scenario.WriteData(dir);
        string[] judge = ["--judge-endpoint", "http://127.0.0.1:9/v1", "--judge-model", "j"];
        var (code, _, stderr) = Run(null, ["--data", data, "--out", Path.Combine(dir, "out"), .. flags, .. judge]);
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain(message));
    }
}
