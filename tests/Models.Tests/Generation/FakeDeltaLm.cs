using Qwen35.Models.Generation;
using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Tests.Generation;

/// <summary>
/// A tiny seeded language model with the same kind of state as a Qwen3.5 DeltaNet layer (conv state + delta-rule
/// state, through the real kernels) plus a per-position logit bias, so the generator's padding, positions and cache
/// handling all change the logits when they are wrong. Pad tokens are zeroed like in the real model, which makes left
/// padding exact.
/// </summary>
sealed class FakeDeltaLm : IStepModel, IDisposable
{
    public const int Vocab = 23;
    const int Dim = 8, Kernel = 4, MaxPositions = 128;
    readonly Tensor embed, convWeight, wq, wk, wv, wb, wa, wout, positionBias;
    Tensor? convState, recurrentState;

    public FakeDeltaLm(long seed = 17)
    {
        var gen = new torch.Generator((ulong)seed);
        embed = randn(Vocab, Dim, generator: gen);
        convWeight = randn(Dim, 1, Kernel, generator: gen) * 0.7;
        wq = randn(Dim, Dim, generator: gen);
        wk = randn(Dim, Dim, generator: gen);
        wv = randn(Dim, Dim, generator: gen);
        wb = randn(Dim, 1, generator: gen);
        wa = randn(Dim, 1, generator: gen);
        wout = randn(Dim, Vocab, generator: gen);
        positionBias = randn(MaxPositions, Vocab, generator: gen) * 0.5;
    }

    public Device Device => CPU;

    /// <summary>Logits of every new position [B,T,V] (the cache is extended as in <see cref="Step"/>).</summary>
    public Tensor Forward(Tensor inputIds, Tensor attentionMask, Tensor positionIds)
    {
        using var scope = NewDisposeScope();
        long b = inputIds.shape[0], t = inputIds.shape[1];
        var x = embed.index_select(0, inputIds.reshape(-1)).reshape(b, t, Dim) * attentionMask.unsqueeze(-1).to(ScalarType.Float32);
        var (conv, newConv) = CausalConv.Forward(x.transpose(1, 2), convWeight, convState);
        var h = nn.functional.silu(conv).transpose(1, 2);
        var q = h.matmul(wq).unsqueeze(2);
        var k = h.matmul(wk).unsqueeze(2);
        var v = h.matmul(wv).unsqueeze(2);
        var beta = h.matmul(wb).sigmoid();
        var g = -nn.functional.softplus(h.matmul(wa) + 1);
        var (o, state) = recurrentState is not null && t == 1
            ? GatedDeltaRule.Recurrent(q, k, v, g, beta, recurrentState)
            : GatedDeltaRule.Chunked(q, k, v, g, beta, recurrentState, chunkSize: 4);
        Replace(ref convState, newConv);
        Replace(ref recurrentState, state);
        var logits = o.squeeze(2).matmul(wout) * 3 + positionBias.index_select(0, positionIds.reshape(-1)).reshape(b, t, Vocab);
        return logits.MoveToOuterDisposeScope();
    }

    public Tensor Step(Tensor inputIds, Tensor attentionMask, Tensor positionIds)
    {
        using var scope = NewDisposeScope();
        var logits = Forward(inputIds, attentionMask, positionIds);
        return logits.narrow(1, logits.shape[1] - 1, 1).squeeze(1).MoveToOuterDisposeScope();
    }

    static void Replace(ref Tensor? slot, Tensor value)
    {
        value.DetachFromDisposeScope();
        slot?.Dispose();
        slot = value;
    }

    public void Dispose()
    {
        convState?.Dispose();
        recurrentState?.Dispose();
    }
}
