using System.Text.RegularExpressions;

namespace Qwen35.Lora;

/// <summary>
/// PEFT's <c>target_modules</c> in its three forms: a list of names (a module matches when its full name equals a
/// name or ends with "." + name), a regex string (<c>re.fullmatch</c> on the full module name), or "all-linear"
/// (every projection of the text decoder, never <c>lm_head</c>). Exactly one of the three is set.
/// </summary>
public sealed record LoraTargets
{
    /// <summary>The shorthand PEFT expands to every linear layer except the output embedding.</summary>
    public const string AllLinearShorthand = "all-linear";

    /// <summary>The name list, or null.</summary>
    public IReadOnlyList<string>? NameList { get; private init; }

    /// <summary>The regex (matched against the whole module name), or null.</summary>
    public string? Regex { get; private init; }

    /// <summary>True for "all-linear".</summary>
    public bool IsAllLinear { get; private init; }

    LoraTargets() { }

    /// <summary>A list of module names or dotted suffixes, e.g. <c>q_proj</c> or <c>self_attn.q_proj</c>.</summary>
    public static LoraTargets Names(params IEnumerable<string> names) => new() { NameList = names.ToArray() };

    /// <summary>A regex that must match the whole module name, e.g. <c>.*layers\.(1|3)\..*(q|v)_proj</c>.</summary>
    public static LoraTargets FromRegex(string regex) => new() { Regex = regex };

    /// <summary>Every projection of the text decoder (never lm_head).</summary>
    public static LoraTargets AllLinear { get; } = new() { IsAllLinear = true };

    /// <summary>PEFT's reading of a string value: "all-linear" (any case) is the shorthand, anything else a regex.</summary>
    public static LoraTargets FromPeftString(string value) =>
        string.Equals(value, AllLinearShorthand, StringComparison.OrdinalIgnoreCase) ? AllLinear : FromRegex(value);

    /// <summary>What is wrong with the targets (empty list, blank name, invalid regex); empty when usable.</summary>
    public IEnumerable<string> Problems()
    {
        if (NameList != null)
        {
            if (NameList.Count == 0) return ["is an empty list: it would adapt nothing"];
            if (NameList.Any(string.IsNullOrWhiteSpace)) return ["contains an empty name"];
            return [];
        }
        if (Regex != null) return PatternKeys.RegexProblems(Regex);
        return IsAllLinear ? [] : ["is not set"];
    }

    /// <summary>Whether the module with this full name is targeted (before the layer filter).</summary>
    public bool Matches(string moduleName)
    {
        if (IsAllLinear) return true; // the caller restricts the candidates to decoder projections
        if (Regex != null)
            return System.Text.RegularExpressions.Regex.IsMatch(moduleName, $"^(?:{Regex})$", RegexOptions.CultureInvariant);
        return NameList!.Any(n => moduleName == n || moduleName.EndsWith("." + n, StringComparison.Ordinal));
    }

    /// <summary>A short human-readable form for logs and reports.</summary>
    public override string ToString() =>
        IsAllLinear ? AllLinearShorthand : Regex != null ? $"regex \"{Regex}\"" : "[" + string.Join(", ", NameList!) + "]";

    public bool Equals(LoraTargets? other) =>
        other is not null && IsAllLinear == other.IsAllLinear && Regex == other.Regex &&
        (NameList == null ? other.NameList == null : other.NameList != null && NameList.SequenceEqual(other.NameList));

    public override int GetHashCode() => HashCode.Combine(IsAllLinear, Regex, NameList == null ? 0 : string.Join(",", NameList).GetHashCode());
}
