using System.Text.RegularExpressions;

namespace Qwen35.Lora;

/// <summary>
/// PEFT's <c>get_pattern_key</c> for <c>rank_pattern</c>/<c>alpha_pattern</c>: a key is a regex that must match the
/// end of the module name after a dot (or the whole name), i.e. <c>re.match(rf"(.*\.)?({key})$", name)</c>.
/// </summary>
public static class PatternKeys
{
    /// <summary>
    /// The first key (in ordinal order) that matches <paramref name="moduleName"/>, or null. PEFT tries keys in dict
    /// order, and since it saves adapter_config.json with sorted keys, ordinal order is what a reloaded PEFT adapter
    /// uses; using it always keeps training and reloading consistent.
    /// </summary>
    public static string? Find(IEnumerable<string> keys, string moduleName)
    {
        foreach (var key in keys.OrderBy(k => k, StringComparer.Ordinal))
            if (Regex.IsMatch(moduleName, $"^(?:.*\\.)?(?:{key})$", RegexOptions.CultureInvariant))
                return key;
        return null;
    }

    /// <summary>Why <paramref name="pattern"/> is not a valid regular expression; empty when it is.</summary>
    public static IEnumerable<string> RegexProblems(string pattern)
    {
        try { _ = new Regex(pattern, RegexOptions.CultureInvariant); }
        catch (ArgumentException e) { return [$"\"{pattern}\" is not a valid regular expression: {e.Message}"]; }
        return [];
    }
}
