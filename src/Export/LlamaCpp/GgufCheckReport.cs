using System.Globalization;
using Qwen35.Export.Gguf;

namespace Qwen35.Export.LlamaCpp;

/// <summary>One sequence of a check: llama.cpp against the trainer's fp32 forward. <see cref="Rounding"/> is what the
/// file's storage rounding alone does (the trainer with the stored values against the trainer in fp32).</summary>
public sealed record GgufCheckRow(
    int Sequence, int Tokens, double MaxError, double Rounding, double Bound,
    int ArgmaxAgree, int TrainerRoundedAgree, double LossTrainer, double LossLlamaCpp)
{
    public bool WithinBound => MaxError <= Bound;
}

/// <summary>What `trainer gguf --check` found; <see cref="Passed"/> decides exit 0 or 4.</summary>
public sealed record GgufCheckReport(GgufType Type, GgufType? LoraType, IReadOnlyList<GgufCheckRow> Rows)
{
    public int Positions => Rows.Sum(r => r.Tokens);
    public int ArgmaxAgree => Rows.Sum(r => r.ArgmaxAgree);

    /// <summary>The fewest positions whose argmax must agree (<see cref="GgufCheck.MinArgmaxAgree"/>).</summary>
    public int MinArgmaxAgree => GgufCheck.MinArgmaxAgree(Rows.Sum(r => r.TrainerRoundedAgree), Positions);

    public bool LogitsWithinBounds => Rows.All(r => r.WithinBound);
    public bool ArgmaxWithinBound => ArgmaxAgree >= MinArgmaxAgree;
    public bool Passed => LogitsWithinBounds && ArgmaxWithinBound;

    /// <summary>The table `--check` prints, one line per sequence, then the verdict.</summary>
    public IEnumerable<string> Table()
    {
        var ci = CultureInfo.InvariantCulture;
        var what = OptionNames.Name(Type) + (LoraType is { } l ? $" base + {OptionNames.Name(l)} LoRA" : "");
        yield return $"check ({what}): llama.cpp against the trainer's fp32 forward";
        yield return "seq  tokens  max|dlogit|  bound     (rounding)  argmax      loss trainer  loss llama.cpp";
        foreach (var r in Rows)
            yield return string.Format(ci, "{0,3}  {1,6}  {2,11:E2}  {3,8:E2}  {4,10:E2}  {5,4}/{6,-4} {7}  {8,12:F4}  {9,14:F4}",
                r.Sequence, r.Tokens, r.MaxError, r.Bound, r.Rounding, r.ArgmaxAgree, r.Tokens, r.WithinBound ? " " : "!", r.LossTrainer, r.LossLlamaCpp);
        yield return string.Format(ci, "argmax agrees at {0}/{1} positions (at least {2} required; the trainer with the stored values: {3}); {4}",
            ArgmaxAgree, Positions, MinArgmaxAgree, Rows.Sum(r => r.TrainerRoundedAgree),
            Passed ? "check passed" : "CHECK FAILED: " + string.Join(", ",
                new[] { LogitsWithinBounds ? null : "logits out of bound (rows marked !)", ArgmaxWithinBound ? null : "too few argmax agree" }.Where(s => s != null)));
    }
}
