using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Dpo;

/// <summary>
/// The preference losses of TRL's <c>DPOTrainer.dpo_loss</c>, per pair, from per-sequence completion log-prob sums
/// (docs/dpo.md). With z = (π_c − π_r) − (ref_c − ref_r):
/// sigmoid (DPO/cDPO): −(1−ε)·log σ(βz) − ε·log σ(−βz); IPO: (z − 1/(2β))², where IPO's log-probs are means over
/// the completion tokens (TRL divides by the completion length for ipo). Rewards are β·(π − ref) of the same
/// log-probs; <c>rpo_alpha</c> adds α·NLL of the chosen answer (its token-mean cross-entropy) to each pair's loss.
/// </summary>
public static class DpoLoss
{
    /// <summary>TRL's metric names, in the order of <see cref="Terms.Metrics"/> after the loss.</summary>
    public static readonly IReadOnlyList<string> MetricNames =
        ["rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"];

    /// <summary>The NLL term's metric (only with rpo_alpha), as TRL logs it.</summary>
    public const string NllName = "nll_loss";

    /// <summary>Per-pair results [P] (fp64). <see cref="Losses"/> carries the graph of its inputs; the rest is detached.</summary>
    public sealed record Terms(Tensor Losses, Tensor ChosenRewards, Tensor RejectedRewards, Tensor ChosenLogps, Tensor RejectedLogps,
        Tensor? Nll)
    {
        /// <summary>[P, K]: loss, rewards/chosen, rewards/rejected, rewards/accuracies, rewards/margins, logps/chosen,
        /// logps/rejected (, nll_loss), detached.</summary>
        public Tensor Metrics()
        {
            var cols = new List<Tensor>
            {
                Losses.detach(), ChosenRewards, RejectedRewards, ChosenRewards.gt(RejectedRewards).to(ScalarType.Float64),
                ChosenRewards - RejectedRewards, ChosenLogps, RejectedLogps,
            };
            if (Nll is not null) cols.Add(Nll);
            return stack(cols, 1);
        }
    }

    /// <summary>
    /// The terms of P pairs. <paramref name="chosenSum"/>/<paramref name="rejectedSum"/>: the policy's summed
    /// completion log-probs [P] (fp64, may require grad); <paramref name="refChosenSum"/>/<paramref name="refRejectedSum"/>:
    /// the reference's; <paramref name="chosenTokens"/>/<paramref name="rejectedTokens"/>: completion lengths [P].
    /// </summary>
    public static Terms Compute(DpoOptions o, Tensor chosenSum, Tensor rejectedSum, Tensor refChosenSum, Tensor refRejectedSum,
        Tensor chosenTokens, Tensor rejectedTokens)
    {
        var ipo = o.LossType == DpoLossType.Ipo;
        Tensor Logps(Tensor sum, Tensor n) => ipo ? sum / n : sum;
        var pc = Logps(chosenSum, chosenTokens);
        var pr = Logps(rejectedSum, rejectedTokens);
        var rc = Logps(refChosenSum, chosenTokens);
        var rr = Logps(refRejectedSum, rejectedTokens);
        var z = (pc - pr) - (rc - rr);
        var losses = ipo
            ? (z - 1.0 / (2 * o.Beta)).pow(2)
            : nn.functional.logsigmoid(z * o.Beta).mul(-(1 - o.LabelSmoothing)) - nn.functional.logsigmoid(z * -o.Beta).mul(o.LabelSmoothing);
        Tensor? nll = null;
        if (o.RpoAlpha is { } alpha)
        {
            var pairNll = chosenSum.neg() / chosenTokens;
            losses = losses + pairNll * alpha;
            nll = pairNll.detach();
        }
        return new Terms(losses, ((pc - rc) * o.Beta).detach(), ((pr - rr) * o.Beta).detach(), pc.detach(), pr.detach(), nll);
    }

    /// <summary>The metric names of an objective with these options: loss first, then TRL's (and nll_loss with rpo_alpha).</summary>
    public static IReadOnlyList<string> AllNames(DpoOptions o) =>
        ["loss", .. MetricNames, .. o.RpoAlpha is null ? Array.Empty<string>() : [NllName]];
}
