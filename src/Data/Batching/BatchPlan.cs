namespace Qwen35.Data;

/// <summary>How examples become batches.</summary>
/// <param name="BatchSize">Rows per batch.</param>
/// <param name="MaxLength">Row length for packing (token budget); examples must already fit (see SftEncoder.FitLength).</param>
/// <param name="Packing">Pack several documents per row (fixed length MaxLength) instead of one padded example per row.</param>
/// <param name="GroupByLength">Without packing: batch examples of similar length together (less padding), in a
/// seeded random order of batches.</param>
public sealed record BatchingOptions(int BatchSize = 1, int MaxLength = 2048, bool Packing = false, bool GroupByLength = true);

/// <summary>
/// The batches of one epoch: which examples go in which row of which batch. Deterministic for a given seed and
/// epoch; batches are materialised one at a time by <see cref="Build"/>.
/// </summary>
public sealed class BatchPlan
{
    readonly IReadOnlyList<TokenizedExample> _examples;
    readonly BatchingOptions _options;
    readonly int _padId;

    BatchPlan(IReadOnlyList<TokenizedExample> examples, BatchingOptions options, int padId, List<List<List<int>>> batches)
    {
        _examples = examples;
        _options = options;
        _padId = padId;
        Batches = batches;
    }

    /// <summary>Per batch, per row, the example indices.</summary>
    public IReadOnlyList<List<List<int>>> Batches { get; }

    public int Count => Batches.Count;

    public Batch Build(int index)
    {
        var rows = Batches[index].Select(r => (IReadOnlyList<TokenizedExample>)r.Select(i => _examples[i]).ToList()).ToList();
        return _options.Packing
            ? Packer.Collate(rows, _options.MaxLength, _padId)
            : PaddingCollator.Collate(rows.Select(r => r[0]).ToList(), _padId);
    }

    public IEnumerable<Batch> All()
    {
        for (var i = 0; i < Count; i++) yield return Build(i);
    }

    /// <summary>Plans one epoch. The order depends only on (seed, epoch) and the example lengths.</summary>
    public static BatchPlan Create(IReadOnlyList<TokenizedExample> examples, BatchingOptions options, int padId, long seed, int epoch = 0)
    {
        if (options.BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(options), "batch size must be positive");
        var rng = new DeterministicRandom(seed * 1_000_003 + epoch);
        var order = Enumerable.Range(0, examples.Count).ToList();
        rng.Shuffle(order);
        List<List<int>> rows;
        if (options.Packing)
        {
            // Longest first within large shuffled chunks packs tighter (best-fit-decreasing flavour) but keeps randomness.
            var chunk = Math.Max(options.BatchSize * 64, 256);
            var sorted = new List<int>(order.Count);
            for (var s = 0; s < order.Count; s += chunk)
                sorted.AddRange(order.Skip(s).Take(chunk).OrderByDescending(i => examples[i].Length).ThenBy(i => i));
            rows = Packer.PlanRows(examples.Select(e => e.Length).ToList(), sorted, options.MaxLength);
        }
        else
        {
            if (options.GroupByLength)
            {
                // Like HF's LengthGroupedSampler: sort by length inside mega-chunks of 50 batches, shuffle batch order later.
                var mega = options.BatchSize * 50;
                var grouped = new List<int>(order.Count);
                for (var s = 0; s < order.Count; s += mega)
                    grouped.AddRange(order.Skip(s).Take(mega).OrderByDescending(i => examples[i].Length).ThenBy(i => i));
                order = grouped;
            }
            rows = order.Select(i => new List<int> { i }).ToList();
        }
        var batches = new List<List<List<int>>>();
        for (var s = 0; s < rows.Count; s += options.BatchSize) batches.Add(rows.Skip(s).Take(options.BatchSize).ToList());
        if (options.Packing || options.GroupByLength) rng.Shuffle(batches);
        return new BatchPlan(examples, options, padId, batches);
    }
}
