using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// Partial rotary position embedding of the full-attention layers (docs/model.md, "Choices against the sharp edges",
/// item 4): only the first R =
/// head_dim·partial_rotary_factor dims rotate, with NeoX rotate_half pairs (i, i+R/2), inv_freq[i] = θ^(-2i/R).
/// mRoPE's interleaved T/H/W sections are a no-op for text (three identical position rows), so positions are 1-D.
/// </summary>
public static class Rotary
{
    /// <summary>cos/sin tables [B, 1, T, R] in <paramref name="dtype"/> (HF computes them in fp32 and casts to the
    /// activation dtype before the rotation).</summary>
    public static (Tensor Cos, Tensor Sin) Tables(Tensor positionIds, int rotaryDim, double theta, ScalarType dtype)
    {
        using var scope = NewDisposeScope();
        var device = positionIds.device;
        // Same arithmetic as HF: 1 / base^(arange(0, R, 2) / R) in fp32.
        var exponent = arange(0, rotaryDim, 2, dtype: ScalarType.Float32, device: device) / (float)rotaryDim;
        var invFreq = pow(tensor((float)theta, dtype: ScalarType.Float32, device: device), exponent).reciprocal();
        var freqs = positionIds.to(ScalarType.Float32).unsqueeze(-1) * invFreq;           // [B, T, R/2]
        var emb = cat([freqs, freqs], -1).unsqueeze(1);                                    // [B, 1, T, R]
        var cosT = emb.cos().to(dtype).MoveToOuterDisposeScope();
        var sinT = emb.sin().to(dtype).MoveToOuterDisposeScope();
        return (cosT, sinT);
    }

    /// <summary>Rotates the first R dims of x [B, H, T, D]; the rest pass through.</summary>
    public static Tensor Apply(Tensor x, Tensor cos, Tensor sin)
    {
        using var scope = NewDisposeScope();
        var r = cos.shape[^1];
        var d = x.shape[^1];
        // split/chunk rather than narrow: their backward is one concatenation, a narrow's a zero tensor of the whole
        // input with the piece copied in.
        var parts = r == d ? [x] : x.split([r, d - r], -1);
        var rot = parts[0];
        var halves = rot.chunk(2, -1);
        var rotated = cat([-halves[1], halves[0]], -1);
        // rot·cos + rotated·sin with the second product and the sum as one addcmul (one call and one backward node
        // fewer; docs/performance.md).
        var embedded = (rot * cos).addcmul(rotated, sin, 1);
        var result = r == d ? embedded : cat([embedded, parts[1]], -1);
        return result.MoveToOuterDisposeScope();
    }
}
