using System.Text.Json.Nodes;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

public class AdapterExportTests
{
    static string GoldenAdapter => Path.Combine(TestPaths.GoldenTiny, "adapter");
    static string GoldenConfigText => File.ReadAllText(Path.Combine(GoldenAdapter, PeftAdapterConfig.FileName));

    static readonly LoraOptions TrainedOptions = new()
    {
        Rank = 4, Alpha = 8, Dropout = 0.05,
        TargetModules = LoraTargets.Names("q_proj", "v_proj", "o_proj", "in_proj_qkv", "gate_proj", "up_proj", "down_proj"),
        LayersToTransform = [1, 2, 3],
    };

    static FakeDecoder AdaptedFake(LoraOptions options, long seed)
    {
        var model = FakeDecoder.Tiny();
        LoraInjector.Apply(model, options, seed);
        using var g = new Generator((ulong)seed + 100);
        using var noGrad = no_grad();
        foreach (var a in LoraInjector.Adapters(model)) a.LoraB.weight.copy_(randn(a.LoraB.weight.shape, generator: g).mul(0.05));
        return model;
    }

    [Test]
    public void GoldenConfig_RoundTripsByteForByte()
    {
        var path = Path.Combine(GoldenAdapter, PeftAdapterConfig.FileName);
        var (options, baseModel) = PeftAdapterConfig.Parse(GoldenConfigText, path, []);

        Assert.That(options.Rank, Is.EqualTo(4));
        Assert.That(options.Alpha, Is.EqualTo(8));
        Assert.That(options.LayersToTransform, Is.EqualTo(new[] { 1, 3 }));
        Assert.That(options.ScalingFor("model.language_model.layers.1.mlp.up_proj"), Is.EqualTo(2.0));
        Assert.That(baseModel, Is.EqualTo("qwen35-tiny-a"));
        // Our writer reproduces PEFT's json.dumps(indent=2, sort_keys=True) exactly.
        Assert.That(PeftAdapterConfig.ToJson(options, baseModel, []) + "\n", Is.EqualTo(GoldenConfigText));
    }

    [Test]
    public void SaveThenLoad_IsBitwise_AndGivesTheSameForward()
    {
        using var scope = NewDisposeScope();
        using var model = AdaptedFake(TrainedOptions, 21);
        var dir = TestPaths.TempDir("lora-export");
        var warnings = PeftAdapter.Save(dir, model, TrainedOptions, "Qwen/Qwen3.5-9B");
        Assert.That(warnings, Is.Empty, string.Join("\n", warnings));

        using var reloaded = FakeDecoder.Tiny(); // same seed => same base weights
        var loaded = LoraInjector.LoadAdapter(reloaded, dir);

        var o = loaded.Options;
        Assert.That((o.Rank, o.Alpha, o.Dropout, o.UseRsLora, o.InitLoraWeights), Is.EqualTo((4, 8.0, 0.05, false, LoraInit.Default)));
        Assert.That(o.TargetModules.NameList, Is.EquivalentTo(TrainedOptions.TargetModules.NameList!));
        Assert.That(o.LayersToTransform, Is.EqualTo(new[] { 1, 2, 3 }));
        Assert.That(loaded.BaseModelNameOrPath, Is.EqualTo("Qwen/Qwen3.5-9B"));
        var original = LoraInjector.Adapters(model);
        var back = LoraInjector.Adapters(reloaded);
        Assert.That(back.Select(a => a.ModuleName), Is.EqualTo(original.Select(a => a.ModuleName)));
        for (var i = 0; i < back.Count; i++)
        {
            Assert.That(back[i].LoraA.weight.equal(original[i].LoraA.weight).all().item<bool>(), Is.True, back[i].ModuleName);
            Assert.That(back[i].LoraB.weight.equal(original[i].LoraB.weight).all().item<bool>(), Is.True, back[i].ModuleName);
            Assert.That(back[i].Scaling, Is.EqualTo(original[i].Scaling));
            Assert.That(back[i].LoraA.weight.requires_grad, Is.True, "a loaded adapter can keep training");
        }
        model.eval();
        reloaded.eval();
        var x = randn(1, 4, 64);
        Assert.That(reloaded.forward(x).equal(model.forward(x)).all().item<bool>(), Is.True);
    }

    [Test]
    public void ExportedAdapter_HasPeftKeysShapesAndTheGoldenConfigFieldSet()
    {
        using var model = AdaptedFake(TrainedOptions with { TargetModules = LoraTargets.AllLinear, LayersToTransform = null }, 5);
        var dir = TestPaths.TempDir("lora-format");
        PeftAdapter.Save(dir, model, TrainedOptions with { TargetModules = LoraTargets.AllLinear, LayersToTransform = null }, "base");

        using var file = SafeTensorsFile.Open(Path.Combine(dir, PeftAdapter.WeightsFileName));
        Assert.That(file.Metadata, Is.EqualTo(new Dictionary<string, string> { ["format"] = "pt" }));
        Assert.That(file.Tensors, Has.Count.EqualTo(2 * 31));
        foreach (var (key, info) in file.Tensors)
        {
            Assert.That(key, Does.Match(@"^base_model\.model\.model\.language_model\.layers\.\d+\.(self_attn|linear_attn|mlp)\.[a-z_]+\.lora_[AB]\.weight$"));
            Assert.That(info.Dtype, Is.EqualTo("F32"), key);
            var module = key["base_model.model.".Length..key.IndexOf(".lora_", StringComparison.Ordinal)];
            var proj = LoraInjector.Adapters(model).Single(a => a.ModuleName == module).Target;
            Assert.That(info.Shape, Is.EqualTo(key.EndsWith("lora_A.weight") ? new long[] { 4, proj.InFeatures } : new long[] { proj.OutFeatures, 4 }), key);
        }

        var text = File.ReadAllText(Path.Combine(dir, PeftAdapterConfig.FileName));
        Assert.That(FieldNames(text), Is.EqualTo(FieldNames(GoldenConfigText)));
        var config = JsonNode.Parse(text)!;
        Assert.That(config["peft_type"]!.GetValue<string>(), Is.EqualTo("LORA"));
        Assert.That(config["task_type"]!.GetValue<string>(), Is.EqualTo("CAUSAL_LM"));
        Assert.That(config["r"]!.GetValue<int>(), Is.EqualTo(4));
        Assert.That(config["lora_alpha"]!.GetValue<int>(), Is.EqualTo(8));
        Assert.That(config["inference_mode"]!.GetValue<bool>(), Is.True);
        // all-linear is saved expanded, as PEFT does, as a sorted list.
        Assert.That(config["target_modules"]!.AsArray().Select(n => n!.GetValue<string>()), Is.EqualTo(new[]
        {
            "down_proj", "gate_proj", "in_proj_a", "in_proj_b", "in_proj_qkv", "in_proj_z", "k_proj", "o_proj", "out_proj",
            "q_proj", "up_proj", "v_proj",
        }));
        Assert.That(text, Does.Contain("\"lora_dropout\": 0.05,"));
        Assert.That(File.Exists(Path.Combine(dir, PeftAdapterConfig.FileName + ".tmp")), Is.False);
    }

    [Test]
    public void GoldenAdapter_LoadsWithItsOwnTensors()
    {
        using var model = FakeDecoder.Tiny();
        var loaded = LoraInjector.LoadAdapter(model, GoldenAdapter);

        var golden = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.GoldenTiny, "expected.json")))!["lora"]!["wrapped_modules"]!
            .AsArray().Select(n => n!.GetValue<string>()).ToList();
        Assert.That(loaded.Report.Modules.Select(m => m.Name), Is.EqualTo(golden));
        Assert.That(loaded.Report.Modules.All(m => m.Rank == 4 && m.Scaling == 2.0), Is.True);
        using var file = SafeTensorsFile.Open(Path.Combine(GoldenAdapter, PeftAdapter.WeightsFileName));
        foreach (var a in LoraInjector.Adapters(model))
            Assert.That(a.LoraB.weight.equal(file.Load(AdapterKeys.ToKey(a.ModuleName, LoraMatrix.B))).all().item<bool>(), Is.True);
        // out_proj is targeted: the llama.cpp warning must say so.
        Assert.That(loaded.Warnings, Has.Some.Contains("out_proj").And.Some.Contains("21125"));
    }

    [Test]
    public void GoldenAdapter_LoadThenSave_ReproducesItsConfigAndTensors()
    {
        using var model = FakeDecoder.Tiny();
        var loaded = LoraInjector.LoadAdapter(model, GoldenAdapter);
        var dir = TestPaths.TempDir("lora-golden-resave");

        PeftAdapter.Save(dir, model, loaded.Options, loaded.BaseModelNameOrPath);

        Assert.That(File.ReadAllText(Path.Combine(dir, PeftAdapterConfig.FileName)), Is.EqualTo(GoldenConfigText));
        using var golden = SafeTensorsFile.Open(Path.Combine(GoldenAdapter, PeftAdapter.WeightsFileName));
        using var saved = SafeTensorsFile.Open(Path.Combine(dir, PeftAdapter.WeightsFileName));
        Assert.That(saved.Tensors.Keys, Is.EquivalentTo(golden.Tensors.Keys));
        Assert.That(saved.Metadata, Is.EqualTo(golden.Metadata));
        foreach (var key in golden.Tensors.Keys)
            Assert.That(saved.Load(key).equal(golden.Load(key)).all().item<bool>(), Is.True, key);
    }

    [Test]
    public void LoadIntoEvalModel_AdaptersFollowEvalMode()
    {
        using var model = FakeDecoder.Tiny();
        model.eval();
        LoraInjector.Apply(model, new LoraOptions { Dropout = 0.5, TargetModules = LoraTargets.Names("up_proj") }, seed: 1);
        Assert.That(LoraInjector.Adapters(model).All(a => !a.LoraA.training), Is.True);
        Assert.That(LoraInjector.Parameters(model), Has.Count.EqualTo(8));
    }

    /// <summary>Copies the golden adapter to a temp folder, optionally editing the config and the tensor map.</summary>
    static string GoldenCopy(Action<JsonObject>? editConfig = null, Func<Dictionary<string, Tensor>, Dictionary<string, Tensor>>? editTensors = null)
    {
        var dir = TestPaths.TempDir("lora-import");
        var config = JsonNode.Parse(GoldenConfigText)!.AsObject();
        editConfig?.Invoke(config);
        File.WriteAllText(Path.Combine(dir, PeftAdapterConfig.FileName), config.ToJsonString());
        using var file = SafeTensorsFile.Open(Path.Combine(GoldenAdapter, PeftAdapter.WeightsFileName));
        var tensors = file.Tensors.Keys.ToDictionary(k => k, k => file.Load(k).clone());
        if (editTensors != null) tensors = editTensors(tensors);
        SafeTensorsWriter.Write(Path.Combine(dir, PeftAdapter.WeightsFileName), tensors.Select(p => (p.Key, p.Value)));
        return dir;
    }

    [Test]
    public void TextOnlyPrefix_IsAccepted()
    {
        var dir = GoldenCopy(editTensors: t => t.ToDictionary(p => p.Key.Replace("model.language_model.layers.", "model.layers."), p => p.Value));
        using var model = FakeDecoder.Tiny();
        var loaded = LoraInjector.LoadAdapter(model, dir);
        Assert.That(loaded.Report.Modules, Has.Count.EqualTo(11));
        Assert.That(loaded.Report.Modules[0].Name, Does.StartWith("model.language_model.layers."));
    }

    [TestCase("use_dora", "true")]
    [TestCase("bias", "\"all\"")]
    [TestCase("modules_to_save", "[\"lm_head\"]")]
    [TestCase("lora_bias", "true")]
    [TestCase("peft_type", "\"LOHA\"")]
    [TestCase("init_lora_weights", "\"pissa\"")]
    [TestCase("r", "\"four\"")]
    public void UnsupportedConfig_IsAnErrorNamingTheField(string field, string json)
    {
        var dir = GoldenCopy(editConfig: c => c[field] = JsonNode.Parse(json));
        using var model = FakeDecoder.Tiny();
        var e = Assert.Throws<AdapterFormatException>(() => LoraInjector.LoadAdapter(model, dir));
        Assert.That(e!.Message, Does.Contain($"\"{field}\"").And.Contain(PeftAdapterConfig.FileName));
        Assert.That(LoraInjector.Adapters(model), Is.Empty, "a rejected adapter must leave the model untouched");
    }

    [Test]
    public void ShapeMismatch_IsAnErrorNamingTheKey()
    {
        const string key = "base_model.model.model.language_model.layers.3.mlp.down_proj.lora_A.weight";
        var dir = GoldenCopy(editTensors: t => { t[key] = zeros(4, 64); return t; });
        using var model = FakeDecoder.Tiny();
        var e = Assert.Throws<AdapterFormatException>(() => LoraInjector.LoadAdapter(model, dir));
        Assert.That(e!.Message, Does.Contain(key).And.Contain("[4, 128]"));
    }

    [TestCase("base_model.model.model.language_model.layers.7.mlp.up_proj.lora_A.weight", "does not have")]
    [TestCase("base_model.model.lm_head.lora_A.weight", "not a text-decoder layer")]
    [TestCase("base_model.model.model.language_model.layers.1.mlp.up_proj.lora_magnitude_vector", "not a lora_A/lora_B")]
    [TestCase("base_model.model.model.language_model.layers.1.mlp.up_proj.lora_B.bias", "not a lora_A/lora_B")]
    public void UnknownKeys_AreErrorsNamingTheKey(string key, string why)
    {
        var dir = GoldenCopy(editTensors: t =>
        {
            t[key] = zeros(4, 64);
            if (key.EndsWith("lora_A.weight")) t[key.Replace("lora_A", "lora_B")] = zeros(64, 4);
            return t;
        });
        using var model = FakeDecoder.Tiny();
        var e = Assert.Throws<AdapterFormatException>(() => LoraInjector.LoadAdapter(model, dir));
        Assert.That(e!.Message, Does.Contain(key.Replace(".lora_B.weight", ".lora_A.weight")).And.Contain(why));
    }

    [Test]
    public void MissingHalf_RankMismatch_AreErrors()
    {
        var noB = GoldenCopy(editTensors: t => { t.Remove("base_model.model.model.language_model.layers.1.mlp.up_proj.lora_B.weight"); return t; });
        Assert.That(() => PeftAdapter.Load(noB), Throws.TypeOf<AdapterFormatException>().With.Message.Contains("layers.1.mlp.up_proj").And.Message.Contains("lora_B"));
        var rank8 = GoldenCopy(editConfig: c => c["r"] = 8);
        Assert.That(() => PeftAdapter.Load(rank8), Throws.TypeOf<AdapterFormatException>().With.Message.Contains("rank 4").And.Message.Contains("8"));
    }

    static Models.Config.Qwen35TextConfig GoldenModelConfig =>
        Models.Config.Qwen35TextConfig.Load(Path.Combine(TestPaths.GoldenTiny, "config.json"));

    [Test]
    public void Targets_OfTheGoldenAdapter_AgreeWithItsTensorsAndTheModel()
    {
        using var file = PeftAdapter.Load(GoldenAdapter);
        Assert.That(AdapterInspection.CheckTargets(file), Is.Empty);
        Assert.That(AdapterInspection.CheckTargets(file, GoldenModelConfig), Is.Empty);
    }

    [Test]
    public void Targets_ThatMatchNoTensor_AreReported_AndTheModelsUnadaptedModulesNamed()
    {
        // k_proj is a real projection of layer 3 (full attention), but the adapter has no tensors for it.
        var dir = GoldenCopy(editConfig: c => c["target_modules"]!.AsArray().Add("k_proj"));
        using var file = PeftAdapter.Load(dir);

        Assert.That(AdapterInspection.CheckTargets(file), Is.EqualTo(new[]
        {
            "target_modules entry \"k_proj\" matches none of the adapter's tensors",
        }));
        Assert.That(AdapterInspection.CheckTargets(file, GoldenModelConfig), Is.EqualTo(new[]
        {
            "target_modules entry \"k_proj\" matches none of the adapter's tensors",
            "1 projection of the model selected by target_modules [down_proj, gate_proj, in_proj_qkv, o_proj, out_proj, q_proj, up_proj, v_proj, k_proj] " +
            "(layers_to_transform 1, 3) has no tensors in the adapter: model.language_model.layers.3.self_attn.k_proj",
        }));
    }

    [Test]
    public void Tensors_OutsideTheConfiguredLayers_AreReported()
    {
        // The config says layer 3 only, but the tensors also adapt layer 1.
        var dir = GoldenCopy(editConfig: c => c["layers_to_transform"] = new JsonArray(3));
        using var file = PeftAdapter.Load(dir);

        var problems = AdapterInspection.CheckTargets(file);

        Assert.That(problems, Has.Count.EqualTo(1));
        Assert.That(problems[0], Is.EqualTo("5 tensor modules are not selected by target_modules [down_proj, gate_proj, in_proj_qkv, o_proj, out_proj, q_proj, up_proj, v_proj] " +
            "(layers_to_transform 3): model.language_model.layers.1.linear_attn.in_proj_qkv, model.language_model.layers.1.linear_attn.out_proj, " +
            "model.language_model.layers.1.mlp.down_proj, model.language_model.layers.1.mlp.gate_proj, model.language_model.layers.1.mlp.up_proj"));
    }

    [Test]
    public void Targets_AsARegexThatMatchesNoTensor_AreReported()
    {
        var dir = GoldenCopy(editConfig: c => { c["target_modules"] = @".*\.foo_proj"; c["layers_to_transform"] = null; });
        using var file = PeftAdapter.Load(dir);

        var problems = AdapterInspection.CheckTargets(file, GoldenModelConfig);

        Assert.That(problems[0], Is.EqualTo("target_modules regex \".*\\.foo_proj\" matches none of the adapter's tensors and no module of the model"));
        Assert.That(problems[1], Does.StartWith("11 tensor modules are not selected by target_modules regex \".*\\.foo_proj\": "));
        Assert.That(problems[1], Does.EndWith(", …"), "long lists are cut after five names");
        Assert.That(problems, Has.Count.EqualTo(2));
    }

    [Test]
    public void Portability_WarnsWithWhatToDo()
    {
        var options = new LoraOptions
        {
            Rank = 32, UseRsLora = true, RankPattern = new Dictionary<string, int> { ["q_proj"] = 8 },
            TargetModules = LoraTargets.Names("q_proj", "out_proj"),
        };
        var warnings = AdapterPortability.Check(options, [("model.language_model.layers.0.linear_attn.out_proj", 32), ("model.layers.3.self_attn.q_proj", 8)]);
        Assert.That(warnings, Has.Count.EqualTo(5));
        Assert.That(warnings, Has.Some.Contains("use_rslora"));
        Assert.That(warnings, Has.Some.Contains("rank_pattern"));
        Assert.That(warnings, Has.Some.Contains("--max-lora-rank 32"));
        Assert.That(warnings, Has.Some.Contains("21125"));
        Assert.That(warnings, Has.Some.Contains("model.layers.3.self_attn.q_proj"));
        Assert.That(AdapterPortability.Check(new LoraOptions { Rank = 16 }, [("model.language_model.layers.3.self_attn.q_proj", 16)]), Is.Empty);
    }

    [TestCase(0.0, "0.0")]
    [TestCase(0.05, "0.05")]
    [TestCase(1e-05, "1e-05")]
    [TestCase(1.5e-07, "1.5e-07")]
    [TestCase(16.0, "16.0")]
    [TestCase(0.0001, "0.0001")]
    [TestCase(1e16, "1e+16")]
    [TestCase(123456789012345.0, "123456789012345.0")]
    public void PythonFloatRepr(double value, string python) => Assert.That(PythonJson.Float(value), Is.EqualTo(python));

    [Test]
    public void PythonJson_SortsNestedKeys_EscapesNonAscii_LikeJsonDumps()
    {
        // json.dumps({"b": {"z": 1, "a": [], "m": {}}, "a": "\u00e9\u007f", "c": [1.5, None, True]}, indent=2, sort_keys=True)
        var node = JsonNode.Parse("{\"b\": {\"z\": 1, \"a\": [], \"m\": {}}, \"a\": \"\u00e9\u007f\", \"c\": [1.5, null, true]}");
        const string python = "{\n  \"a\": \"\\u00e9\\u007f\",\n  \"b\": {\n    \"a\": [],\n    \"m\": {},\n    \"z\": 1\n  },\n  \"c\": [\n    1.5,\n    null,\n    true\n  ]\n}";
        Assert.That(PythonJson.Dumps(node, indent: 2, sortKeys: true), Is.EqualTo(python));
    }

    // The sorted top-level field names of an adapter_config.json text.
    static IReadOnlyList<string> FieldNames(string json) =>
        JsonNode.Parse(json)!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal).ToArray();
}
