using Qwen35.Export.LlamaCpp;
using Qwen35.Tests;

namespace Qwen35.Export.Tests;

/// <summary>
/// The golden tiny model (nk 2 ≠ nv 4, so the value-head reorder is exercised) exported by `trainer gguf` and run in
/// the real llama.cpp, against Hugging Face's own logits (tests/fixtures/qwen35-tiny-a/expected.safetensors): the
/// export is right only if every name, transform, reorder and metadata value is what llama.cpp's qwen35 expects.
/// </summary>
public class GoldenGgufTests
{
    const double Bound = 1e-4; // the golden bound of every fp32 comparison (GoldenBounds.Exact.Logits)

    [TestCase(0)]
    [TestCase(1)]
    [TestCase(2)]
    public void F32_file_in_llama_cpp_gives_Hugging_Faces_logits(int seq)
    {
        var file = GgufFiles.GoldenTiny("f32");
        var ids = GgufFiles.Reference.Sequences[seq];
        var diff = LlamaCppRunner.MaxAbsDiff(LlamaCppRunner.Logits(file, ids), GgufFiles.Rows($"seq{seq}.logits"));
        TestContext.Out.WriteLine($"seq{seq}: max |llama.cpp - HF| = {diff:E2}");
        Assert.That(diff, Is.LessThanOrEqualTo(Bound));
    }

    [Test]
    public void F32_file_greedy_decoding_with_llama_cpps_cache_gives_Hugging_Faces_tokens()
    {
        var file = GgufFiles.GoldenTiny("f32");
        var r = GgufFiles.Reference;
        var (tokens, decode) = LlamaCppRunner.Greedy(file, r.Sequences[0][..r.PromptLength], r.GreedyTokens.Length);
        Assert.That(tokens, Is.EqualTo(r.GreedyTokens));
        var diff = LlamaCppRunner.MaxAbsDiff(decode, GgufFiles.Rows("seq0.greedy.decode_logits"));
        TestContext.Out.WriteLine($"12 cached decode steps: max |llama.cpp - HF| = {diff:E2}");
        Assert.That(diff, Is.LessThanOrEqualTo(Bound));
    }

    [Test]
    public void Golden_adapter_merged_into_the_F32_file_gives_Hugging_Faces_LoRA_logits()
    {
        var file = GgufFiles.GoldenTiny("f32", adapter: true);
        var r = GgufFiles.Reference;
        var logits = LlamaCppRunner.Logits(file, r.Sequences[r.LoraSequence]);
        var diff = LlamaCppRunner.MaxAbsDiff(logits, GgufFiles.Rows($"lora.seq{r.LoraSequence}.logits"));
        TestContext.Out.WriteLine($"merged LoRA: max |llama.cpp - HF LoRA| = {diff:E2}");
        Assert.That(diff, Is.LessThanOrEqualTo(Bound));
        // And the adapter changed something: the file is not the base model under another name.
        var baseDiff = LlamaCppRunner.MaxAbsDiff(logits, GgufFiles.Rows($"seq{r.LoraSequence}.logits"));
        Assert.That(baseDiff, Is.GreaterThan(100 * Bound), "the merged logits equal the base model's");
    }
}
