using LLama.Native;
using Qwen35.Cli.Commands;
using Qwen35.Tests;

namespace Qwen35.Cli.Tests;

/// <summary>
/// `trainer gguf --check` where llama.cpp's native library cannot be loaded (as in the GPU pack, which deletes it):
/// one line, exit 2, and the export itself is written. No other test in this assembly loads llama.cpp, so pointing
/// LLamaSharp at a library path that does not exist is the real failure, not a simulation of it. Also the recipe's
/// export.gguf: a bad value is exit 2 naming the key and its line.
/// </summary>
public class GgufCheckCliTests
{
    [Test]
    public void Check_without_llama_cpp_says_so_in_one_line_and_the_export_is_still_written()
    {
        Assert.That(NativeLibraryConfig.LLama.LibraryHasLoaded, Is.False, "llama.cpp already loaded in this test process");
        var missing = Path.Combine(TestPaths.TempDir("no-llama"), "libllama.so");
        NativeLibraryConfig.All.WithLibrary(missing, missing);
        var dir = TestPaths.TempDir("gguf-nollama");
        var file = Path.Combine(dir, "tiny.gguf");
        var (code, stdout, stderr) = CliRunner.Run([GgufCommand.Build()], ["gguf", "--model", "builtin:tiny", "--out", file, "--check"]);
        TestContext.Out.WriteLine(stderr);
        Assert.Multiple(() =>
        {
            Assert.That(code, Is.EqualTo(2), stderr);
            Assert.That(stdout, Does.StartWith($"wrote {file}:"));
            Assert.That(File.Exists(file));
            var line = stderr.Split('\n').Single(l => l.StartsWith("gguf: error:", StringComparison.Ordinal));
            Assert.That(line, Does.StartWith("gguf: error: --check: llama.cpp's native library could not be loaded ("));
            Assert.That(line, Does.EndWith("the GPU pack leaves it out on purpose: run the check where the full trainer build is"));
        });
    }

    [Test]
    public void A_bad_export_gguf_value_is_exit_2_naming_the_recipe_key_and_line()
    {
        var dir = TestPaths.TempDir("gguf-recipe-bad");
        var recipe = Path.Combine(dir, "r.yaml");
        File.WriteAllText(recipe, "model: builtin:tiny\ntokenizer: builtin\ndata:\n  train: x.jsonl\nexport:\n  gguf: [q8_0, q4]\n");
        var (code, _, stderr) = CliRunner.RunProgram([TrainCommand.Build()], ["--recipe", recipe, "--set", $"output_dir={Path.Combine(dir, "out")}", "--no-progress"]);
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr.Trim(), Does.Contain($"{recipe} line 6: export.gguf[1]: 'q4' is not one of f32, f16, bf16, q8_0, lora, lora_f16"));

        File.WriteAllText(recipe, "model: builtin:tiny\ntokenizer: builtin\ndata:\n  train: x.jsonl\nexport:\n  gguf: [lora, lora]\n");
        (code, _, stderr) = CliRunner.RunProgram([TrainCommand.Build()], ["--recipe", recipe, "--set", $"output_dir={Path.Combine(dir, "out")}", "--no-progress"]);
        Assert.That(code, Is.EqualTo(2), stderr);
        Assert.That(stderr, Does.Contain("export.gguf").And.Contain("names a file twice"));
    }
}
