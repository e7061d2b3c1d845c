using System.Text;
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

    /// <summary>For each conversation, its file and 0-based row within that file.</summary>
    public List<(string File, long Row)> Origins { get; } = [];

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
/// <see cref="RowConverters"/>. Row numbers are 0-based within their file (for JSONL: the line number - 1).
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
            IEnumerable<(long Row, JsonObject? Json, RowFieldException? Error)> source = kind == "parquet"
                ? ParquetRows(file, n => rowGroups = n)
                : JsonRows(file);
            foreach (var (row, json, error) in source)
            {
                rows++;
                var failure = error;
                if (failure == null)
                {
                    try
                    {
                        var (conversation, format) = RowConverters.Convert(json!, options.Format, options.TrainDetailEnd);
                        if (options.ValidateTemplate) ChatTemplate.Render(conversation.Messages);
                        result.Conversations.Add(conversation);
                        result.Origins.Add((file, row));
                        result.Formats[format] = result.Formats.GetValueOrDefault(format) + 1;
                        continue;
                    }
                    catch (RowFieldException e) { failure = e; }
                    catch (ChatTemplateException e) { failure = new RowFieldException("messages", e.Message); }
                }
                bad++;
                var rowError = new DatasetRowError(file, row, failure.Field, failure.Reason);
                if (options.OnError == BadRowPolicy.Fail) throw new DatasetRowException(rowError);
                result.ErrorCount++;
                if (result.Errors.Count < options.MaxReportedErrors) result.Errors.Add(rowError);
            }
            result.Files.Add(new DatasetFileInfo(file, kind, rows, kind == "parquet" ? rowGroups : 0, bad));
        }
        return result;
    }

    static IEnumerable<(long, JsonObject?, RowFieldException?)> JsonRows(string file)
    {
        var text = File.ReadAllText(file, Encoding.UTF8);
        if (file.EndsWith(".json", StringComparison.OrdinalIgnoreCase) && text.TrimStart().StartsWith('['))
        {
            // A .json file holding one array of rows; row = index in the array.
            JsonArray array;
            try { array = JsonNode.Parse(text)!.AsArray(); }
            catch (JsonException e) { throw new DatasetRowException(new DatasetRowError(file, 0, "(file)", $"invalid JSON array: {e.Message}")); }
            for (var i = 0; i < array.Count; i++)
                yield return array[i] is JsonObject o ? (i, o, null) : (i, null, new RowFieldException("(row)", $"expected a JSON object, got {ConversationJson.Kind(array[i])}"));
            yield break;
        }
        var lineNo = -1L;
        using var reader = new StringReader(text);
        for (var line = reader.ReadLine(); line != null; line = reader.ReadLine())
        {
            lineNo++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            JsonNode? node;
            RowFieldException? error = null;
            try { node = JsonNode.Parse(line); }
            catch (JsonException e) { node = null; error = new RowFieldException("(line)", $"invalid JSON: {e.Message}"); }
            if (error == null && node is not JsonObject) error = new RowFieldException("(line)", $"expected a JSON object, got {ConversationJson.Kind(node)}");
            yield return (lineNo, node as JsonObject, error);
        }
    }

    static IEnumerable<(long, JsonObject?, RowFieldException?)> ParquetRows(string file, Action<int> rowGroupCount)
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
            throw new DatasetRowException(new DatasetRowError(file, 0, "(file)", $"not a readable Parquet file: {e.Message}"));
        }
        rowGroupCount(groups);
        long row = 0;
        using var stream = File.OpenRead(file);
        for (var g = 0; g < groups; g++)
        {
            var data = ParquetSerializer.DeserializeUntypedAsync(stream, null, g).GetAwaiter().GetResult().Data;
            foreach (var dict in data)
                yield return (row++, ParquetJson.ToJsonObject(dict), null);
        }
    }
}
