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
    /// <para>Returns the pre-activation output [B,C,T] in x's dtype (computed in the weight's dtype, like HF), and the
    /// new state: the last K raw columns of [state | x].</para>
    /// </summary>
    public static (Tensor Output, Tensor NewConvState) Forward(Tensor x, Tensor weight, Tensor? convState = null)
    {
        var (batch, channels, length, kernel) = Validate(x, weight);
        if (convState is not null && !convState.shape.SequenceEqual(new[] { batch, channels, kernel }))
            throw new ArgumentException($"convState must be {Shapes.Format([batch, channels, kernel])}, got {Shapes.Format(convState.shape)}", nameof(convState));

        using var scope = NewDisposeScope();
        var previous = convState is null
            ? zeros(batch, channels, kernel, x.dtype, x.device)
            : convState.InDtype(x.dtype);
        var raw = cat([previous, x], -1);          // [B,C,K+T]: the state columns are the tokens just before x
        // Output t needs columns t+1 .. t+K of raw (the K−1 before x_t, and x_t): a valid conv over the last
        // K−1+T columns gives exactly T outputs.
        var output = nn.functional.conv1d(raw.InDtype(weight.dtype).narrow(-1, 1, kernel - 1 + length), weight, groups: channels);
        var newState = raw.narrow(-1, length, kernel);
        return (output.InDtype(x.dtype).MoveToOuterDisposeScope(), newState.contiguous().MoveToOuterDisposeScope());
    }

    /// <summary>
    /// The conv of a fresh sequence when no state is to be handed on (training, a forward without a cache):
    /// <see cref="Forward"/> with a null state, without building the state. x is padded with K−1 zeros on the left
    /// (the same values the zero state puts there), so the output is bitwise Forward's. Returns the pre-activation
    /// output [B,C,T] in x's dtype.
    /// </summary>
    public static Tensor ForwardFresh(Tensor x, Tensor weight)
    {
        var (_, channels, _, kernel) = Validate(x, weight);
        using var scope = NewDisposeScope();
        var output = nn.functional.conv1d(nn.functional.pad(x.InDtype(weight.dtype), [kernel - 1, 0]), weight, groups: channels);
        return output.InDtype(x.dtype).MoveToOuterDisposeScope();
    }

    /// <summary>
    /// The conv over packed rows (no state: packed rows start fresh and never continue). With
    /// <paramref name="documentLayout"/> built with chunk size 1 and gap K−1 (<see cref="ChunkAlignedLayout.Create"/>)
    /// it runs as one conv1d over the documents spread apart by K−1 zeros, so every document sees zeros before its
    /// start: exactly the computation (and fp32 rounding) of each document run alone. Returns the pre-activation
    /// output [B,C,T] in x's dtype.
    /// </summary>
    public static Tensor ForwardPacked(Tensor x, Tensor weight, ChunkAlignedLayout documentLayout)
    {
        var (batch, _, length, kernel) = Validate(x, weight);
        if (documentLayout.Rows != batch || documentLayout.Length != length || documentLayout.ChunkSize != 1
            || documentLayout.Gap != kernel - 1)
            throw new ArgumentException($"documentLayout must be built for {Shapes.Format([batch, length])} with chunk size 1 " +
                $"and gap {kernel - 1}, got {Shapes.Format([documentLayout.Rows, documentLayout.Length])}, chunk size " +
                $"{documentLayout.ChunkSize}, gap {documentLayout.Gap}", nameof(documentLayout));
        using var scope = NewDisposeScope();
        // [B,Tpad,C] with K−1 zeros before every later document; K−1 more on the left for the first one.
        var spread = documentLayout.ToAligned(x.InDtype(weight.dtype).transpose(1, 2)).transpose(1, 2);
        var conv = nn.functional.conv1d(nn.functional.pad(spread, [kernel - 1, 0]), weight, groups: x.shape[1]);
        var output = documentLayout.FromAligned(conv.transpose(1, 2)).transpose(1, 2);
        return output.InDtype(x.dtype).MoveToOuterDisposeScope();
    }

    static (long B, long C, long T, long K) Validate(Tensor x, Tensor weight)
    {
        if (x.dim() != 3) throw new ArgumentException($"x must be [B,C,T], got {Shapes.Format(x.shape)}", nameof(x));
        long channels = x.shape[1];
        if (weight.dim() != 3 || weight.shape[0] != channels || weight.shape[1] != 1)
            throw new ArgumentException($"weight must be [{channels},1,K], got {Shapes.Format(weight.shape)}", nameof(weight));
        return (x.shape[0], channels, x.shape[2], weight.shape[2]);
    }
}
