namespace Qwen35.Lora;

/// <summary>Parses layer selections such as "0-3,8" (inclusive ranges and single indices) for layers_to_transform.</summary>
public static class LayerSelection
{
    /// <summary>
    /// Parses a comma-separated list of indices and inclusive ranges ("0-3,8" = 0,1,2,3,8) into sorted, distinct
    /// indices. Throws <see cref="FormatException"/> quoting the offending part.
    /// </summary>
    public static IReadOnlyList<int> Parse(string text)
    {
        var result = new SortedSet<int>();
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (raw.Length == 0) throw new UserInputException($"layers \"{text}\": empty item between commas");
            var dash = raw.IndexOf('-', 1); // from 1 so a leading minus is reported as a bad number, not a range
            if (dash < 0) { result.Add(ParseIndex(raw, text)); continue; }
            var from = ParseIndex(raw[..dash].Trim(), text);
            var to = ParseIndex(raw[(dash + 1)..].Trim(), text);
            if (to < from) throw new UserInputException($"layers \"{text}\": range \"{raw}\" ends before it starts");
            for (var i = from; i <= to; i++) result.Add(i);
        }
        return result.ToArray();
    }

    static int ParseIndex(string s, string whole) =>
        int.TryParse(s, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v
            : throw new UserInputException($"layers \"{whole}\": \"{s}\" is not a non-negative layer index");
}
