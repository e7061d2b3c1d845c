using Qwen35.Data;
using Qwen35.Data.Preference;
using Qwen35.Training.Loop;
using Qwen35.Training.Recipes;
using Serilog;

namespace Qwen35.Training.Dpo;

/// <summary>
/// Preference pairs as the training loop reads them: per epoch a seeded order of pairs, <c>micro_batch_size</c> pairs
/// per micro-batch, and each pair's chosen and rejected sequences in the SAME micro-batch (one padded row each, or
/// packed into rows of <c>data.pack_length</c> with document boundaries when <c>data.packing</c> is on). Only the
/// completion tokens are labelled. Pairs are indexed train first, then eval (<see cref="All"/>): the order of the
/// reference log-probs.
/// </summary>
public sealed class DpoData : IMicroBatchSource
{
    readonly int _pairsPerBatch;
    readonly bool _packing;
    readonly int _rowLength;
    readonly int _padId;
    readonly long _seed;
    readonly Dictionary<string, int> _categoryIndex;
    double[] _refChosen;
    double[] _refRejected;
    IReadOnlyList<MicroBatch>? _evalBatches;
    (int Epoch, List<int> Order)? _order;

    public DpoData(IReadOnlyList<TokenizedPair> train, IReadOnlyList<TokenizedPair> eval, int pairsPerBatch, bool packing, int rowLength,
        int padId, long seed)
    {
        if (pairsPerBatch < 1) throw new ArgumentOutOfRangeException(nameof(pairsPerBatch), "a micro-batch holds at least one pair");
        Train = train;
        Eval = eval;
        All = [.. train, .. eval];
        _pairsPerBatch = pairsPerBatch;
        _packing = packing;
        _rowLength = rowLength;
        _padId = padId;
        _seed = seed;
        Categories = All.Select(p => CategoryTools.Name(p.Category)).Distinct().OrderBy(c => c, StringComparer.Ordinal).ToList();
        _categoryIndex = Categories.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i);
        _refChosen = new double[All.Count];
        _refRejected = new double[All.Count];
        Array.Fill(_refChosen, double.NaN);
        Array.Fill(_refRejected, double.NaN);
        if (packing)
            foreach (var p in All.Where(p => p.MaxSequenceLength > rowLength).Take(1))
                throw new UserInputException($"{p.Location}: the pair needs {p.MaxSequenceLength} tokens, more than a packed row (data.pack_length {rowLength}); raise data.pack_length or lower dpo.max_length");
    }

    public IReadOnlyList<TokenizedPair> Train { get; }
    public IReadOnlyList<TokenizedPair> Eval { get; }

    /// <summary>Train pairs, then eval pairs: the index space of <see cref="PreferencePairs.PairIndex"/>.</summary>
    public IReadOnlyList<TokenizedPair> All { get; }

    /// <summary>Category names, sorted; <see cref="PreferencePairs.CategoryIds"/> index this list.</summary>
    public IReadOnlyList<string> Categories { get; }

    /// <summary>The reference log-probs of every pair of <see cref="All"/> (chosen, rejected); NaN until set.</summary>
    public (double[] Chosen, double[] Rejected) Reference => (_refChosen, _refRejected);

    /// <summary>Sets the reference log-probs (see <see cref="ReferenceLogps"/>); batches built afterwards carry them.</summary>
    public void SetReference(double[] chosen, double[] rejected)
    {
        if (chosen.Length != All.Count || rejected.Length != All.Count)
            throw new ArgumentException($"reference log-probs for {chosen.Length} pairs, the data has {All.Count}");
        _refChosen = chosen;
        _refRejected = rejected;
        _evalBatches = null;
    }

    public int Count(int epoch) => (Train.Count + _pairsPerBatch - 1) / _pairsPerBatch;

    public MicroBatch Get(int epoch, int index)
    {
        if (_order is not { } o || o.Epoch != epoch)
        {
            var order = Enumerable.Range(0, Train.Count).ToList();
            new DeterministicRandom(_seed * 1_000_003 + epoch).Shuffle(order);
            _order = (epoch, order);
        }
        return Build(_order.Value.Order.Skip(index * _pairsPerBatch).Take(_pairsPerBatch).ToList());
    }

    /// <summary>The eval pairs in dataset order, <c>micro_batch_size</c> per micro-batch (with the reference log-probs).</summary>
    public IReadOnlyList<MicroBatch> EvalBatches => _evalBatches ??= Batches(Train.Count, All.Count).ToList();

    /// <summary>Every pair (train, then eval) in dataset order: what the reference pass scores.</summary>
    public IEnumerable<MicroBatch> AllBatches() => Batches(0, All.Count);

    IEnumerable<MicroBatch> Batches(int from, int to)
    {
        for (var s = from; s < to; s += _pairsPerBatch)
            yield return Build(Enumerable.Range(s, Math.Min(_pairsPerBatch, to - s)).ToList());
    }

    /// <summary>The micro-batch of the given pairs (indices into <see cref="All"/>): sequence 2k is pair k's chosen
    /// side, 2k+1 its rejected side.</summary>
    public MicroBatch Build(IReadOnlyList<int> pairIndices)
    {
        var sequences = new List<TokenizedExample>(2 * pairIndices.Count);
        foreach (var i in pairIndices)
        {
            var p = All[i];
            sequences.Add(Sequence(p.PromptIds, p.ChosenIds, p.Category, p.Id));
            sequences.Add(Sequence(p.PromptIds, p.RejectedIds, p.Category, p.Id));
        }
        List<List<int>> rows;
        Batch batch;
        if (_packing)
        {
            rows = Packer.PlanRows(sequences.Select(s => s.Length).ToList(), Enumerable.Range(0, sequences.Count).ToList(), _rowLength);
            batch = Packer.Collate(rows.Select(r => (IReadOnlyList<TokenizedExample>)r.Select(k => sequences[k]).ToList()).ToList(), _rowLength, _padId);
        }
        else
        {
            rows = Enumerable.Range(0, sequences.Count).Select(k => new List<int> { k }).ToList();
            batch = PaddingCollator.Collate(sequences, _padId);
        }
        var sequenceIds = new long[batch.Rows * batch.Length];
        Array.Fill(sequenceIds, -1L);
        for (var r = 0; r < batch.Rows; r++)
            for (var d = 0; d < rows[r].Count; d++)
            {
                var start = batch.DocumentStarts[r][d];
                var end = d + 1 < rows[r].Count ? batch.DocumentStarts[r][d + 1] : batch.RealLengths[r];
                Array.Fill(sequenceIds, rows[r][d], r * batch.Length + start, end - start);
            }
        return new MicroBatch
        {
            Rows = batch.Rows,
            Length = batch.Length,
            InputIds = batch.InputIds,
            Labels = batch.Labels,
            Documents = batch.IsPacked || batch.HasPadding ? new Models.PackedDocuments(batch.DocumentStarts, batch.RealLengths) : null,
            Pairs = new PreferencePairs(sequenceIds, pairIndices.ToArray(),
                pairIndices.Select(i => _refChosen[i]).ToArray(), pairIndices.Select(i => _refRejected[i]).ToArray(),
                pairIndices.Select(i => All[i].ChosenIds.Length).ToArray(), pairIndices.Select(i => All[i].RejectedIds.Length).ToArray(),
                pairIndices.Select(i => _categoryIndex[CategoryTools.Name(All[i].Category)]).ToArray()),
        };
    }

    static TokenizedExample Sequence(int[] prompt, int[] completion, string? category, string? id) =>
        new([.. prompt, .. completion], [.. Enumerable.Repeat(TokenizedExample.IgnoreIndex, prompt.Length), .. completion], category, id);

    /// <summary>
    /// Reads and tokenizes the recipe's preference files: data.train (and data.eval, else a stratified data.eval_split
    /// of the pairs), rendered by the chat template and masked as SFT would (<see cref="PreferenceTokenizer"/>), the
    /// prompt cut from the left to fit dpo.max_length (else data.max_length). Bad rows follow data.on_bad_row.
    /// With <paramref name="evalOnly"/> every pair is evaluation data (the eval verb).
    /// </summary>
    public static DpoData Load(DataOptions d, DpoOptions o, int pairsPerBatch, long seed, string baseDir, ITokenizer tokenizer, ILogger log,
        bool evalOnly = false)
    {
        List<PreferenceExample> Read(IEnumerable<string> paths, string what)
        {
            var all = new List<PreferenceExample>();
            foreach (var raw in paths)
            {
                var path = RecipeResolver.InputPath(raw, baseDir);
                var result = PreferenceReader.Read(path, d.ReadOptions());
                if (result.ErrorCount > 0)
                    log.Warning("{What} pairs: {Count} bad rows skipped in {Path}: {First}{More}", what, result.ErrorCount, path,
                        string.Join("; ", result.Errors.Take(5)), result.ErrorCount > 5 ? $" (and {result.ErrorCount - 5} more)" : "");
                log.Information("{What} pairs: {Count} from {Path}", what, result.Count, path);
                all.AddRange(result.Examples);
            }
            return all;
        }

        var train = Read(d.Train, evalOnly ? "eval" : "train");
        List<PreferenceExample> eval;
        if (evalOnly)
        {
            eval = train;
            train = [];
        }
        else if (d.Eval is not null) eval = Read([d.Eval], "eval");
        else
        {
            var (trainIdx, evalIdx) = CategoryTools.StratifiedSplit(train.Select(p => p.Category).ToList(), d.EvalSplit, seed);
            eval = evalIdx.Select(i => train[i]).ToList();
            train = trainIdx.Select(i => train[i]).ToList();
        }

        var encoder = new SftEncoder(tokenizer, d.Mask());
        var maxLength = o.MaxLength ?? d.MaxLength;
        PreferenceDataset Tokenize(List<PreferenceExample> pairs, string what)
        {
            var set = PreferenceTokenizer.Tokenize(pairs, encoder, maxLength, d.OnBadRow);
            var r = set.Report;
            log.Information("{What} pairs: {Kept}/{Total} kept ({Truncated} prompts cut from the left, {Dropped} dropped), completion tokens {Chosen} chosen / {Rejected} rejected",
                what, r.Kept, r.Pairs, r.Truncated, r.Dropped, r.ChosenTokens, r.RejectedTokens);
            if (r.Dropped > 0) log.Warning("{What} pairs dropped: {Count}: {First}", what, r.Dropped, string.Join("; ", r.Errors.Take(5)));
            return set;
        }
        var trainSet = Tokenize(train, "train");
        var evalSet = Tokenize(eval, "eval");
        if (trainSet.Count == 0 && !evalOnly)
            throw new UserInputException($"data.train: no usable preference pair in {string.Join(", ", d.Train)} (see the log for dropped rows)");
        if (d.CategoryWeights is not null) log.Warning("data.category_weights do not apply to objective dpo (every pair weighs the same); ignored");
        return new DpoData(trainSet.Pairs, evalSet.Pairs, pairsPerBatch, d.Packing, d.RowLength(), tokenizer.PadId, seed);
    }
}
