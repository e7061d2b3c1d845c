using System.Text.Json.Nodes;
using Qwen35.Export.LlamaCpp;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>
/// An adapter on EVERY projection of every layer of the golden model (linear attention's in_proj_qkv, in_proj_z,
/// in_proj_a, in_proj_b, out_proj; full attention's q/k/v/o; the MLP), random nonzero A and B, with a rank_pattern
/// and an alpha_pattern, exported (a) as a LoRA GGUF applied by llama.cpp on the golden F32 GGUF and (b) merged into
/// one GGUF, both against the trainer's OWN forward with that adapter attached (Qwen35ForCausalLM + LoraInjector):
/// every reorder of docs/gguf.md section 5 (B's rows for qkv/z/a/b, A's columns for out_proj) and the scaling folds
/// are right only if llama.cpp reproduces the trainer.
/// </summary>
public class GgufEveryProjectionTests
{
    // Measured over the three golden sequences: llama.cpp vs the trainer 3.3e-5 / 6.6e-5 / 8.9e-5 (LoRA GGUF) and
    // 3.2e-5 / 6.0e-5 / 1.08e-4 (merged), while the adapter moves the logits by 4.8. The floor of such a comparison is
    // fp32 reassociation, measured in the same test: llama.cpp vs the trainer on the base model (no adapter) 2.5e-5 ..
    // 4.6e-5, and the trainer against ITSELF with this adapter merged instead of attached 2.8e-5 .. 8.1e-5 (same math,
    // other order). Their sum, 1.3e-4, is what two correct fp32 implementations may differ by here; the bound is that
    // rounded up to 2e-4. A wrong reorder or fold of any one module moves the logits by O(1) (the adapter's effect is
    // 2·10^4 times the bound), so the bound cannot hide one.
    const double Bound = 2e-4;
    const float FactorStd = 0.15f;

    static readonly string[] Linear = ["in_proj_qkv", "in_proj_z", "in_proj_a", "in_proj_b", "out_proj"];
    static readonly string[] Full = ["q_proj", "k_proj", "v_proj", "o_proj"];
    static readonly string[] Mlp = ["gate_proj", "up_proj", "down_proj"];

    static readonly Lazy<string> AdapterDir = new(WriteAdapter);

    /// <summary>The adapter: r 2 (in_proj_z and q_proj r 3 by rank_pattern), alpha 4 (in_proj_a and k_proj 6 by
    /// alpha_pattern, so their scaling 3 is folded into B for llama.cpp), A and B ~ N(0, 0.15²) from a fixed seed.</summary>
    static string WriteAdapter()
    {
        var dir = GgufFiles.GoldenAdapterWith("every-projection", c =>
        {
            c["target_modules"] = new JsonArray([.. Linear.Concat(Full).Concat(Mlp).Order(StringComparer.Ordinal).Select(n => (JsonNode)n)]);
            c["layers_to_transform"] = null;
            c["r"] = 2;
            c["lora_alpha"] = 4;
            c["rank_pattern"] = new JsonObject { ["in_proj_z"] = 3, ["q_proj"] = 3 };
            c["alpha_pattern"] = new JsonObject { ["in_proj_a"] = 6, ["k_proj"] = 6 };
        });
        var cfg = Qwen35TextConfig.Load(Path.Combine(TestPaths.GoldenTiny, "config.json"));
        using var scope = NewDisposeScope();
        var gen = new Generator(11);
        var tensors = new List<(string, Tensor)>();
        foreach (var e in ParameterManifest.For(cfg).Where(e => e.Shape.Length == 2 && e.Name.Contains(".layers.", StringComparison.Ordinal)))
        {
            var module = e.Name[..^".weight".Length];
            var shortName = module[(module.LastIndexOf('.') + 1)..];
            var rank = shortName is "in_proj_z" or "q_proj" ? 3 : 2;
            var key = "base_model.model." + module;
            tensors.Add((key + ".lora_A.weight", randn([rank, e.Shape[1]], generator: gen) * FactorStd));
            tensors.Add((key + ".lora_B.weight", randn([e.Shape[0], rank], generator: gen) * FactorStd));
        }
        Assert.That(tensors, Has.Count.EqualTo(2 * (3 * (Linear.Length + Mlp.Length) + Full.Length + Mlp.Length)), "every projection of the 4 layers");
        SafeTensorsWriter.Write(Path.Combine(dir, PeftAdapter.WeightsFileName), tensors.OrderBy(t => t.Item1, StringComparer.Ordinal),
            SafeTensorsWriter.DefaultMetadata);
        return dir;
    }

    static float[][] Trainer(long[] ids) => TrainerForward.Logits(() =>
    {
        var (model, _) = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU);
        LoraInjector.LoadAdapter(model, AdapterDir.Value);
        return model;
    }, ids);

    [Test]
    public void The_adapter_covers_every_projection_with_rank_and_alpha_patterns()
    {
        using var peft = PeftAdapter.Load(AdapterDir.Value);
        var shortNames = peft.Modules.Select(m => m.ModuleName[(m.ModuleName.LastIndexOf('.') + 1)..]).Distinct().Order(StringComparer.Ordinal);
        Assert.That(shortNames, Is.EqualTo(Linear.Concat(Full).Concat(Mlp).Order(StringComparer.Ordinal)));
        Assert.That(peft.Modules.Select(m => m.ModuleName.Split('.')[3]).Distinct(), Is.EqualTo(new[] { "0", "1", "2", "3" }));
        Assert.That(peft.Options.ScalingFor("model.language_model.layers.0.linear_attn.in_proj_a"), Is.EqualTo(3.0));
        Assert.That(peft.Options.ScalingFor("model.language_model.layers.0.linear_attn.in_proj_z"), Is.EqualTo(4.0 / 3));
        Assert.That(peft.Modules.All(m => m.B.abs().max().item<float>() > 0), "B is nonzero");
    }

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void LoRA_GGUF_on_the_F32_base_and_the_merged_GGUF_in_llama_cpp_give_the_trainers_own_logits(int seq)
    {
        var ids = GgufFiles.Reference.Sequences[seq];
        var trainer = Trainer(ids);
        var lora = GgufFiles.GoldenLora("f32", AdapterDir.Value);
        var merged = MergedFile.Value;
        var viaLora = LlamaCppRunner.LogitsWithLora(GgufFiles.GoldenTiny("f32"), lora, 1f, ids);
        var viaMerged = LlamaCppRunner.Logits(merged, ids);
        var loraDiff = LlamaCppRunner.MaxAbsDiff(viaLora, trainer);
        var mergedDiff = LlamaCppRunner.MaxAbsDiff(viaMerged, trainer);
        var effect = LlamaCppRunner.MaxAbsDiff(trainer, GgufFiles.Rows($"seq{seq}.logits"));
        var baseGap = LlamaCppRunner.MaxAbsDiff(LlamaCppRunner.Logits(GgufFiles.GoldenTiny("f32"), ids), TrainerForward.Logits(
            () => Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU).Model, ids));
        var mergedTrainer = TrainerForward.Logits(() =>
        {
            var (model, _) = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU);
            LoraInjector.LoadAdapter(model, AdapterDir.Value);
            LoraMerge.Merge(model);
            return model;
        }, ids);
        var orderGap = LlamaCppRunner.MaxAbsDiff(mergedTrainer, trainer);
        var maxLogit = trainer.Max(r => r.Max(Math.Abs));
        var baseMax = GgufFiles.Rows($"seq{seq}.logits").Max(r => r.Max(Math.Abs));
        TestContext.Out.WriteLine($"seq{seq} floors: llama.cpp vs the trainer on the base model {baseGap:E2}; the trainer merged vs attached {orderGap:E2}; " +
                                  $"max |logit| {maxLogit:F2} (base model {baseMax:F2})");
        TestContext.Out.WriteLine($"seq{seq}: max |llama.cpp LoRA GGUF - trainer| = {loraDiff:E2}, max |llama.cpp merged - trainer| = {mergedDiff:E2} " +
                                  $"(the adapter's effect on the trainer's logits: {effect:E2})");
        Assert.That(loraDiff, Is.LessThanOrEqualTo(Bound), "LoRA GGUF");
        Assert.That(mergedDiff, Is.LessThanOrEqualTo(Bound), "merged GGUF");
        Assert.That(effect, Is.GreaterThan(1000 * Bound), "the adapter changed little");
        Assert.That(baseGap + orderGap, Is.LessThanOrEqualTo(Bound), "the fp32 floor the bound is built on has moved; re-measure");
    }

    static readonly Lazy<string> MergedFile = new(() =>
    {
        var path = Path.Combine(TestPaths.TempDir(), "every-projection-merged.gguf");
        var (code, _, err) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", AdapterDir.Value, "--out", path);
        Assert.That(code, Is.EqualTo(0), err);
        return path;
    });
}
