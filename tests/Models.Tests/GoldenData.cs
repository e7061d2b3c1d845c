using System.Text.Json;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

/// <summary>The golden tiny model (tests/fixtures/qwen35-tiny-a): loaded once per test run, fp32 on CPU.</summary>
static class GoldenData
{
    static readonly Lazy<(Qwen35ForCausalLM Model, LoadReport Report)> Loaded = new(() =>
    {
        var r = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU);
        r.Model.eval();
        return r;
    });

    public static Qwen35ForCausalLM Model => Loaded.Value.Model;
    public static LoadReport Report => Loaded.Value.Report;

    public static long[][] Sequences { get; } = ReadSequences(Path.Combine(TestPaths.GoldenTiny, "inputs.json"));

    public static long[][] ReadSequences(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.GetProperty("sequences").EnumerateArray()
            .Select(s => s.EnumerateArray().Select(e => e.GetInt64()).ToArray()).ToArray();
    }

    public static JsonElement ExpectedJson()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.GoldenTiny, "expected.json")));
        return doc.RootElement.Clone();
    }

    /// <summary>A tensor of expected.safetensors (fp32, CPU), detached from any dispose scope.</summary>
    public static Tensor Expected(string name)
    {
        using var file = SafeTensorsCheckpoint.Open(Path.Combine(TestPaths.GoldenTiny, "expected.safetensors"));
        return file.Load(name).clone().DetachFromDisposeScope();
    }

    public static Tensor Ids(long[] ids) => tensor(ids, dtype: ScalarType.Int64).unsqueeze(0);

    public static double MaxAbsDiff(Tensor a, Tensor b) =>
        (a.to(ScalarType.Float32) - b.to(ScalarType.Float32)).abs().max().ToDouble();
}
