using Qwen35.Tests;
using Qwen35.Training.Verification;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests;

/// <summary>The golden model run in bf16.</summary>
public class Bf16Tests
{
    [Test]
    public void Bf16ForwardTracksFp32()
    {
        var (bf16, _) = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.BFloat16, CPU);
        // Reference: the same bf16-rounded weights run in fp32, which separates bf16 *execution* error (what this
        // code controls) from the weight rounding that any bf16 model has.
        var (rounded, _) = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, ScalarType.Float32, CPU);
        using (bf16)
        using (rounded)
        {
            var dtypes = bf16.named_parameters().ToDictionary(p => p.name, p => p.parameter.dtype);
            Assert.That(dtypes["model.language_model.layers.0.linear_attn.A_log"], Is.EqualTo(ScalarType.Float32));
            Assert.That(dtypes["model.language_model.layers.0.linear_attn.dt_bias"], Is.EqualTo(ScalarType.Float32));
            Assert.That(dtypes["model.language_model.layers.0.linear_attn.norm.weight"], Is.EqualTo(ScalarType.Float32));
            Assert.That(dtypes["model.language_model.layers.0.mlp.up_proj.weight"], Is.EqualTo(ScalarType.BFloat16));
            using (no_grad())
                foreach (var (name, p) in rounded.named_parameters())
                    if (dtypes[name] == ScalarType.BFloat16)
                    {
                        using var r = p.to(ScalarType.BFloat16).to(ScalarType.Float32);
                        p.copy_(r).DetachFromDisposeScope();
                    }

            for (var i = 0; i < 3; i++)
            {
                using var scope = NewDisposeScope();
                using var noGrad = no_grad();
                var ids = GoldenData.Ids(GoldenData.Sequences[i]);
                var logits = bf16.Logits(bf16.Forward(new ModelInputs(ids))).squeeze(0);
                Assert.That(logits.dtype, Is.EqualTo(ScalarType.BFloat16));
                var reference = rounded.Logits(rounded.Forward(new ModelInputs(ids))).squeeze(0);
                var golden = GoldenData.Expected($"seq{i}.logits");
                var scale = golden.abs().max().ToDouble();
                var execution = Comparison.MaxAbsDiff(logits, reference);
                var total = Comparison.MaxAbsDiff(logits, golden);
                var relL2 = Comparison.RelL2(logits, reference);
                var agree = 1 - Comparison.ArgmaxDisagreement(logits, reference);
                TestContext.Out.WriteLine($"seq{i}: vs same weights in fp32: relative L2 {relL2:P2}, max |Δ| {execution:F4} " +
                                          $"({execution / scale:P2} of {scale:F2}), argmax agreement {agree:P1}; vs fp32 golden max |Δ| {total:F4}");
                // Why these bounds: bf16 keeps 8 significant bits (rounding step 2^-8 ≈ 0.4%). Fed identical inputs,
                // one layer of this model in bf16 differs from fp32 by ~1.1% (GDN: ~8 rounding points), 0.5% (MLP),
                // 0.2% (norm), measured; over 4 layers the residual stream drifts ~4% (L2), and the max over
                // 512×T logits lands at ~7% of the largest logit. The golden model's logits are nearly uniform
                // (loss ≈ ln 512), so top-1 margins are tiny and a few argmax flips are expected. Single positions
                // can be outliers (seq2 reaches 22% of the scale at one logit while its L2 error is 5.5%), so the
                // max-abs bound is loose and the L2, argmax and loss bounds carry the check. A real bug (a wrong norm
                // convention, gate layout, fp32 parameter downcast to garbage) moves these by 30-100%.
                Assert.That(relL2, Is.LessThanOrEqualTo(GoldenBounds.Reduced.LogitsRelL2), $"seq{i}");
                Assert.That(execution / scale, Is.LessThanOrEqualTo(GoldenBounds.Reduced.LogitsMaxAbsOverScale), $"seq{i}");
                Assert.That(1 - agree, Is.LessThanOrEqualTo(GoldenBounds.Reduced.ArgmaxDisagreement), $"seq{i}");
                Assert.That(total / scale, Is.LessThanOrEqualTo(GoldenBounds.Reduced.LogitsVsFp32MaxAbsOverScale), $"seq{i}");
                var loss = bf16.SequenceLosses(ids)[0];
                var goldenLoss = GoldenData.Reference.Losses[i];
                TestContext.Out.WriteLine($"seq{i}: bf16 loss {loss:F4} vs fp32 golden {goldenLoss:F4}");
                Assert.That(Comparison.LossGap(loss, goldenLoss), Is.LessThanOrEqualTo(GoldenBounds.Reduced.Loss), $"seq{i} loss");
            }
        }
    }
}
