using Qwen35.Cli.Tests;
using Qwen35.Data;
using Qwen35.Export.Gguf;
using Qwen35.Export.LlamaCpp;
using Qwen35.Models;
using Qwen35.Tests;
using Qwen35.Training;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>
/// Recipe <c>export.gguf</c>: the tiny recipe, two steps, ends with <c>model-f32.gguf</c> and
/// <c>adapter-lora-f32.gguf</c> in output_dir, and both run in llama.cpp to the trainer's logits for the trained
/// adapter (the `--check` comparison: builtin:tiny from the recipe's seed, the run's adapter attached).
/// </summary>
public class GgufRecipeExportTests
{
    [Test]
    public void The_tiny_recipe_with_export_gguf_ends_with_files_llama_cpp_runs_to_the_trainers_logits()
    {
        var output = TestPaths.TempDir("gguf-recipe");
        var (code, stdout, stderr) = CliRunner.RunProgram([], ["--recipe", "tiny", "--set", $"output_dir={output}", "--overwrite", "--set", "schedule.max_steps=2",
            "--set", "data.max_length=256", "--set", "data.pack_length=256", "--set", "eval_every=0", "--set", "save_every=0",
            "--set", "schedule.warmup_steps=0", "--set", "export.gguf=[f32, lora]", "--no-progress"]);
        Assert.That(code, Is.EqualTo(0), stderr);
        var (model, lora) = (Path.Combine(output, "model-f32.gguf"), Path.Combine(output, "adapter-lora-f32.gguf"));
        Assert.That(stderr, Does.Contain("gguf: wrote " + model).And.Contain("gguf: wrote " + lora));
        Assert.That(File.ReadAllText(Path.Combine(output, "recipe.yaml")), Does.Contain("gguf:\n  - f32\n  - lora"));

        // The base the LoRA file applies to, written by the verb from the same seed (the recipe's schedule.seed 42).
        var baseFile = Path.Combine(output, "base-f32.gguf");
        Assert.That(GgufFiles.Run("gguf", "--model", "builtin:tiny", "--out", baseFile).Code, Is.EqualTo(0));
        var adapterDir = Path.Combine(output, "adapter");
        Qwen35ForCausalLM Trained()
        {
            var m = Qwen35ForCausalLM.CreateRandom(Session.BuiltinTinyConfig(), 42, ScalarType.Float32, CPU);
            Lora.LoraInjector.LoadAdapter(m, adapterDir);
            return m;
        }
        var sequences = CheckSequences.For(ByteLevelTokenizer.BuiltIn(), Session.BuiltinTinyConfig().VocabSize);
        var merged = GgufCheck.Run(model, null, Trained, sequences, threads: 2);
        var applied = GgufCheck.Run(baseFile, (lora, GgufType.F32), Trained, sequences, threads: 2);
        foreach (var line in merged.Table().Concat(applied.Table())) TestContext.Out.WriteLine(line);
        Assert.Multiple(() =>
        {
            Assert.That(merged.Passed, "model-f32.gguf");
            Assert.That(applied.Passed, "adapter-lora-f32.gguf on the base");
            // The trained adapter matters: without it the trainer's logits differ by far more than the bound.
            var untrained = GgufCheck.Run(baseFile, null, Trained, sequences, threads: 2);
            Assert.That(untrained.Passed, Is.False, "the base alone must not pass against the trained model");
        });
    }

}
