using Qwen35.Models.Generation;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Safety.Clients;

/// <summary>
/// Per-row sampling for <see cref="TrainerChatClient"/>: each row draws its next token with its own
/// <see cref="TokenSampler"/> (its own temperature, top-p, top-k and a generator seeded with its own seed, as vLLM seeds
/// each request), and <see cref="TokenGenerator"/>, run greedy, is handed logits whose argmax is that token. So a seeded
/// conversation gets the same answer whichever conversations share its batch (up to the batched matmuls' rounding),
/// which one sampler over the whole batch could not give. A batch of greedy rows passes the logits through untouched.
/// </summary>
sealed class RowSampledStepModel : IStepModel, IDisposable
{
    readonly IStepModel _inner;
    readonly TokenSampler?[] _samplers;   // null: greedy row

    public RowSampledStepModel(IStepModel inner, IReadOnlyList<ChatSampling> rows)
    {
        _inner = inner;
        _samplers = rows.Select(s => s.Greedy ? null : new TokenSampler(new GenerationOptions
        {
            DoSample = true, Temperature = s.Temperature, TopP = s.TopP, TopK = s.TopK, Seed = s.Seed,
        })).ToArray();
    }

    public Device Device => _inner.Device;

    public Tensor Step(Tensor inputIds, Tensor attentionMask, Tensor positionIds)
    {
        var logits = _inner.Step(inputIds, attentionMask, positionIds);
        if (_samplers.All(s => s is null)) return logits;
        using var scope = NewDisposeScope();
        var rows = (int)logits.shape[0];
        var chosen = new long[rows];
        for (var b = 0; b < rows; b++)
        {
            using var rowScope = NewDisposeScope();
            var row = logits.narrow(0, b, 1);
            chosen[b] = _samplers[b] is { } sampler ? sampler.Pick(row).item<long>() : row.argmax(-1).cpu().item<long>();
        }
        // One-hot rows: the greedy pick of the generator is exactly the chosen token.
        var picked = nn.functional.one_hot(tensor(chosen, device: logits.device), logits.shape[1]).to(ScalarType.Float32);
        logits.Dispose();
        return picked.MoveToOuterDisposeScope();
    }

    public void Dispose()
    {
        foreach (var s in _samplers) s?.Dispose();
    }
}
