using System.Text.Json.Nodes;
using Qwen35.Models.Config;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

public class TargetingTests
{
    static readonly string[] GoldenTargets = ["down_proj", "gate_proj", "in_proj_qkv", "o_proj", "out_proj", "q_proj", "up_proj", "v_proj"];

    static IReadOnlyList<string> Selected(LoraOptions options)
    {
        using var model = FakeDecoder.Tiny();
        return LoraInjector.Select(DecoderProjections.Find(model), options).Select(p => p.Name).ToList();
    }

    [Test]
    public void NameList_WithLayers_SelectsTheGoldenWrappedModules()
    {
        // expected.json "lora.wrapped_modules" is what PEFT wrapped for the golden adapter config.
        var golden = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.GoldenTiny, "expected.json")))!["lora"]!["wrapped_modules"]!
            .AsArray().Select(n => n!.GetValue<string>()).ToList();

        var selected = Selected(new LoraOptions { Rank = 4, Alpha = 8, TargetModules = LoraTargets.Names(GoldenTargets), LayersToTransform = [1, 3] });

        Assert.That(selected, Is.EqualTo(golden));
    }

    [Test]
    public void NameList_MatchesExactNameOrDottedSuffixOnly()
    {
        Assert.That(Selected(new LoraOptions { TargetModules = LoraTargets.Names("self_attn.q_proj") }),
            Is.EqualTo(new[] { "model.language_model.layers.3.self_attn.q_proj" }));
        Assert.That(Selected(new LoraOptions { TargetModules = LoraTargets.Names("model.language_model.layers.0.mlp.up_proj") }),
            Is.EqualTo(new[] { "model.language_model.layers.0.mlp.up_proj" }));
        // "proj" is a substring of every name but not a dotted suffix of any: PEFT matches nothing, so do we (error).
        Assert.Throws<UserInputException>(() => Selected(new LoraOptions { TargetModules = LoraTargets.Names("proj") }));
    }

    [Test]
    public void Regex_IsAFullMatchOnTheModuleName()
    {
        var selected = Selected(new LoraOptions { TargetModules = LoraTargets.FromRegex(@".*\.layers\.[12]\.mlp\.(gate|up)_proj") });
        Assert.That(selected, Is.EqualTo(new[]
        {
            "model.language_model.layers.1.mlp.gate_proj", "model.language_model.layers.1.mlp.up_proj",
            "model.language_model.layers.2.mlp.gate_proj", "model.language_model.layers.2.mlp.up_proj",
        }));
        // A regex matching only part of the name selects nothing (fullmatch, not search).
        var e = Assert.Throws<UserInputException>(() => Selected(new LoraOptions { TargetModules = LoraTargets.FromRegex("q_proj") }));
        Assert.That(e!.Message, Does.Contain("in_proj_qkv").And.Contain("q_proj"), "the error must list the names that exist");
    }

    [Test]
    public void AllLinear_TakesEveryDecoderProjection_NeverLmHead()
    {
        var selected = Selected(new LoraOptions { TargetModules = LoraTargets.FromPeftString("all-linear") });
        // 3 linear-attention layers x (5 + 3) + 1 full-attention layer x (4 + 3).
        Assert.That(selected, Has.Count.EqualTo(3 * 8 + 7));
        Assert.That(selected, Has.None.Contains("lm_head"));
        Assert.That(selected, Does.Contain("model.language_model.layers.0.linear_attn.in_proj_b"));
    }

    [Test]
    public void UnknownTarget_ErrorListsExistingNames()
    {
        var e = Assert.Throws<UserInputException>(() => Selected(new LoraOptions { TargetModules = LoraTargets.Names("q_proj", "qkv_proj") }));
        Assert.That(e!.Message, Does.Contain("\"qkv_proj\"").And.Contain("in_proj_qkv").And.Contain("down_proj"));
    }

    [Test]
    public void LayersOutOfRange_AreAnError()
    {
        var e = Assert.Throws<UserInputException>(() => Selected(new LoraOptions { TargetModules = LoraTargets.Names("up_proj"), LayersToTransform = [2, 7] }));
        Assert.That(e!.Message, Does.Contain("7").And.Contain("0-3"));
    }

    [Test]
    public void RankAndAlphaPatterns_UsePeftKeySemantics()
    {
        var options = new LoraOptions
        {
            Rank = 8, Alpha = 16,
            RankPattern = new Dictionary<string, int> { ["q_proj"] = 2, [@"layers\.3\.mlp\.down_proj"] = 4 },
            AlphaPattern = new Dictionary<string, double> { ["down_proj"] = 3 },
        };
        Assert.That(options.RankFor("model.language_model.layers.3.self_attn.q_proj"), Is.EqualTo(2));
        Assert.That(options.RankFor("model.language_model.layers.3.mlp.down_proj"), Is.EqualTo(4));
        Assert.That(options.RankFor("model.language_model.layers.2.mlp.down_proj"), Is.EqualTo(8));
        // The key must end the name after a dot: "q_proj" does not select "in_proj_qkv" nor "xq_proj".
        Assert.That(options.RankFor("model.language_model.layers.0.linear_attn.in_proj_qkv"), Is.EqualTo(8));
        Assert.That(options.RankFor("model.xq_proj"), Is.EqualTo(8));
        Assert.That(options.AlphaFor("model.language_model.layers.3.mlp.down_proj"), Is.EqualTo(3));
        Assert.That(options.ScalingFor("model.language_model.layers.3.mlp.down_proj"), Is.EqualTo(3.0 / 4));
        Assert.That(options.ScalingFor("model.language_model.layers.0.mlp.up_proj"), Is.EqualTo(2.0));
        Assert.That((options with { UseRsLora = true }).ScalingFor("model.language_model.layers.0.mlp.up_proj"), Is.EqualTo(16 / Math.Sqrt(8)));
    }

    [Test]
    public void Apply_FreezesEverythingButTheAdapters_AndReportsCounts()
    {
        using var model = FakeDecoder.Tiny();
        long baseParams = model.parameters().Sum(p => p.numel());
        var options = new LoraOptions
        {
            Rank = 4, Alpha = 8, TargetModules = LoraTargets.Names("q_proj", "in_proj_qkv", "down_proj"),
            RankPattern = new Dictionary<string, int> { ["down_proj"] = 2 },
        };

        var report = LoraInjector.Apply(model, options, seed: 1);

        // q_proj (layer 3): 4*(64+128); in_proj_qkv (layers 0-2): 3 * 4*(64+128); down_proj (4 layers): 4 * 2*(128+64).
        long expected = 4 * 192 + 3 * 4 * 192 + 4 * 2 * 192;
        Assert.That(report.TrainableParameters, Is.EqualTo(expected));
        Assert.That(report.TotalParameters, Is.EqualTo(baseParams + expected));
        Assert.That(report.TrainableShare, Is.EqualTo((double)expected / (baseParams + expected)).Within(1e-12));
        Assert.That(report.ByModuleType["down_proj"], Is.EqualTo(4 * 2 * 192));
        Assert.That(report.ByLayerType[Qwen35TextConfig.FullAttention], Is.EqualTo(4 * 192 + 2 * 192));
        Assert.That(report.ByLayerType[Qwen35TextConfig.LinearAttention], Is.EqualTo(3 * 4 * 192 + 3 * 2 * 192));
        var trainable = model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => p.name).ToList();
        Assert.That(trainable, Has.Count.EqualTo(2 * (1 + 3 + 4)));
        Assert.That(trainable, Has.All.Match(@"\.lora_[AB]\.weight$"));
        Assert.That(trainable, Does.Contain("model.language_model.layers.3.self_attn.q_proj.lora_A.weight"));
        Assert.That(report.Format(), Does.Contain("down_proj").And.Contain("full_attention"));
    }

    [Test]
    public void Apply_InitialisesLikePeft()
    {
        using var model = FakeDecoder.Tiny();
        LoraInjector.Apply(model, new LoraOptions { Rank = 16, TargetModules = LoraTargets.Names("down_proj") }, seed: 7);
        var adapters = LoraInjector.Adapters(model);
        var a = cat(adapters.Select(x => x.LoraA.weight.detach().flatten()).ToArray(), 0);
        var bound = 1 / Math.Sqrt(128); // Kaiming-uniform(a=√5) on [r, in=128] is U(-1/√in, 1/√in)
        Assert.That(a.abs().max().item<float>(), Is.LessThanOrEqualTo(bound));
        Assert.That(a.std().item<float>(), Is.EqualTo(bound / Math.Sqrt(3)).Within(0.05 * bound));
        Assert.That(adapters.All(x => x.LoraB.weight.abs().sum().item<float>() == 0), Is.True, "B starts at zero");

        using var model2 = FakeDecoder.Tiny();
        LoraInjector.Apply(model2, new LoraOptions { Rank = 16, TargetModules = LoraTargets.Names("down_proj"), InitLoraWeights = LoraInit.Gaussian }, seed: 7);
        var g = cat(LoraInjector.Adapters(model2).Select(x => x.LoraA.weight.detach().flatten()).ToArray(), 0);
        Assert.That(g.std().item<float>(), Is.EqualTo(1.0 / 16).Within(0.05 / 16), "gaussian init: std 1/r as PEFT");
    }

    [Test]
    public void Apply_SameSeedSameAdapter_DifferentSeedDifferent()
    {
        Tensor FirstA(long seed)
        {
            var model = FakeDecoder.Tiny();
            LoraInjector.Apply(model, new LoraOptions { TargetModules = LoraTargets.Names("up_proj") }, seed);
            return LoraInjector.Adapters(model)[0].LoraA.weight.detach().clone();
        }
        using var a1 = FirstA(11);
        using var a2 = FirstA(11);
        using var a3 = FirstA(12);
        Assert.That(a1.equal(a2).all().item<bool>(), Is.True);
        Assert.That(a1.allclose(a3), Is.False);
    }

    [Test]
    public void Apply_Twice_IsRefusedBeforeChangingAnything()
    {
        using var model = FakeDecoder.Tiny();
        LoraInjector.Apply(model, new LoraOptions { TargetModules = LoraTargets.Names("up_proj") }, seed: 1);
        var e = Assert.Throws<InvalidOperationException>(() =>
            LoraInjector.Apply(model, new LoraOptions { TargetModules = LoraTargets.Names("down_proj", "up_proj") }, seed: 1));
        Assert.That(e!.Message, Does.Contain("up_proj"));
        Assert.That(LoraInjector.Adapters(model).Select(a => a.ModuleName[(a.ModuleName.LastIndexOf('.') + 1)..]), Has.All.EqualTo("up_proj"), "no down_proj adapter was added");
    }
}
