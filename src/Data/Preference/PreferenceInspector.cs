using System.Text.Json.Nodes;

namespace Qwen35.Data.Preference;

/// <summary>What <c>trainer data inspect --format preference</c> reports: rows, pairs per category and layout, bad
/// rows and (with a tokenizer) what the length limit cuts or drops.</summary>
public sealed class PreferenceInspection
{
    public required PreferenceReadResult Read { get; init; }

    /// <summary>The tokenization report (null without a tokenizer).</summary>
    public PreferenceTokenizeReport? Tokens { get; init; }

    /// <summary>Pairs DPO would train on: valid and not dropped by the length limit.</summary>
    public long Usable => Read.Count - (Tokens?.Dropped ?? 0);

    /// <summary>Bad rows of the reader plus pairs the tokenizer drops.</summary>
    public long Problems => Read.ErrorCount + (Tokens?.Dropped ?? 0);

    /// <summary>
    /// One JSON object: rows, valid, usable, files[], categories{} (valid pairs; "(none)" for no category),
    /// formats{conversational, standard}, error_count, errors[{file, line | row, field, reason}] and, with a
    /// tokenizer, tokens{max_length, truncated, dropped, dropped_rows[...], prompt, chosen, rejected, longest}.
    /// </summary>
    public JsonObject ToJson(int? maxLength = null)
    {
        var o = new JsonObject
        {
            ["rows"] = Read.TotalRows,
            ["valid"] = Read.Count,
            ["usable"] = Usable,
            ["files"] = new JsonArray(Read.Files.Select(f => (JsonNode)new JsonObject
            {
                ["file"] = f.Path, ["kind"] = f.Kind, ["rows"] = f.Rows, ["row_groups"] = f.RowGroups, ["bad_rows"] = f.BadRows,
            }).ToArray()),
            ["categories"] = new JsonObject(CategoryTools.Counts(Read.Select(e => e.Category)).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
            ["formats"] = new JsonObject(Read.Formats.Select(p => KeyValuePair.Create(p.Key.ToString().ToLowerInvariant(), (JsonNode?)p.Value))),
            ["error_count"] = Read.ErrorCount,
            ["errors"] = Errors(Read.Errors),
        };
        if (Tokens is { } t)
            o["tokens"] = new JsonObject
            {
                ["max_length"] = maxLength,
                ["truncated"] = t.Truncated, ["dropped"] = t.Dropped, ["dropped_rows"] = Errors(t.Errors),
                ["prompt"] = t.PromptTokens, ["chosen"] = t.ChosenTokens, ["rejected"] = t.RejectedTokens, ["longest"] = t.LongestSequence,
            };
        return o;
    }

    static JsonArray Errors(IEnumerable<DatasetRowError> errors) => new(errors.Select(e =>
    {
        var x = new JsonObject { ["file"] = e.File };
        if (e.Location.Unit == LocationUnit.Line) x["line"] = e.Location.Number;
        else if (e.Location.Unit == LocationUnit.Row) x["row"] = e.Location.Number;
        x["field"] = e.Field;
        x["reason"] = e.Reason;
        return (JsonNode)x;
    }).ToArray());

    public string ToJsonString(int? maxLength = null) => ToJson(maxLength).ToJsonString(new System.Text.Json.JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    public string ToText()
    {
        var sb = new System.Text.StringBuilder();
        foreach (var f in Read.Files)
            sb.AppendLine($"{f.Path}: {f.Kind}, {f.Rows} rows{(f.Kind == "parquet" ? $", {f.RowGroups} row groups" : "")}, {f.BadRows} bad");
        sb.AppendLine($"rows {Read.TotalRows}, valid pairs {Read.Count}, usable {Usable}, bad {Read.ErrorCount}{(Tokens != null ? $", dropped by max_length {Tokens.Dropped}" : "")}");
        sb.AppendLine("categories:");
        foreach (var (k, v) in CategoryTools.Counts(Read.Select(e => e.Category))) sb.AppendLine($"  {k,-28} {v}");
        sb.AppendLine("layouts: " + string.Join(", ", Read.Formats.Select(p => $"{p.Key.ToString().ToLowerInvariant()} {p.Value}")));
        if (Tokens is { } t)
            sb.AppendLine($"tokens: prompt {t.PromptTokens}, chosen {t.ChosenTokens}, rejected {t.RejectedTokens}, longest sequence {t.LongestSequence}, prompts cut on the left {t.Truncated}");
        if (Read.ErrorCount > 0)
        {
            sb.AppendLine($"bad rows ({Read.ErrorCount}, first {Read.Errors.Count}):");
            foreach (var e in Read.Errors) sb.AppendLine("  " + e);
        }
        if (Tokens is { Dropped: > 0 } d)
        {
            sb.AppendLine($"dropped by max_length ({d.Dropped}, first {d.Errors.Count}):");
            foreach (var e in d.Errors) sb.AppendLine("  " + e);
        }
        return sb.ToString();
    }
}

public static class PreferenceInspector
{
    /// <summary>Reads every row (bad rows skipped and reported) and, with a tokenizer, tokenizes as DPO training does.</summary>
    public static PreferenceInspection Inspect(string path, ITokenizer? tokenizer = null, MaskOptions? mask = null, int maxLength = int.MaxValue, int maxReportedErrors = 100)
    {
        var read = PreferenceReader.Read(path, BadRowPolicy.Skip, maxReportedErrors);
        var tokens = tokenizer == null ? null
            : PreferenceTokenizer.Tokenize(read, new SftEncoder(tokenizer, mask), maxLength, BadRowPolicy.Skip, maxReportedErrors).Report;
        return new PreferenceInspection { Read = read, Tokens = tokens };
    }
}
