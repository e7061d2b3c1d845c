using System.Text.Json;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using Qwen35.Training.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

/// <summary>The golden tiny model (tests/fixtures/qwen35-tiny-a): loaded once per test run, fp32 on CPU. The reference
/// numbers are read by <see cref="GoldenReference"/>, the reader <c>trainer verify</c> uses.</summary>
static class GoldenData
{
    static readonly Lazy<(Qwen35ForCausalLM Model, LoadReport Report)> Loaded = new(() =>
    {
        var r = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU);
        r.Model.eval();
        return r;
    });

    static readonly Lazy<GoldenReference> Golden = new(() => GoldenReference.Open(TestPaths.GoldenTiny));

    public static Qwen35ForCausalLM Model => Loaded.Value.Model;
    public static LoadReport Report => Loaded.Value.Report;

    /// <summary>Hugging Face's numbers for the golden model (held for the whole test run).</summary>
    public static GoldenReference Reference => Golden.Value;

    public static long[][] Sequences => Reference.Sequences;

    /// <summary>expected.json as it is, for what <see cref="GoldenReference"/> does not expose.</summary>
    public static JsonElement ExpectedJson()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.GoldenTiny, "expected.json")));
        return doc.RootElement.Clone();
    }

    /// <summary>A copy of a tensor of expected.safetensors (fp32, CPU), owned by the caller's dispose scope.</summary>
    public static Tensor Expected(string name) => Reference.Tensor(name).clone();

    public static Tensor Ids(long[] ids) => tensor(ids, dtype: ScalarType.Int64).unsqueeze(0);

    /// <summary><see cref="Comparison.MaxAbsDiff(Tensor, Tensor)"/>, kept under this name for the tests that call it.</summary>
    public static double MaxAbsDiff(Tensor a, Tensor b) => Comparison.MaxAbsDiff(a, b);
}
