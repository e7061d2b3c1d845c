using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// The depthwise causal short convolution of the Gated DeltaNet layer (groups = channels, no bias):
/// out[c,t] = Σ_{j=0..K−1} W[c,0,j] · x[c, t−(K−1)+j], so W[c,0,K−1] multiplies the current token.
/// The activation (SiLU) is left to the caller.
/// </summary>
public static class CausalConv
{
    /// <summary>
    /// Runs the conv over <paramref name="x"/> [B,C,T] with <paramref name="weight"/> [C,1,K].
    /// <para><paramref name="convState"/> [B,C,K] holds the K raw inputs that precede x (the cache of a previous
    /// call, in x's dtype); null means zeros (a fresh sequence). The cached continuation is therefore exactly
    /// "concatenate [state | x], convolve, keep the last T outputs", as in Hugging Face.</para>
    /// <para><paramref name="documentStarts"/> (bool [B,T]) marks packed document starts: a token then sees only
    /// earlier tokens of its own document (zero context before its start). A flag at t = 0 is ignored: the first
    /// document continues from <paramref name="convState"/>, consistent with <see cref="GatedDeltaRule"/>.</para>
    /// <para>Returns the pre-activation output [B,C,T] in x's dtype (computed in the weight's dtype, like HF), and the
    /// new state: the last K raw columns of [state | x], with columns that precede the row's last document start
    /// zeroed, so a continuation sees only the last document.</para>
    /// </summary>
    /// <param name="documentLayout">optional, with <paramref name="documentStarts"/> and no conv state: a layout with
    /// chunk size 1 and gap K−1 (<see cref="ChunkAlignedLayout.Create"/>). The conv then runs as one conv1d over the
    /// documents spread apart by K−1 zeros, which is exactly the computation (and fp32 rounding) of each document
    /// run alone, instead of the K masked multiply-adds (equal in real arithmetic, summed in another order).</param>
    public static (Tensor Output, Tensor NewConvState) Forward(Tensor x, Tensor weight, Tensor? documentStarts = null,
        Tensor? convState = null, ChunkAlignedLayout? documentLayout = null)
    {
        if (x.dim() != 3) throw new ArgumentException($"x must be [B,C,T], got [{string.Join(",", x.shape)}]", nameof(x));
        long batch = x.shape[0], channels = x.shape[1], length = x.shape[2];
        if (weight.dim() != 3 || weight.shape[0] != channels || weight.shape[1] != 1)
            throw new ArgumentException($"weight must be [{channels},1,K], got [{string.Join(",", weight.shape)}]", nameof(weight));
        long kernel = weight.shape[2];
        if (convState is not null && !convState.shape.SequenceEqual(new[] { batch, channels, kernel }))
            throw new ArgumentException($"convState must be [{batch},{channels},{kernel}], got [{string.Join(",", convState.shape)}]", nameof(convState));
        if (documentStarts is not null && !documentStarts.shape.SequenceEqual(new[] { batch, length }))
            throw new ArgumentException($"documentStarts must be [{batch},{length}], got [{string.Join(",", documentStarts.shape)}]", nameof(documentStarts));

        using var scope = NewDisposeScope();
        var previous = convState is null
            ? zeros(batch, channels, kernel, x.dtype, x.device)
            : convState.to(x.dtype);
        var raw = cat([previous, x], -1);          // [B,C,K+T]: the state columns are the tokens just before x
        var input = raw.to(weight.dtype);

        Tensor output;
        Tensor newState = raw.narrow(-1, length, kernel);
        if (documentStarts is null)
        {
            // Output t needs columns t+1 .. t+K of raw (the K−1 before x_t, and x_t): a valid conv over the last
            // K−1+T columns gives exactly T outputs.
            output = nn.functional.conv1d(input.narrow(-1, 1, kernel - 1 + length), weight, groups: channels);
        }
        else
        {
            // distance[b,t]: how many tokens of its own document precede token t. Tap d (d tokens back) is used only
            // when d ≤ distance. The first document is treated as starting K before x, so all its taps are live
            // (they read the state, or zeros when there is none).
            var positions = arange(length, ScalarType.Int64, x.device).unsqueeze(0).expand(batch, length);
            var resets = GatedDeltaRule.ResetsIgnoringFirst(documentStarts);
            var lastStart = where(resets, positions, full_like(positions, -kernel)).cummax(1).values;   // [B,T]
            var distance = positions - lastStart;

            if (documentLayout is not null && convState is null)
            {
                if (documentLayout.Rows != batch || documentLayout.Length != length || documentLayout.ChunkSize != 1
                    || documentLayout.Gap != kernel - 1)
                    throw new ArgumentException($"documentLayout must be built for [{batch},{length}] with chunk size 1 " +
                        $"and gap {kernel - 1}, got [{documentLayout.Rows},{documentLayout.Length}], chunk size " +
                        $"{documentLayout.ChunkSize}, gap {documentLayout.Gap}", nameof(documentLayout));
                // [B,Tpad,C] with K−1 zeros before every later document; K−1 more on the left for the first one.
                var spread = documentLayout.ToAligned(input.narrow(-1, kernel, length).transpose(1, 2)).transpose(1, 2);
                var conv = nn.functional.conv1d(nn.functional.pad(spread, [kernel - 1, 0]), weight, groups: channels);
                output = documentLayout.FromAligned(conv.transpose(1, 2)).transpose(1, 2);
            }
            else
            {
                // K shifted, masked multiply-adds (K = 4 in Qwen3.5): vectorised over B, C, T.
                output = zeros_like(x, dtype: weight.dtype);
                for (long d = 0; d < kernel; d++)
                {
                    var tap = weight.narrow(-1, kernel - 1 - d, 1).reshape(1, channels, 1);
                    var live = distance.ge(d).unsqueeze(1).to(weight.dtype);                             // [B,1,T]
                    output = output + input.narrow(-1, kernel - d, length) * tap * live;
                }
            }

            // Keep only state columns of the row's last document (index ≥ its start; state columns count as −K..−1).
            var columnIndex = arange(length - kernel, length, ScalarType.Int64, x.device).unsqueeze(0);   // [1,K]
            var keep = columnIndex.ge(lastStart.narrow(1, length - 1, 1)).unsqueeze(1).to(x.dtype);  // [B,1,K]
            newState = newState * keep;
        }

        return (output.to(x.dtype).MoveToOuterDisposeScope(), newState.contiguous().MoveToOuterDisposeScope());
    }
}
