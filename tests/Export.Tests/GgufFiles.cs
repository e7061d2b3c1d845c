using Qwen35.Cli.Commands;
using Qwen35.Tests;
using Qwen35.Training.Verification;
using System.CommandLine;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>The GGUF files the tests share, each written once per test run by the real `trainer gguf` verb.</summary>
static class GgufFiles
{
    static readonly string Dir = TestPaths.TempDir("qwen35-gguf");
    static readonly Dictionary<string, string> Written = [];
    static readonly Lazy<GoldenReference> Golden = new(() => GoldenReference.Open(TestPaths.GoldenTiny));

    public static GoldenReference Reference => Golden.Value;

    /// <summary>`trainer gguf --model tests/fixtures/qwen35-tiny-a [--adapter …] --type T` (asserted to exit 0).</summary>
    public static string GoldenTiny(string type, bool adapter = false)
    {
        var key = type + (adapter ? "+lora" : "");
        lock (Written)
        {
            if (Written.TryGetValue(key, out var path)) return path;
            path = Path.Combine(Dir, $"tiny-a-{key}.gguf");
            string[] args = ["gguf", "--model", TestPaths.GoldenTiny, "--out", path, "--type", type,
                .. adapter ? new[] { "--adapter", Path.Combine(TestPaths.GoldenTiny, "adapter") } : []];
            var (code, _, err) = Run(args);
            Assert.That(code, Is.EqualTo(0), err);
            return Written[key] = path;
        }
    }

    /// <summary>`trainer gguf --model tests/fixtures/qwen35-tiny-a --adapter ADAPTER --lora-only --type T` (asserted to exit
    /// 0); <paramref name="adapter"/> defaults to the golden adapter.</summary>
    public static string GoldenLora(string type, string? adapter = null)
    {
        var key = "lora-only-" + type + (adapter == null ? "" : "-" + Path.GetFileName(adapter));
        lock (Written)
        {
            if (Written.TryGetValue(key, out var path)) return path;
            path = Path.Combine(Dir, $"tiny-a-{key}.gguf");
            var (code, _, err) = Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", adapter ?? Path.Combine(TestPaths.GoldenTiny, "adapter"),
                "--lora-only", "--out", path, "--type", type);
            Assert.That(code, Is.EqualTo(0), err);
            return Written[key] = path;
        }
    }

    /// <summary>A copy of the golden adapter whose adapter_config.json is changed by <paramref name="edit"/>.</summary>
    public static string GoldenAdapterWith(string name, Action<System.Text.Json.Nodes.JsonNode> edit)
    {
        var dir = Path.Combine(TestPaths.TempDir(), name);
        Directory.CreateDirectory(dir);
        var src = Path.Combine(TestPaths.GoldenTiny, "adapter");
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        var configPath = Path.Combine(dir, "adapter_config.json");
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(configPath))!;
        edit(config);
        File.WriteAllText(configPath, config.ToJsonString());
        return dir;
    }

    /// <summary>Runs the gguf verb in-process, capturing its output.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var root = new RootCommand { GgufCommand.Build() };
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = root.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>A golden tensor as [T][V] floats.</summary>
    public static float[][] Rows(string name)
    {
        using var t = Reference.Tensor(name).to(ScalarType.Float32).contiguous();
        var flat = t.data<float>().ToArray();
        var v = (int)t.shape[1];
        return Enumerable.Range(0, (int)t.shape[0]).Select(i => flat.AsSpan(i * v, v).ToArray()).ToArray();
    }
}
