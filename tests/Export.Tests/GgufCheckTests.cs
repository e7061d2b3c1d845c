using Qwen35.Export.Gguf;
using Qwen35.Export.LlamaCpp;
using Qwen35.Models;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>
/// `trainer gguf --check`: the written file in llama.cpp against the trainer's fp32 forward. Passing exports pass
/// (every type, merged and LoRA), a LoRA file checked on the wrong base fails with exit 4, the refusals are exit 2, and
/// the check's reference rounding is exactly what the file stores.
/// </summary>
public class GgufCheckTests
{
    static readonly string Adapter = Path.Combine(TestPaths.GoldenTiny, "adapter");

    [TestCase("f32")]
    [TestCase("f16")]
    [TestCase("bf16")]
    [TestCase("q8_0")]
    public void A_merged_export_of_every_type_passes_its_check(string type)
    {
        var dir = TestPaths.TempDir("gguf-check");
        var file = Path.Combine(dir, $"m-{type}.gguf");
        var (code, stdout, stderr) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", Adapter, "--out", file, "--type", type, "--check");
        TestContext.Out.WriteLine(stdout);
        Assert.That(code, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.Contain($"check ({type}): llama.cpp against the trainer's fp32 forward"));
        Assert.That(stdout, Does.Contain("check passed"));
        // Random ids (no tokenizer in the golden folder): three rows of 32 tokens.
        Assert.That(stdout.Split('\n').Count(l => System.Text.RegularExpressions.Regex.IsMatch(l, @"^\s+\d\s+32\s")), Is.EqualTo(3), stdout);
    }

    [Test]
    public void The_F32_check_measures_llama_cpp_within_the_golden_precision_of_the_trainer()
    {
        var r = Report(GgufFiles.GoldenTiny("f32", adapter: true), null, withAdapter: true);
        foreach (var line in r.Table()) TestContext.Out.WriteLine(line);
        Assert.Multiple(() =>
        {
            // llama.cpp and the trainer are each within ~5e-5 of Hugging Face on this model (docs/gguf.md).
            foreach (var row in r.Rows) Assert.That(row.MaxError, Is.LessThan(1e-4), $"seq{row.Sequence}");
            Assert.That(r.Rows.All(row => row.Rounding == 0), "an F32 file rounds nothing");
            Assert.That(r.ArgmaxAgree, Is.EqualTo(r.Positions));
            foreach (var row in r.Rows) Assert.That(row.LossLlamaCpp, Is.EqualTo(row.LossTrainer).Within(2 * row.MaxError));
            Assert.That(r.Passed);
        });
    }

    [Test]
    public void A_LoRA_file_passes_on_its_base_and_fails_with_exit_4_on_a_base_that_already_holds_the_adapter()
    {
        var dir = TestPaths.TempDir("gguf-check-lora");
        var lora = Path.Combine(dir, "a.gguf");
        var (code, stdout, stderr) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", Adapter, "--lora-only", "--type", "f16",
            "--out", lora, "--check", "--check-base", GgufFiles.GoldenTiny("f32"));
        TestContext.Out.WriteLine(stdout);
        Assert.That(code, Is.EqualTo(0), stdout + stderr);
        Assert.That(stdout, Does.Contain("check (f32 base + f16 LoRA)").And.Contain("check passed"));

        // The merged file as the base: the adapter counts twice (1.6 away from the trainer's logits, docs/gguf.md).
        (code, stdout, stderr) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", Adapter, "--lora-only", "--out", lora, "--overwrite",
            "--check", "--check-base", GgufFiles.GoldenTiny("f32", adapter: true));
        TestContext.Out.WriteLine(stdout);
        Assert.That(code, Is.EqualTo(4), stdout + stderr);
        Assert.That(stdout, Does.Contain("CHECK FAILED: logits out of bound"));
        Assert.That(File.Exists(lora), "the file stays: the check reports, it does not delete");
    }

    [Test]
    public void The_check_flags_that_do_not_fit_are_refused_before_anything_is_written()
    {
        var dir = TestPaths.TempDir("gguf-check-refused");
        var file = Path.Combine(dir, "x.gguf");
        Assert.Multiple(() =>
        {
            var (code, _, err) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", Adapter, "--lora-only", "--out", file, "--check");
            Assert.That((code, err.Trim()), Is.EqualTo((2, "gguf: error: --check with --lora-only: give --check-base FILE, the base model's GGUF the adapter is applied to (e.g. written by `trainer gguf --model M --out base.gguf`)")));
            (code, _, err) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--out", file, "--check-base", GgufFiles.GoldenTiny("f32"));
            Assert.That((code, err.Trim()), Is.EqualTo((2, "gguf: error: --check-base: only with --check")));
            (code, _, err) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--out", file, "--check", "--check-base", GgufFiles.GoldenTiny("f32"));
            Assert.That((code, err.Trim()), Is.EqualTo((2, "gguf: error: --check-base: only with --lora-only (a merged export is checked on its own)")));
            var missing = Path.Combine(dir, "none.gguf");
            (code, _, err) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", Adapter, "--lora-only", "--out", file, "--check", "--check-base", missing);
            Assert.That((code, err.Trim()), Is.EqualTo((2, $"gguf: error: {missing}: --check-base: no such file")));
            var notGguf = Path.Combine(Adapter, "adapter_config.json");
            (code, _, err) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", Adapter, "--lora-only", "--out", file, "--check", "--check-base", notGguf);
            Assert.That((code, err.Trim()), Is.EqualTo((2, $"gguf: error: {notGguf}: --check-base: not a GGUF file (no GGUF magic at its start)")));
            Assert.That(Directory.GetFiles(dir), Is.Empty);
        });
    }

    [Test]
    public void The_reference_rounding_of_a_Q8_0_check_is_exactly_the_values_the_file_stores()
    {
        var q8 = GgufReader.Open(GgufFiles.GoldenTiny("q8_0"));
        using var scope = NewDisposeScope();
        using var model = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU).Model;
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var plans = Qwen35GgufTensors.Plan(model, GgufType.Q8_0).Where(p => p.Info.Type == GgmlType.Q8_0).ToList();
        Assert.That(plans.Select(p => p.Transform), Does.Contain(ValueTransform.ReorderRows).And.Contain(ValueTransform.ReorderColumns));
        Assert.Multiple(() =>
        {
            foreach (var plan in plans)
            {
                var check = GgufCheck.StoredValues(plan, parameters[plan.HfName], model.Config).contiguous().data<float>().ToArray();
                var file = TrainerForward.ToHfOrder(q8.DequantizeQ8(plan.Info.Name), plan);
                Assert.That(check, Is.EqualTo(file), plan.HfName);
            }
        });
    }

    /// <summary>The check of <paramref name="gguf"/> against the golden model (with its adapter when asked), in-process.</summary>
    internal static GgufCheckReport Report(string gguf, (string, GgufType)? lora, bool withAdapter) =>
        GgufCheck.Run(gguf, lora, () =>
        {
            var model = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU).Model;
            if (withAdapter) Lora.LoraInjector.LoadAdapter(model, Adapter);
            return model;
        }, CheckSequences.For(null, Models.Config.Qwen35TextConfig.Load(Path.Combine(TestPaths.GoldenTiny, "config.json")).VocabSize), threads: 2);
}
