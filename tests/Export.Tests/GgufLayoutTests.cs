using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>
/// The golden model's GGUF read back by the tests' own reader (<see cref="GgufReader"/>): metadata keys with the
/// value types llama.cpp's loader checks, tensor names, shapes, storage types and alignment, and the value transforms
/// checked element by element against the Hugging Face checkpoint with the reorder written as its index formula
/// (new head j·nk + k holds old head k·r + j), not as the exporter's reshape.
/// </summary>
public class GgufLayoutTests
{
    const uint U32 = 4, I32 = 5, F32 = 6, Str = 8, Arr = 9;
    const int Nk = 2, Nv = 4, R = 2, Dk = 16, Dv = 16; // tests/fixtures/qwen35-tiny-a/config.json

    [Test]
    public void Metadata_has_the_keys_values_and_types_llama_cpp_reads()
    {
        var g = GgufReader.Open(GgufFiles.GoldenTiny("f32"));
        Assert.That(g.Version, Is.EqualTo(3u));
        var expected = new (string Key, uint Type, object Value)[]
        {
            ("general.architecture", Str, "qwen35"), ("general.type", Str, "model"), ("general.file_type", U32, 0u),
            ("qwen35.block_count", U32, 4u), ("qwen35.context_length", U32, 262144u), ("qwen35.embedding_length", U32, 64u),
            ("qwen35.feed_forward_length", U32, 128u), ("qwen35.vocab_size", U32, 512u), ("qwen35.full_attention_interval", U32, 4u),
            ("qwen35.attention.head_count", U32, 4u), ("qwen35.attention.head_count_kv", U32, 2u),
            ("qwen35.attention.key_length", U32, 16u), ("qwen35.attention.value_length", U32, 16u),
            ("qwen35.attention.layer_norm_rms_epsilon", F32, 1e-6f), ("qwen35.rope.freq_base", F32, 1e7f),
            ("qwen35.rope.dimension_count", U32, 4u), ("qwen35.ssm.conv_kernel", U32, 4u), ("qwen35.ssm.state_size", U32, 16u),
            ("qwen35.ssm.group_count", U32, 2u), ("qwen35.ssm.time_step_rank", U32, 4u), ("qwen35.ssm.inner_size", U32, 64u),
            ("tokenizer.ggml.model", Str, "none"),
        };
        Assert.Multiple(() =>
        {
            foreach (var (key, type, value) in expected)
            {
                Assert.That(g.Metadata.ContainsKey(key), key);
                if (!g.Metadata.TryGetValue(key, out var kv)) continue;
                Assert.That(kv.Type, Is.EqualTo(type), key + " type");
                Assert.That(kv.Value, Is.EqualTo(value), key);
            }
            var (type2, sections) = g.Metadata["qwen35.rope.dimension_sections"];
            Assert.That(type2, Is.EqualTo(Arr));
            var (et, values) = ((uint, object[]))sections;
            Assert.That(et, Is.EqualTo(I32), "dimension_sections element type");
            Assert.That(values, Is.EqualTo(new object[] { 1, 1, 0, 0 }), "mrope_section [1, 1, 0] padded to 4");
        });
    }

    [TestCase("f32", 0u, 0u)]
    [TestCase("f16", 1u, 1u)]
    [TestCase("bf16", 30u, 32u)]
    [TestCase("q8_0", 8u, 7u)]
    public void Tensors_are_named_shaped_typed_and_aligned_as_llama_cpp_expects(string type, uint matrixType, uint fileType)
    {
        var g = GgufReader.Open(GgufFiles.GoldenTiny(type));
        Assert.That(g.Metadata["general.file_type"].Value, Is.EqualTo(fileType));
        // 4 layers: 3 linear-attention layers of 14 tensors, 1 full-attention layer of 11, plus embedding, final norm, head.
        Assert.That(g.Tensors, Has.Count.EqualTo(3 * 14 + 11 + 3));
        Assert.That(g.DataStart % 32, Is.EqualTo(0));
        ulong end = 0;
        foreach (var t in g.Tensors.OrderBy(t => t.Offset))
        {
            Assert.That(t.Offset % 32, Is.EqualTo(0UL), t.Name);
            Assert.That(t.Offset, Is.GreaterThanOrEqualTo(end), t.Name + " overlaps its predecessor");
            end = t.Offset + (ulong)GgufReader.ByteCount(t.Type, t.Ne.Aggregate(1UL, (a, b) => a * b));
            var f32 = t.Ne.Length == 1 || t.Name.EndsWith("_norm.weight") || t.Name.EndsWith("ssm_conv1d.weight");
            // Q8_0 blocks run along rows: rows that are not a multiple of 32 fall back to F16 (none in this model: 64, 128).
            var expected = f32 ? 0u : matrixType == 8u && t.Ne[0] % 32 != 0 ? 1u : matrixType;
            Assert.That(t.Type, Is.EqualTo(expected), t.Name);
        }
        Assert.That(new FileInfo(g.Path).Length, Is.GreaterThanOrEqualTo(g.DataStart + (long)end));
        Assert.Multiple(() =>
        {
            Assert.That(g.Info("token_embd.weight").Ne, Is.EqualTo(new ulong[] { 64, 512 }));
            Assert.That(g.Info("output.weight").Ne, Is.EqualTo(new ulong[] { 64, 512 }));
            Assert.That(g.Info("blk.0.attn_qkv.weight").Ne, Is.EqualTo(new ulong[] { 64, 2 * Nk * Dk + Nv * Dv }));
            Assert.That(g.Info("blk.0.ssm_conv1d.weight").Ne, Is.EqualTo(new ulong[] { 4, 2 * Nk * Dk + Nv * Dv }));
            Assert.That(g.Info("blk.0.ssm_a").Ne, Is.EqualTo(new ulong[] { Nv }));
            Assert.That(g.Info("blk.0.ssm_out.weight").Ne, Is.EqualTo(new ulong[] { Nv * Dv, 64 }));
            Assert.That(g.Info("blk.3.attn_q.weight").Ne, Is.EqualTo(new ulong[] { 64, 2 * 4 * 16 }));
            Assert.That(g.Tensors.Select(t => t.Name), Has.None.Contains("visual").And.None.Contains("mtp").And.None.Contains("lora"));
        });
    }

    /// <summary>Old (grouped) head of new (tiled) head n.</summary>
    static int OldHead(int n) => n % Nk * R + n / Nk;

    [Test]
    public void Values_are_transformed_and_value_heads_reordered_as_llama_cpp_expects()
    {
        var g = GgufReader.Open(GgufFiles.GoldenTiny("f32"));
        using var hf = SafeTensorsCheckpoint.Open(TestPaths.GoldenTiny);
        using var scope = NewDisposeScope();
        float[] Hf(string name) => hf.Load("model.language_model." + name).to(ScalarType.Float32).contiguous().data<float>().ToArray();
        Assert.Multiple(() =>
        {
            for (var layer = 0; layer < 3; layer++)
            {
                var p = $"layers.{layer}.linear_attn.";
                var b = $"blk.{layer}.";
                var aLog = Hf(p + "A_log");
                var dt = Hf(p + "dt_bias");
                Assert.That(g.F32(b + "ssm_a"), Is.EqualTo(Enumerable.Range(0, Nv).Select(n => -MathF.Exp(aLog[OldHead(n)]))).Within(1e-6f), b + "ssm_a");
                Assert.That(g.F32(b + "ssm_dt.bias"), Is.EqualTo(Enumerable.Range(0, Nv).Select(n => dt[OldHead(n)])), b + "ssm_dt.bias");

                // Rows of [rows, cols]: the first `keep` rows stay, then heads of `head` rows move.
                float[] ReorderedRows(float[] w, int cols, int keep, int head) =>
                    Enumerable.Range(0, w.Length / cols).SelectMany(row =>
                    {
                        var src = row < keep ? row : keep + OldHead((row - keep) / head) * head + (row - keep) % head;
                        return w.AsSpan(src * cols, cols).ToArray();
                    }).ToArray();
                Assert.That(g.F32(b + "attn_qkv.weight"), Is.EqualTo(ReorderedRows(Hf(p + "in_proj_qkv.weight"), 64, 2 * Nk * Dk, Dv)), b + "attn_qkv");
                Assert.That(g.F32(b + "attn_gate.weight"), Is.EqualTo(ReorderedRows(Hf(p + "in_proj_z.weight"), 64, 0, Dv)), b + "attn_gate");
                Assert.That(g.F32(b + "ssm_beta.weight"), Is.EqualTo(ReorderedRows(Hf(p + "in_proj_b.weight"), 64, 0, 1)), b + "ssm_beta");
                Assert.That(g.F32(b + "ssm_alpha.weight"), Is.EqualTo(ReorderedRows(Hf(p + "in_proj_a.weight"), 64, 0, 1)), b + "ssm_alpha");
                // conv1d [C, 1, K] is [C, K] row-major already.
                Assert.That(g.F32(b + "ssm_conv1d.weight"), Is.EqualTo(ReorderedRows(Hf(p + "conv1d.weight"), 4, 2 * Nk * Dk, Dv)), b + "ssm_conv1d");
                // out_proj [64, Nv·Dv]: columns move.
                var outProj = Hf(p + "out_proj.weight");
                const int cols = Nv * Dv;
                var expectedOut = Enumerable.Range(0, outProj.Length).Select(i =>
                {
                    var (row, col) = (i / cols, i % cols);
                    return outProj[row * cols + OldHead(col / Dv) * Dv + col % Dv];
                });
                Assert.That(g.F32(b + "ssm_out.weight"), Is.EqualTo(expectedOut), b + "ssm_out");
                Assert.That(g.F32(b + "ssm_norm.weight"), Is.EqualTo(Hf(p + "norm.weight")), b + "ssm_norm (not zero-centred)");
                Assert.That(g.F32(b + "attn_norm.weight"), Is.EqualTo(Hf($"layers.{layer}.input_layernorm.weight").Select(v => v + 1f)), b + "attn_norm");
            }
            Assert.That(g.F32("blk.3.attn_q_norm.weight"), Is.EqualTo(Hf("layers.3.self_attn.q_norm.weight").Select(v => v + 1f)), "attn_q_norm");
            Assert.That(g.F32("blk.3.attn_q.weight"), Is.EqualTo(Hf("layers.3.self_attn.q_proj.weight")), "attn_q: unchanged, gate interleaved");
            Assert.That(g.F32("output_norm.weight"), Is.EqualTo(Hf("norm.weight").Select(v => v + 1f)), "output_norm");
            Assert.That(g.F32("token_embd.weight"), Is.EqualTo(Hf("embed_tokens.weight")), "token_embd");
        });
    }

    [TestCase("f16", ScalarType.Float16)]
    [TestCase("bf16", ScalarType.BFloat16)]
    public void Low_precision_files_hold_the_F32_files_values_rounded_to_nearest_even(string type, ScalarType torchType)
    {
        var f32 = GgufReader.Open(GgufFiles.GoldenTiny("f32"));
        var low = GgufReader.Open(GgufFiles.GoldenTiny(type));
        using var scope = NewDisposeScope();
        Assert.Multiple(() =>
        {
            foreach (var t in low.Tensors)
            {
                if (t.Type == 0) { Assert.That(low.Bytes(t.Name), Is.EqualTo(f32.Bytes(t.Name)), t.Name); continue; }
                // torch's own fp32 → fp16/bf16 conversion (round to nearest even) as the independent expectation,
                // compared as the values the 16-bit patterns decode to (no NaN in the model, so equal values = equal bits but ±0).
                var expected = tensor(f32.F32(t.Name)).to(torchType).to(ScalarType.Float32).data<float>().ToArray();
                var bytes = low.Bytes(t.Name);
                var actual = Enumerable.Range(0, bytes.Length / 2).Select(i =>
                {
                    var bits = BitConverter.ToUInt16(bytes, 2 * i);
                    return torchType == ScalarType.Float16 ? (float)BitConverter.UInt16BitsToHalf(bits) : BitConverter.UInt32BitsToSingle((uint)bits << 16);
                }).ToArray();
                Assert.That(actual, Is.EqualTo(expected), t.Name);
            }
        });
    }

    [Test]
    public void Q8_0_file_holds_each_block_of_the_F32_values_with_scale_max_over_127_and_error_at_most_half_a_step()
    {
        var f32 = GgufReader.Open(GgufFiles.GoldenTiny("f32"));
        var q8 = GgufReader.Open(GgufFiles.GoldenTiny("q8_0"));
        Assert.Multiple(() =>
        {
            var quantized = 0;
            foreach (var t in q8.Tensors.Where(t => t.Type == 8))
            {
                quantized++;
                var x = f32.F32(t.Name);
                var deq = q8.DequantizeQ8(t.Name);
                var bytes = q8.Bytes(t.Name);
                var worst = 0.0;
                for (var b = 0; b < x.Length / 32; b++)
                {
                    var amax = x.Skip(b * 32).Take(32).Max(MathF.Abs);
                    var d = BitConverter.UInt16BitsToHalf(BitConverter.ToUInt16(bytes, b * 34));
                    Assert.That(d, Is.EqualTo((Half)(amax / 127f)), $"{t.Name} block {b} scale");
                    // Rounded to the nearest step of the true scale, then multiplied by the F16 scale (relative error ≤ 2^-11).
                    for (var j = 0; j < 32; j++)
                        worst = Math.Max(worst, Math.Abs(deq[b * 32 + j] - x[b * 32 + j]) - (0.5 * amax / 127 + 127 * Math.Abs((float)d - amax / 127f)));
                }
                Assert.That(worst, Is.LessThanOrEqualTo(1e-7), t.Name);
            }
            Assert.That(quantized, Is.EqualTo(3 * 8 + 7 + 2), "every matrix is Q8_0 (rows of 64 or 128): 8 per linear-attention layer, 7 in the full-attention layer, embedding and head");
        });
    }
}
