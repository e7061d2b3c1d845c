using System.Collections;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Qwen35.Data.Preference;

/// <summary>The pairs of a preference dataset, where each came from, and what was wrong with the rest.</summary>
public sealed class PreferenceReadResult : IReadOnlyList<PreferenceExample>
{
    public List<PreferenceExample> Examples { get; } = [];

    public List<DatasetFileInfo> Files { get; } = [];

    /// <summary>The first reported bad rows (at most the reader's maxReportedErrors).</summary>
    public List<DatasetRowError> Errors { get; } = [];

    /// <summary>All bad rows, reported or not.</summary>
    public long ErrorCount { get; internal set; }

    /// <summary>How many good rows each layout held.</summary>
    public SortedDictionary<PreferenceFormat, int> Formats { get; } = [];

    public long TotalRows => Files.Sum(f => f.Rows);

    public int Count => Examples.Count;
    public PreferenceExample this[int index] => Examples[index];
    public IEnumerator<PreferenceExample> GetEnumerator() => Examples.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>
/// Reads preference pairs in TRL's explicit-prompt layouts from JSONL (or a .json array) and Parquet files, a folder
/// or a glob, through the same row source as the SFT reader (strict UTF-8, JSONL lines 1-based, Parquet rows
/// 0-based, every row group):
/// <list type="bullet">
/// <item>conversational: <c>{"prompt": [messages], "chosen": [one assistant message], "rejected": [one assistant message]}</c>;</item>
/// <item>standard: <c>{"prompt": "...", "chosen": "...", "rejected": "..."}</c>, the prompt string being one user message;</item>
/// </list>
/// plus optional <c>category</c> and <c>id</c>; other keys are ignored. A prompt string with completion lists (or the
/// reverse) is accepted: each side is read by its own type.
/// </summary>
/// <remarks>
/// Bad rows (one line each: "FILE line N: FIELD: reason"): a missing, null or empty side; a completion that is not
/// exactly one assistant message; a prompt that does not end with a user or tool message; chosen and rejected that
/// render to the same text; anything the chat template refuses; malformed JSON. Message-level training flags
/// (<c>train</c>, <c>train_detail</c>, content parts' <c>train</c>) mean nothing in a pair: prompt messages are context
/// and the whole completion is scored, so the flags are cleared.
/// </remarks>
public static class PreferenceReader
{
    /// <summary>Why a pair whose two answers are the same is refused (DPO learns nothing from it).</summary>
    public const string IdenticalReason = "identical to chosen (the two answers render to the same text)";

    /// <summary>Reads with the recipe's reader options (<see cref="DataOptions.ReadOptions"/>): its bad-row policy and
    /// report limit apply; the row format does not (a preference row has one layout family).</summary>
    public static PreferenceReadResult Read(string pathOrGlobOrFolder, DatasetReadOptions options) =>
        Read(pathOrGlobOrFolder, options.OnError, options.MaxReportedErrors);

    public static PreferenceReadResult Read(string pathOrGlobOrFolder, BadRowPolicy onBadRow = BadRowPolicy.Fail, int maxReportedErrors = 20)
    {
        var result = new PreferenceReadResult();
        foreach (var file in DatasetFiles.Resolve(pathOrGlobOrFolder))
        {
            long rows = 0, bad = 0;
            var rowGroups = 0;
            var kind = Path.GetExtension(file).Equals(".parquet", StringComparison.OrdinalIgnoreCase) ? "parquet" : "jsonl";
            var source = kind == "parquet" ? DatasetReader.ParquetRows(file, n => rowGroups = n) : DatasetReader.JsonRows(file);
            foreach (var (where, json, error) in source)
            {
                rows++;
                var failure = error;
                if (failure == null)
                {
                    try
                    {
                        var (example, format) = Parse(json!, where);
                        result.Examples.Add(example);
                        result.Formats[format] = result.Formats.GetValueOrDefault(format) + 1;
                        continue;
                    }
                    catch (RowFieldException e) { failure = e; }
                    catch (ChatTemplateException e) { failure = new RowFieldException("prompt", e.Message); }
                }
                bad++;
                var rowError = new DatasetRowError(where, failure.Field, failure.Reason);
                if (onBadRow == BadRowPolicy.Fail) throw new DatasetRowException(rowError);
                result.ErrorCount++;
                if (result.Errors.Count < maxReportedErrors) result.Errors.Add(rowError);
            }
            if (rows == 0) throw new DatasetRowException(new DatasetRowError(DatasetLocation.WholeFile(file), "(file)", "no rows (the file is empty)"));
            result.Files.Add(new DatasetFileInfo(file, kind, rows, kind == "parquet" ? rowGroups : 0, bad));
        }
        return result;
    }

    /// <summary>Parses one row; throws <see cref="RowFieldException"/> (or the template's error) naming the field.</summary>
    public static (PreferenceExample Example, PreferenceFormat Format) Parse(JsonObject row, DatasetLocation where)
    {
        var (prompt, promptIsText) = Prompt(row);
        var (chosen, chosenIsText) = Completion(row, "chosen");
        var (rejected, _) = Completion(row, "rejected");
        // Rendering both conversations checks them as the trainer will see them (system first, a user query) and
        // catches answers that differ only in what the template strips.
        var chosenText = ChatTemplate.Render([.. prompt, .. chosen]).Text;
        var rejectedText = ChatTemplate.Render([.. prompt, .. rejected]).Text;
        if (chosenText == rejectedText) throw new RowFieldException("rejected", IdenticalReason);
        var example = new PreferenceExample(ConversationJson.OptionalId(row, "id"), ConversationJson.OptionalString(row, "category"),
            prompt, chosen, rejected, where.File, checked((int)where.Number), where.Unit);
        return (example, promptIsText && chosenIsText ? PreferenceFormat.Standard : PreferenceFormat.Conversational);
    }

    static (IReadOnlyList<ChatMessage> Messages, bool IsText) Prompt(JsonObject row)
    {
        switch (Side(row, "prompt"))
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                var text = v.GetValue<string>();
                if (PyText.Strip(text).Length == 0) throw new RowFieldException("prompt", "empty");
                return ([new ChatMessage(Roles.User, text, Train: false)], true);
            case JsonArray a:
                var messages = ConversationJson.ParseMessages(a, "prompt").Select(m => m with { Train = false, TrainDetail = null }).ToList();
                var last = messages[^1];
                if (last.Role is not (Roles.User or Roles.Tool))
                    throw new RowFieldException($"prompt[{messages.Count - 1}].role", $"the prompt must end with a user or tool message, got {last.Role}");
                return (messages, false);
            case var other:
                throw new RowFieldException("prompt", $"expected a string or a list of messages, got {ConversationJson.Kind(other)}");
        }
    }

    static (IReadOnlyList<ChatMessage> Messages, bool IsText) Completion(JsonObject row, string key)
    {
        switch (Side(row, key))
        {
            case JsonValue v when v.GetValueKind() == JsonValueKind.String:
                return ([EmptyAnswer.Refuse(new ChatMessage(Roles.Assistant, v.GetValue<string>()), key)], true);
            case JsonArray a:
                var messages = ConversationJson.ParseMessages(a, key);
                if (messages.Count != 1)
                    throw new RowFieldException(key, $"expected exactly one assistant message, got {messages.Count} messages");
                if (messages[0].Role != Roles.Assistant)
                    throw new RowFieldException($"{key}[0].role", $"expected assistant, got {messages[0].Role}");
                return ([messages[0] with { Train = null, TrainDetail = null }], false);
            case var other:
                throw new RowFieldException(key, $"expected a string or a list with one assistant message, got {ConversationJson.Kind(other)}");
        }
    }

    static JsonNode Side(JsonObject row, string key) => row[key] ?? throw new RowFieldException(key, row.ContainsKey(key) ? "is null" : "missing");
}
