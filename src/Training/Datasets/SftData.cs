using Qwen35.Data;
using Qwen35.Training.Loop;
using Qwen35.Training.Recipes;
using Serilog;

namespace Qwen35.Training.Datasets;

/// <summary>
/// The recipe's data section made concrete: read the training (and eval) files, hold out an eval split when no eval
/// file is given, encode every conversation (chat template + loss mask + max_length policy), and plan seeded batches
/// per epoch (packed rows or padded rows). Batches become <see cref="MicroBatch"/>es with per-token category ids (for
/// per-category eval loss) and, when category_weights are set, per-token loss weights.
/// </summary>
public sealed class SftData : IMicroBatchSource
{
    readonly IReadOnlyList<TokenizedExample> _train;
    readonly BatchingOptions _batching;
    readonly int _padId;
    readonly long _seed;
    readonly Dictionary<string, int> _categoryIndex;
    readonly IReadOnlyDictionary<string, double>? _weights;
    (int Epoch, BatchPlan Plan)? _plan;

    SftData(IReadOnlyList<TokenizedExample> train, IReadOnlyList<TokenizedExample> eval, IReadOnlyList<string> categories,
        BatchingOptions batching, int padId, long seed, IReadOnlyDictionary<string, double>? weights, SftEncodeReport trainReport)
    {
        _train = train;
        _batching = batching;
        _padId = padId;
        _seed = seed;
        _weights = weights;
        Categories = categories;
        _categoryIndex = categories.Select((c, i) => (c, i)).ToDictionary(x => x.c, x => x.i);
        TrainReport = trainReport;
        EvalBatches = eval.Count == 0 ? []
            : BatchPlan.Create(eval, batching with { GroupByLength = true }, padId, seed, epoch: 0).All().Select(ToMicroBatch).ToList();
        EvalExamples = eval.Count;
    }

    /// <summary>Category names, sorted; a token's CategoryIds entry indexes this list.</summary>
    public IReadOnlyList<string> Categories { get; }
    public IReadOnlyList<MicroBatch> EvalBatches { get; }
    public int TrainExamples => _train.Count;
    public int EvalExamples { get; }
    public SftEncodeReport TrainReport { get; }
    public long TrainTokens => _train.Sum(e => (long)e.Length);

    public int Count(int epoch) => Plan(epoch).Count;

    public MicroBatch Get(int epoch, int index) => ToMicroBatch(Plan(epoch).Build(index));

    BatchPlan Plan(int epoch)
    {
        if (_plan is not { } p || p.Epoch != epoch) _plan = (epoch, BatchPlan.Create(_train, _batching, _padId, _seed, epoch));
        return _plan.Value.Plan;
    }

    MicroBatch ToMicroBatch(Batch b)
    {
        var n = b.Rows * b.Length;
        var categoryIds = new long[n];
        Array.Fill(categoryIds, -1L);   // padding
        float[]? weights = _weights is null ? null : new float[n];
        if (weights is not null) Array.Fill(weights, 1f);
        var doc = 0;   // index into b.Categories: documents in row order
        for (var r = 0; r < b.Rows; r++)
        {
            var starts = b.DocumentStarts[r];
            for (var d = 0; d < starts.Length && starts[d] < b.RealLengths[r]; d++, doc++)
            {
                var name = CategoryTools.Name(b.Categories[doc]);
                var end = d + 1 < starts.Length ? starts[d + 1] : b.RealLengths[r];
                for (var i = r * b.Length + starts[d]; i < r * b.Length + end; i++)
                {
                    categoryIds[i] = name is null ? -1 : _categoryIndex[name];
                    if (weights is not null && name is not null && _weights!.TryGetValue(name, out var w)) weights[i] = (float)w;
                }
            }
        }
        return new MicroBatch
        {
            Rows = b.Rows,
            Length = b.Length,
            InputIds = b.InputIds,
            Labels = b.Labels,
            // Documents only when some row is packed or padded: otherwise the model takes its plain causal path.
            Documents = b.IsPacked || b.HasPadding ? new Models.PackedDocuments(b.DocumentStarts, b.RealLengths) : null,
            CategoryIds = categoryIds,
            TokenWeights = weights,
        };
    }

    /// <summary>Reads, splits and encodes the data. Bad rows fail or are skipped per data.on_bad_row.
    /// With <paramref name="evalOnly"/> every conversation of data.train becomes evaluation data (the eval verb).</summary>
    /// <param name="microBatchSize">rows per micro-batch.</param>
    /// <param name="seed">seeds the eval split and the batch order.</param>
    /// <param name="baseDir">folder that relative data paths resolve against (the recipe's).</param>
    public static SftData Load(DataOptions d, int microBatchSize, long seed, string baseDir, ITokenizer tokenizer, ILogger log,
        bool evalOnly = false)
    {
        var readOptions = d.ReadOptions();

        List<Conversation> Read(IEnumerable<string> paths, string what)
        {
            var all = new List<Conversation>();
            foreach (var raw in paths)
            {
                var path = RecipeResolver.InputPath(raw, baseDir);
                var result = DatasetReader.Read(path, readOptions);
                if (result.ErrorCount > 0)
                {
                    // One summary naming the first 5 (file and line/row); the rest only at Debug.
                    log.Warning("{What} data: {Count} bad rows skipped in {Path}: {First}{More}", what, result.ErrorCount, path,
                        string.Join("; ", result.Errors.Take(5)), result.ErrorCount > 5 ? $" (and {result.ErrorCount - 5} more)" : "");
                    foreach (var e in result.Errors.Skip(5)) log.Debug("{What} data: skipped {Error}", what, e.ToString());
                }
                log.Information("{What} data: {Count} conversations from {Path}", what, result.Conversations.Count, path);
                all.AddRange(result.Conversations);
            }
            return all;
        }

        var train = Read(d.Train, evalOnly ? "eval" : "train");
        List<Conversation> eval;
        if (evalOnly)
        {
            eval = train;
            train = [];
        }
        else if (d.Eval is not null) eval = Read([d.Eval], "eval");
        else
        {
            // Stratified by category so every category has eval rows (and per-category eval loss means something).
            var (trainIdx, evalIdx) = CategoryTools.StratifiedSplit(train.Select(c => c.Category).ToList(), d.EvalSplit, seed);
            eval = evalIdx.Select(i => train[i]).ToList();
            train = trainIdx.Select(i => train[i]).ToList();
        }

        var encoder = new SftEncoder(tokenizer, d.Mask());
        var policy = d.Truncation;
        var trainSet = SftDataset.Build(train, encoder, d.MaxLength, policy);
        var evalSet = SftDataset.Build(eval, encoder, d.MaxLength, policy);
        foreach (var (name, set) in new[] { ("train", trainSet), ("eval", evalSet) })
        {
            var r = set.Report;
            log.Information("{What} examples: {Kept}/{Total} kept ({Truncated} truncated, {TooLong} dropped as too long, {NoTarget} without trained tokens), {Tokens} tokens, {Trained} trained",
                name, r.Kept, r.Conversations, r.Truncated, r.DroppedTooLong, r.DroppedNoTarget, r.Tokens, r.TrainedTokens);
            // Dropped examples: one summary naming the first 5 (file and line/row); the rest, and truncations, at Debug.
            var dropped = r.DroppedNotes.Take(5).ToList();
            var droppedCount = r.DroppedTooLong + r.DroppedNoTarget;
            if (droppedCount > 0)
                log.Information("{What} examples dropped: {Count}: {First}{More}", name, droppedCount,
                    string.Join("; ", dropped), droppedCount > 5 ? $" (and {droppedCount - 5} more)" : "");
            foreach (var note in r.Notes.Except(dropped)) log.Debug("{What}: {Note}", name, note.ToString());
        }
        if (trainSet.Examples.Count == 0 && !evalOnly)
            throw new UserInputException($"data.train: no usable training example in {string.Join(", ", d.Train)} (see the log for dropped rows)");

        var categories = trainSet.Examples.Concat(evalSet.Examples).Select(e => CategoryTools.Name(e.Category))
            .Distinct().OrderBy(c => c, StringComparer.Ordinal).ToList();
        if (d.CategoryWeights is { } w)
            foreach (var key in w.Keys.Where(k => !categories.Contains(k)))
                log.Warning("data.category_weights: category '{Category}' does not occur in the data (known: {Known})", key, string.Join(", ", categories));

        var batching = new BatchingOptions(BatchSize: microBatchSize, MaxLength: d.RowLength(), Packing: d.Packing);
        return new SftData(trainSet.Examples, evalSet.Examples, categories, batching, tokenizer.PadId, seed,
            d.CategoryWeights, trainSet.Report);
    }
}
