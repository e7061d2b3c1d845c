using System.Text.Json.Nodes;
using Qwen35.Models.Config;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

public class LoadingTests
{
    /// <summary>Writes the golden checkpoint's tensors, renamed/filtered, with a (possibly edited) golden config.</summary>
    static string WriteVariant(Func<string, string?> rename, Action<JsonObject>? editConfig = null,
        Func<string, Tensor, Tensor>? editTensor = null, IEnumerable<(string, Tensor)>? extra = null)
    {
        var dir = TestPaths.TempDir("qwen35-load");
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.GoldenTiny, "config.json")))!.AsObject();
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
        using var scope = NewDisposeScope();
        using var source = SafeTensorsCheckpoint.Open(TestPaths.GoldenTiny);
        var tensors = new List<(string, Tensor)>();
        foreach (var name in source.Names)
            if (rename(name) is { } target)
                tensors.Add((target, editTensor?.Invoke(name, source.Load(name)) ?? source.Load(name)));
        if (extra is not null) tensors.AddRange(extra);
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors);
        return dir;
    }

    [Test]
    public void TiedConfigLoadsWithoutLmHead()
    {
        var dir = WriteVariant(n => n == "lm_head.weight" ? null : n, c =>
        {
            c["tie_word_embeddings"] = true;
            c["text_config"]!["tie_word_embeddings"] = true;
        });
        var (model, report) = Qwen35ForCausalLM.FromPretrained(dir, ScalarType.Float32, CPU);
        using (model)
        {
            Assert.That(report.Tied, Is.True);
            Assert.That(model.IsTied, Is.True);
            Assert.That(model.named_parameters().Select(p => p.name), Does.Not.Contain("lm_head.weight"));
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            // The head is the embedding matrix itself (same storage), and the logits use it.
            var embed = model.TextModel.embed_tokens.weight;
            Assert.That(model.LmHeadWeight, Is.SameAs(embed));
            var hidden = model.Forward(new ModelInputs(GoldenData.Ids(GoldenData.Sequences[0][..5])));
            var expected = hidden.matmul(embed.t());
            Assert.That(GoldenData.MaxAbsDiff(model.Logits(hidden), expected), Is.LessThan(1e-6));
        }
    }

    [Test]
    public void FlatTextOnlyLayoutLoads()
    {
        // A text-only export: flat qwen3_5_text config, keys model.layers.* / model.embed_tokens / model.norm, no visual/mtp.
        var dir = WriteVariant(n =>
                n.StartsWith("model.visual.") || n.StartsWith("mtp.") ? null
                : n.StartsWith("model.language_model.") ? "model." + n["model.language_model.".Length..] : n,
            c =>
            {
                var text = c["text_config"]!.AsObject();
                c.Clear();
                foreach (var (k, v) in text.ToList()) { text.Remove(k); c[k] = v; }
            });
        var (model, report) = Qwen35ForCausalLM.FromPretrained(dir, ScalarType.Float32, CPU);
        using (model)
        {
            Assert.That(report.Layout, Is.EqualTo("flat"));
            Assert.That(report.Loaded, Is.EqualTo(56));
            Assert.That(report.Skipped, Is.Empty);
            using var scope = NewDisposeScope();
            using var noGrad = no_grad();
            var logits = model.Logits(model.Forward(new ModelInputs(GoldenData.Ids(GoldenData.Sequences[0])))).squeeze(0);
            Assert.That(GoldenData.MaxAbsDiff(logits, GoldenData.Expected("seq0.logits")), Is.LessThanOrEqualTo(1e-4));
        }
    }

    [Test]
    public void MissingUnexpectedAndMisShapedKeysAreNamedSorted()
    {
        const string missing1 = "model.language_model.layers.2.mlp.up_proj.weight";
        const string missing2 = "model.language_model.layers.0.linear_attn.A_log";
        const string shaped = "model.language_model.layers.3.self_attn.k_norm.weight";
        var dir = WriteVariant(n => n is missing1 or missing2 ? null : n,
            editTensor: (n, t) => n == shaped ? zeros(17) : t,
            extra: [("model.language_model.layers.1.linear_attn.bias", zeros(4)), ("foo.weight", zeros(2))]);
        var e = Assert.Throws<UserInputException>(() => Qwen35ForCausalLM.FromPretrained(dir, ScalarType.Float32, CPU))!;
        TestContext.Out.WriteLine(e.Message);
        Assert.That(e.Message, Does.Contain(Path.Combine(dir, "model.safetensors")));
        Assert.That(e.Message, Does.Contain($"2 missing key(s): {missing2}; {missing1}"));
        Assert.That(e.Message, Does.Contain("2 unexpected key(s): foo.weight; model.language_model.layers.1.linear_attn.bias"));
        Assert.That(e.Message, Does.Contain($"{shaped} has shape [17], expected [16]"));
    }

    [Test]
    public void MissingLmHeadOfUntiedModelIsAnError()
    {
        var dir = WriteVariant(n => n == "lm_head.weight" ? null : n);
        var e = Assert.Throws<UserInputException>(() => Qwen35ForCausalLM.FromPretrained(dir, ScalarType.Float32, CPU))!;
        Assert.That(e.Message, Does.Contain("missing key(s): lm_head.weight"));
    }

    [Test]
    public void CreateRandomFollowsHfInitAndSeed()
    {
        var config = Qwen35TextConfig.Tiny();
        using var a = Qwen35ForCausalLM.CreateRandom(config, seed: 3);
        using var b = Qwen35ForCausalLM.CreateRandom(config, seed: 3);
        using var c = Qwen35ForCausalLM.CreateRandom(config, seed: 4);
        var pa = a.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pb = b.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var pc = c.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        const string l0 = "model.language_model.layers.0.";
        Assert.Multiple(() =>
        {
            foreach (var name in pa.Keys) Assert.That(pa[name].allclose(pb[name], 0, 0), Is.True, name);
            Assert.That(pa[l0 + "mlp.up_proj.weight"].allclose(pc[l0 + "mlp.up_proj.weight"]), Is.False, "seed matters");
            var w = pa[l0 + "mlp.up_proj.weight"];
            Assert.That(w.std().ToDouble(), Is.EqualTo(0.02).Within(0.002));
            Assert.That(pa[l0 + "input_layernorm.weight"].abs().max().ToDouble(), Is.Zero);
            Assert.That(pa[l0 + "linear_attn.norm.weight"].eq(1).all().item<bool>(), Is.True);
            Assert.That(pa[l0 + "linear_attn.dt_bias"].eq(1).all().item<bool>(), Is.True);
            var aLog = pa[l0 + "linear_attn.A_log"].exp();
            Assert.That(aLog.min().ToDouble(), Is.GreaterThanOrEqualTo(0.01 - 1e-6));
            Assert.That(aLog.max().ToDouble(), Is.LessThanOrEqualTo(16 + 1e-4));
        });
    }
}
