namespace Qwen35.Data;

/// <summary>Per-category counts, a seeded stratified train/eval split and per-category sampling weights.</summary>
public static class CategoryTools
{
    /// <summary>The name under which rows without a category are counted.</summary>
    public const string None = "(none)";

    public static string Name(string? category) => string.IsNullOrEmpty(category) ? None : category;

    public static SortedDictionary<string, int> Counts(IEnumerable<string?> categories)
    {
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (var c in categories) counts[Name(c)] = counts.GetValueOrDefault(Name(c)) + 1;
        return counts;
    }

    /// <summary>
    /// Splits indices 0..n-1 so that each category sends round(count * evalFraction) of its rows (at least one when
    /// the category has two or more rows and the fraction is positive) to eval. Deterministic for a seed; the
    /// choice inside a category does not depend on the other categories. Both lists are sorted.
    /// </summary>
    public static (List<int> Train, List<int> Eval) StratifiedSplit(IReadOnlyList<string?> categories, double evalFraction, long seed)
    {
        if (evalFraction is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(evalFraction), "eval fraction must be in [0, 1)");
        var train = new List<int>();
        var eval = new List<int>();
        foreach (var group in Enumerable.Range(0, categories.Count).GroupBy(i => Name(categories[i])))
        {
            var members = group.ToList();
            new DeterministicRandom(seed ^ (long)StableHash(group.Key)).Shuffle(members);
            var nEval = (int)Math.Round(members.Count * evalFraction, MidpointRounding.AwayFromZero);
            if (evalFraction > 0 && nEval == 0 && members.Count >= 2) nEval = 1;
            eval.AddRange(members.Take(nEval));
            train.AddRange(members.Skip(nEval));
        }
        train.Sort();
        eval.Sort();
        return (train, eval);
    }

    /// <summary>
    /// Applies per-category sampling weights to one epoch: an example of a category with weight w appears floor(w)
    /// times plus once more with probability frac(w) (w = 0 removes the category; categories without a weight keep
    /// 1). Returns indices (with repeats) in index order; the batch planner shuffles them.
    /// </summary>
    public static List<int> Resample(IReadOnlyList<string?> categories, IReadOnlyDictionary<string, double> weights, long seed, int epoch = 0)
    {
        foreach (var (k, w) in weights)
            if (w < 0 || double.IsNaN(w)) throw new ArgumentOutOfRangeException(nameof(weights), $"category weight '{k}' = {w} must be >= 0");
        var rng = new DeterministicRandom(seed * 7919 + epoch);
        var result = new List<int>();
        for (var i = 0; i < categories.Count; i++)
        {
            var w = weights.TryGetValue(Name(categories[i]), out var x) ? x : 1.0;
            var copies = (int)Math.Floor(w);
            if (rng.NextDouble() < w - copies) copies++;
            for (var k = 0; k < copies; k++) result.Add(i);
        }
        return result;
    }

    /// <summary>FNV-1a over UTF-16 units: a string hash that is the same in every process (string.GetHashCode is not).</summary>
    static ulong StableHash(string s)
    {
        var h = 14695981039346656037UL;
        foreach (var c in s) { h ^= c; h *= 1099511628211UL; }
        return h;
    }
}
