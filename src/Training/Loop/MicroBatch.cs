using Qwen35.Data;
using Qwen35.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>
/// One micro-batch as the loop needs it: row-major [Rows·Length] arrays (labels ALIGNED with input ids, -100 = not
/// trained; the loss shifts once), the documents of its rows, and per-token category and weight. The number of
/// trained targets is counted here, on the host, before any forward pass, because the loss of a whole optimizer step
/// is normalised by the targets of ALL its micro-batches.
/// </summary>
public sealed record MicroBatch
{
    public required int Rows { get; init; }
    public required int Length { get; init; }
    public required long[] InputIds { get; init; }
    public required long[] Labels { get; init; }
    /// <summary>Per row the document starts and real length (packed rows, right padding); null = one document per
    /// row, no padding. The model derives every layout from it, the loss its document boundaries.</summary>
    public PackedDocuments? Documents { get; init; }
    /// <summary>Category index of each token's document (-1 for padding / unknown); used for per-category eval loss.</summary>
    public long[]? CategoryIds { get; init; }
    /// <summary>Loss weight of each token (category weights); null = all 1.</summary>
    public float[]? TokenWeights { get; init; }
    /// <summary>Preference pairs (DPO): which sequence each token belongs to and the pairs' reference log-probs; null for SFT.</summary>
    public Dpo.PreferencePairs? Pairs { get; init; }

    /// <summary>Real (non-padding) tokens.</summary>
    public long RealTokens => Documents?.RealTokens ?? (long)Rows * Length;

    /// <summary>Positions t whose target label[t+1] is trained and lies in the same document: what the loss sums over.</summary>
    public long TargetCount => Targets().Count();

    /// <summary>Sum of the weights of the trained targets (= <see cref="TargetCount"/> without category weights).</summary>
    public double TargetWeight => TokenWeights is null ? TargetCount : Targets().Sum(i => (double)TokenWeights[i + 1]);

    /// <summary>Flat indices r·Length + t of trained positions: the label at t+1 is trained and token t+1 does not
    /// start a new document (the next document is not predictable from this one).</summary>
    IEnumerable<int> Targets()
    {
        for (var r = 0; r < Rows; r++)
            for (var t = 0; t < Length - 1; t++)
            {
                var i = r * Length + t;
                if (Labels[i + 1] == TokenizedExample.IgnoreIndex) continue;
                if (Documents is not null && Documents.IsDocumentStart(r, t + 1)) continue;
                yield return i;
            }
    }

    /// <summary>
    /// The trained positions as flat indices into the shifted [Rows, Length−1] grid, computed here from the host
    /// arrays so the loss never waits for the device to learn how many targets there are.
    /// </summary>
    public long[] TargetIndex() => Targets().Select(i => (long)(i - i / Length)).ToArray();

    /// <summary>The tensors of this micro-batch on a device (created in the caller's dispose scope).</summary>
    public Tensors ToTensors(Device device)
    {
        Tensor T(long[] a) => tensor(a, [Rows, Length], device: device);
        return new Tensors(new ModelInputs(T(InputIds), Documents: Documents), T(Labels),
            tensor(TargetIndex(), device: device),
            CategoryIds is null ? null : T(CategoryIds),
            TokenWeights is null ? null : tensor(TokenWeights, [Rows, Length], device: device));
    }

    /// <param name="Inputs">what the model reads: the input ids and the documents.</param>
    /// <param name="TargetIndex">int64 [M]: <see cref="MicroBatch.TargetIndex"/> on the device.</param>
    public sealed record Tensors(ModelInputs Inputs, Tensor Labels, Tensor TargetIndex, Tensor? CategoryIds, Tensor? TokenWeights);
}
