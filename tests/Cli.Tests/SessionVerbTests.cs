using System.Text.Json;
using Qwen35.Cli.Commands;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Training;
using TorchSharp;
using Qwen35.Tests;

namespace Qwen35.Cli.Tests;

/// <summary>
/// Every verb that takes --model resolves it through the one Session: builtin:tiny works everywhere train takes it,
/// --dtype speaks one vocabulary, and a device this build lacks is bad input in one line, not a stack trace.
/// </summary>
public class SessionVerbTests
{
    static (int Code, string Out, string Err) Invoke(params string[] args) =>
        CliRunner.Run([ScoreCommand.Build(), EvalCommand.Build(), GenerateCommand.Build(), InspectCommand.Build(), MergeCommand.Build()], args);

    /// <summary>A LoRA adapter for builtin:tiny (the model every verb draws from seed 42, as the tiny recipe does),
    /// with random B so that it changes the outputs.</summary>
    static string TinyAdapter()
    {
        var dir = Path.Combine(TestPaths.TempDir("qwen35-tiny-adapter"), "adapter");
        using var model = Qwen35ForCausalLM.CreateRandom(Session.BuiltinTinyConfig(), 42);
        var options = new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraTargets.Names("q_proj", "in_proj_qkv", "down_proj") };
        LoraInjector.Apply(model, options, seed: 1);
        using (torch.no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (name.Contains(".lora_B.", StringComparison.Ordinal)) p.normal_(0, 0.2);
        PeftAdapter.Save(dir, model, options, Session.BuiltinTiny);
        return dir;
    }

    static double[] Losses(string stdout) =>
        JsonDocument.Parse(stdout).RootElement.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();

    [Test]
    public void MergeOfBuiltinTinyRoundTripsThroughScore()
    {
        var adapter = TinyAdapter();
        var tokens = TokensFile();
        var plain = Invoke("score", "--model", "builtin:tiny", "--tokens", tokens);
        var adapted = Invoke("score", "--model", "builtin:tiny", "--adapter", adapter, "--tokens", tokens);
        Assert.That(adapted.Code, Is.EqualTo(CliErrors.Ok), adapted.Err);
        Assert.That(Losses(adapted.Out).Zip(Losses(plain.Out)).Max(p => Math.Abs(p.First - p.Second)), Is.GreaterThan(1e-3),
            "the adapter changes the losses");

        var merged = Path.Combine(TestPaths.TempDir("qwen35-tiny-merged"), "merged");
        var (code, stdout, stderr) = Invoke("merge", "--model", "builtin:tiny", "--adapter", adapter, "--out", merged);
        Assert.That(code, Is.EqualTo(CliErrors.Ok), stderr);
        Assert.That(stdout, Does.Contain("config.json"));

        // The merged folder is an ordinary model folder: W + s·B·A in place of W gives the adapted losses.
        var reloaded = Invoke("score", "--model", merged, "--tokens", tokens);
        Assert.That(reloaded.Code, Is.EqualTo(CliErrors.Ok), reloaded.Err);
        var pairs = Losses(reloaded.Out).Zip(Losses(adapted.Out));
        Assert.That(pairs.Max(p => Math.Abs(p.First - p.Second)), Is.LessThan(1e-5));

        // And inspect sees the adapter fit the merged model's shapes.
        var inspect = Invoke("inspect", "--model", merged, "--adapter", adapter, "--json");
        Assert.That(inspect.Code, Is.EqualTo(CliErrors.Ok), inspect.Err);
        Assert.That(JsonDocument.Parse(inspect.Out).RootElement.GetProperty("adapter").GetProperty("fits_model").GetBoolean());
    }

    [Test]
    public void InspectDescribesBuiltinTinyWithoutACheckpoint()
    {
        var (code, stdout, stderr) = Invoke("inspect", "--model", "builtin:tiny");
        Assert.That(code, Is.EqualTo(CliErrors.Ok), stderr);
        Assert.That(stdout, Does.Contain("model: builtin:tiny").And.Contain("checkpoint: none"));
        var json = JsonDocument.Parse(Invoke("inspect", "--model", "builtin:tiny", "--json").Out).RootElement.GetProperty("model");
        // The tiny model's parameter count, from its config alone, equals the count of a model built from it.
        using var model = Qwen35ForCausalLM.CreateRandom(Session.BuiltinTinyConfig(), 42);
        Assert.That(json.GetProperty("parameters").GetProperty("total").GetInt64(), Is.EqualTo(model.parameters().Sum(p => p.numel())));
        Assert.That(json.GetProperty("checkpoint").ValueKind, Is.EqualTo(JsonValueKind.Null));
    }

    static string Sample => Path.Combine(TestPaths.RepoRoot, "data", "sample", "ja_safety_sample.jsonl");

    static string TokensFile()
    {
        var path = Path.Combine(TestPaths.TempDir("qwen35-session"), "tokens.json");
        File.WriteAllText(path, "{\"sequences\": [[1, 2, 3, 4, 5], [9, 8, 7]]}");
        return path;
    }

    // Issue defect 7: generate, inspect and merge rejected builtin:tiny, and generate had no --tokenizer.
    [Test]
    public void GenerateTakesBuiltinTinyAndItsTokenizerAndPrintsText()
    {
        var (code, stdout, stderr) = Invoke("generate", "--model", "builtin:tiny", "--prompt", "こんにちは", "--chat",
            "--max-new-tokens", "4", "--json");
        Assert.That(code, Is.EqualTo(CliErrors.Ok), stderr);
        var json = JsonDocument.Parse(stdout).RootElement;
        Assert.That(json.GetProperty("new_tokens").GetArrayLength(), Is.InRange(1, 4));
        Assert.That(json.TryGetProperty("text", out _), "the builtin tokenizer decodes the text");

        // The same tokenizer named explicitly gives the same greedy continuation.
        var (code2, stdout2, stderr2) = Invoke("generate", "--model", "builtin:tiny", "--tokenizer", "builtin", "--prompt", "こんにちは",
            "--chat", "--max-new-tokens", "4", "--json");
        Assert.That(code2, Is.EqualTo(CliErrors.Ok), stderr2);
        Assert.That(stdout2, Is.EqualTo(stdout));
    }

    [Test]
    public void ScoreOnBuiltinTinyEqualsTheSameSeedTwice()
    {
        var tokens = TokensFile();
        var first = Invoke("score", "--model", "builtin:tiny", "--tokens", tokens);
        var second = Invoke("score", "--model", "builtin:tiny", "--tokens", tokens);
        Assert.That(first.Code, Is.EqualTo(CliErrors.Ok), first.Err);
        var losses = JsonDocument.Parse(first.Out).RootElement.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        // A random 512-token model predicts about uniformly: every loss is near ln(512).
        Assert.That(losses, Has.All.InRange(Math.Log(512) - 1.5, Math.Log(512) + 1.5));
        Assert.That(second.Out, Is.EqualTo(first.Out), "builtin:tiny is seeded, so the same command gives the same numbers");
    }

    [TestCase("bf16")]
    [TestCase("bfloat16")]
    [TestCase("fp32")]
    [TestCase("float32")]
    public void EvalTakesEveryDtypeSpelling(string dtype)
    {
        var (code, stdout, stderr) = Invoke("eval", "--model", "builtin:tiny", "--data", Sample, "--max-length", "64", "--dtype", dtype, "--json");
        Assert.That(code, Is.EqualTo(CliErrors.Ok), stderr);
        var loss = JsonDocument.Parse(stdout).RootElement.GetProperty("loss").GetDouble();
        Assert.That(loss, Is.InRange(Math.Log(512) - 1.5, Math.Log(512) + 1.5));
    }

    [Test]
    public void Bf16AndFp32EvalAgreeToBf16Precision()
    {
        double Loss(string dtype) => JsonDocument.Parse(Invoke("eval", "--model", "builtin:tiny", "--data", Sample, "--max-length", "64",
            "--dtype", dtype, "--json").Out).RootElement.GetProperty("loss").GetDouble();
        Assert.That(Math.Abs(Loss("bfloat16") - Loss("float32")) / Loss("float32"), Is.LessThan(0.02));
    }

    [Test]
    public void UnknownDtypeIsBadInputNamingTheFlagAndTheChoices()
    {
        var (code, _, stderr) = Invoke("score", "--model", "builtin:tiny", "--tokens", TokensFile(), "--dtype", "fp16");
        Assert.That(code, Is.EqualTo(CliErrors.BadInput));
        Assert.That(stderr.Trim(), Is.EqualTo("score: error: --dtype: 'fp16' is not one of fp32, bf16"));
    }

    // Issue: `eval --device cuda` on the CPU build printed a stack trace and exited 3.
    [TestCase("eval")]
    [TestCase("score")]
    [TestCase("generate")]
    public void MissingCudaIsBadInputInOneLine(string verb)
    {
        string[] rest = verb switch
        {
            "eval" => ["--data", Sample],
            "score" => ["--tokens", TokensFile()],
            _ => ["--prompt-ids", "1,2,3"],
        };
        var (code, stdout, stderr) = Invoke([verb, "--model", "builtin:tiny", "--device", "cuda", .. rest]);
        Assert.That(code, Is.EqualTo(CliErrors.BadInput), stderr);
        Assert.That(stderr.Trim().Split('\n'), Has.Length.EqualTo(1), stderr);
        Assert.That(stderr, Does.StartWith($"{verb}: error: device: cuda requested but CUDA is not available"));
        Assert.That(stdout, Is.Empty);
    }

    [Test]
    public void MissingModelFolderNamesTheKeyAndThePath()
    {
        var missing = Path.Combine(TestPaths.TempDir(), "no-such-model");
        var (code, _, stderr) = Invoke("score", "--model", missing, "--tokens", TokensFile());
        Assert.That(code, Is.EqualTo(CliErrors.BadInput));
        Assert.That(stderr, Does.StartWith("score: error: model: ").And.Contain(missing).And.Contain("not found"));
    }
}
