using System.Text.Json;
using System.Text.Json.Nodes;
using Parquet;
using Parquet.Serialization;

namespace Qwen35.Data;

/// <summary>What the reader does with a bad row.</summary>
public enum BadRowPolicy
{
    /// <summary>Throw <see cref="DatasetRowException"/> at the first bad row.</summary>
    Fail,
    /// <summary>Skip it, count it and keep the first <see cref="DatasetReadOptions.MaxReportedErrors"/> reasons.</summary>
    Skip,
}

/// <summary>Reader options.</summary>
/// <param name="Format">Row layout, or Auto to detect it per row from the keys.</param>
/// <param name="OnError">Fail fast (default) or skip and report.</param>
/// <param name="MaxReportedErrors">How many bad rows are kept with their reasons when skipping (all are counted).</param>
/// <param name="ValidateTemplate">Also render each conversation with the chat template so that template errors
/// (no user query, system not first) are reported as row errors here rather than during training.</param>
/// <param name="TrainDetailEnd">Whether train_detail end_offset is exclusive (default) or inclusive (axolotl data).</param>
public sealed record DatasetReadOptions(
    RowFormat Format = RowFormat.Auto,
    BadRowPolicy OnError = BadRowPolicy.Fail,
    int MaxReportedErrors = 20,
    bool ValidateTemplate = true,
    TrainDetailEnd TrainDetailEnd = TrainDetailEnd.Exclusive);

/// <summary>One input file as read.</summary>
public sealed record DatasetFileInfo(string Path, string Kind, long Rows, int RowGroups, long BadRows);

/// <summary>The conversations of a dataset, where each came from, and what was wrong with the rest.</summary>
public sealed class DatasetReadResult
{
    public List<Conversation> Conversations { get; } = [];

    /// <summary>For each conversation, its file and line (JSONL, 1-based) or row (Parquet, JSON array; 0-based);
    /// the same as <see cref="Conversation.Origin"/>.</summary>
    public List<DatasetLocation> Origins { get; } = [];

    public List<DatasetFileInfo> Files { get; } = [];

    /// <summary>The first reported bad rows (at most MaxReportedErrors).</summary>
    public List<DatasetRowError> Errors { get; } = [];

    /// <summary>All bad rows, reported or not.</summary>
    public long ErrorCount { get; internal set; }

    /// <summary>How many rows each layout converted.</summary>
    public Dictionary<RowFormat, int> Formats { get; } = [];

    public long TotalRows => Files.Sum(f => f.Rows);
}

/// <summary>
/// Reads JSONL (one JSON object per line; a .json file may also hold one JSON array of rows) and Parquet
/// (Hugging Face layout: <c>messages: list&lt;struct&lt;role, content, ...&gt;&gt;</c>, <c>category</c>, any other
/// columns kept as metadata; every row group) from a file, folder or glob, converting each row with
/// <see cref="RowConverters"/>. JSONL rows are named by their 1-based line (as editors count; blank lines count but
/// are not rows), Parquet and JSON-array rows by their 0-based index. Text is decoded as strict UTF-8: an invalid
/// byte makes its line a bad row instead of a silent U+FFFD. A file with no row at all is bad input, whatever the
/// bad-row policy (an empty export is a mistake, not a dataset).
/// </summary>
public static class DatasetReader
{
    public static DatasetReadResult Read(string pathOrGlobOrFolder, DatasetReadOptions? options = null)
    {
        options ??= new DatasetReadOptions();
        var result = new DatasetReadResult();
        foreach (var file in DatasetFiles.Resolve(pathOrGlobOrFolder))
        {
            long rows = 0, bad = 0;
            var rowGroups = 0;
            var kind = Path.GetExtension(file).Equals(".parquet", StringComparison.OrdinalIgnoreCase) ? "parquet" : "jsonl";
            IEnumerable<(DatasetLocation Where, JsonObject? Json, RowFieldException? Error)> source = kind == "parquet"
                ? ParquetRows(file, n => rowGroups = n)
                : JsonRows(file);
            foreach (var (where, json, error) in source)
            {
                rows++;
                var failure = error;
                if (failure == null)
                {
                    try
                    {
                        var (conversation, format) = RowConverters.Convert(json!, options.Format, options.TrainDetailEnd);
                        if (options.ValidateTemplate) ChatTemplate.Render(conversation.Messages);
                        result.Conversations.Add(conversation with { Origin = where });
                        result.Origins.Add(where);
                        result.Formats[format] = result.Formats.GetValueOrDefault(format) + 1;
                        continue;
                    }
                    catch (RowFieldException e) { failure = e; }
                    catch (ChatTemplateException e) { failure = new RowFieldException("messages", e.Message); }
                }
                bad++;
                var rowError = new DatasetRowError(where, failure.Field, failure.Reason);
                if (options.OnError == BadRowPolicy.Fail) throw new DatasetRowException(rowError);
                result.ErrorCount++;
                if (result.Errors.Count < options.MaxReportedErrors) result.Errors.Add(rowError);
            }
            if (rows == 0) throw FileError(file, "no rows (the file is empty)");
            result.Files.Add(new DatasetFileInfo(file, kind, rows, kind == "parquet" ? rowGroups : 0, bad));
        }
        return result;
    }

    static DatasetRowException FileError(string file, string reason, DatasetLocation? where = null) =>
        new(new DatasetRowError(where ?? DatasetLocation.WholeFile(file), "(file)", reason));

    /// <summary>The rows of a JSONL (or JSON-array) file as JSON objects, each with its location or its error
    /// (internal: the preference reader reads files through the same row source).</summary>
    internal static IEnumerable<(DatasetLocation, JsonObject?, RowFieldException?)> JsonRows(string file)
    {
        var bytes = File.ReadAllBytes(file);
        if (file.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && FirstNonSpace(bytes) == '[')
        {
            // A .json file holding one array of rows; row = index in the array.
            var (text, badByte) = Utf8Text.Decode(bytes.AsSpan(Utf8Text.ContentStart(bytes)));
            if (text == null)
            {
                var (line, column) = Utf8Text.LineOf(bytes, Utf8Text.ContentStart(bytes) + badByte);
                throw FileError(file, $"invalid UTF-8 at byte {column} of the line", DatasetLocation.AtLine(file, line));
            }
            JsonArray array;
            try { array = JsonNode.Parse(text, documentOptions: JsonErrorText.Strict)!.AsArray(); }
            catch (JsonException e)
            {
                var line = e.LineNumber is { } n ? n + 1 : 1;
                throw FileError(file, JsonErrorText.Describe(e, text, "file"), DatasetLocation.AtLine(file, line));
            }
            for (var i = 0; i < array.Count; i++)
            {
                var where = DatasetLocation.AtRow(file, i);
                yield return array[i] is JsonObject o ? (where, o, null) : (where, null, new RowFieldException("(row)", $"expected a JSON object, got {ConversationJson.Kind(array[i])}"));
            }
            yield break;
        }
        foreach (var (lineNo, line, utf8Error) in Utf8Text.Lines(bytes))
        {
            var where = DatasetLocation.AtLine(file, lineNo);
            if (utf8Error != null)
            {
                yield return (where, null, new RowFieldException("(line)", utf8Error));
                continue;
            }
            if (string.IsNullOrWhiteSpace(line)) continue;
            yield return ParseLine(where, line!);
        }
    }

    static (DatasetLocation, JsonObject?, RowFieldException?) ParseLine(DatasetLocation where, string line)
    {
        JsonNode? node;
        try { node = JsonNode.Parse(line, documentOptions: JsonErrorText.Strict); }
        catch (JsonException e) { return (where, null, new RowFieldException("(line)", JsonErrorText.Describe(e, line))); }
        return node is JsonObject o ? (where, o, null)
            : (where, null, new RowFieldException("(line)", $"expected a JSON object, got {ConversationJson.Kind(node)}"));
    }

    static int FirstNonSpace(byte[] bytes)
    {
        for (var i = Utf8Text.ContentStart(bytes); i < bytes.Length; i++)
            if (bytes[i] is not ((byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n')) return bytes[i];
        return -1;
    }

    /// <summary>The rows of every row group of a Parquet file as JSON objects (internal: shared with the preference reader).</summary>
    internal static IEnumerable<(DatasetLocation, JsonObject?, RowFieldException?)> ParquetRows(string file, Action<int> rowGroupCount)
    {
        int groups;
        try
        {
            using var probe = File.OpenRead(file);
            var reader = ParquetReader.CreateAsync(probe).GetAwaiter().GetResult();
            groups = reader.RowGroupCount;
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or InvalidOperationException)
        {
            throw FileError(file, $"not a readable Parquet file: {e.Message}");
        }
        rowGroupCount(groups);
        long row = 0;
        using var stream = File.OpenRead(file);
        for (var g = 0; g < groups; g++)
        {
            var data = ParquetSerializer.DeserializeUntypedAsync(stream, null, g).GetAwaiter().GetResult().Data;
            foreach (var dict in data)
                yield return (DatasetLocation.AtRow(file, row++), ParquetJson.ToJsonObject(dict), null);
        }
    }
}
