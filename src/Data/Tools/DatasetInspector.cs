using System.Text.Json.Nodes;

namespace Qwen35.Data;

/// <summary>A dataset summary: files, row groups, categories, layouts, bad rows and (with a tokenizer) token lengths.</summary>
public sealed class DatasetInspection
{
    public required DatasetReadResult Read { get; init; }
    public SftEncodeReport? Encode { get; init; }

    /// <summary>Valid rows that training would still drop (no trained assistant turn; with a tokenizer also those
    /// that truncation leaves without a trained token).</summary>
    public required long DroppedCount { get; init; }

    /// <summary>The first dropped rows, named by file and line/row, with the reason.</summary>
    public required IReadOnlyList<SftNote> Dropped { get; init; }

    /// <summary>Rows training would use: valid and not dropped.</summary>
    public long Usable => Read.Conversations.Count - DroppedCount;

    static void AddLocation(JsonObject o, DatasetLocation where)
    {
        o["file"] = where.File;
        if (where.Unit == LocationUnit.Line) o["line"] = where.Number;
        else if (where.Unit == LocationUnit.Row) o["row"] = where.Number;
    }

    /// <summary>Histogram bucket upper bounds (powers of two) for token lengths.</summary>
    static IEnumerable<int> Buckets(int max)
    {
        for (var b = 64; ; b *= 2)
        {
            yield return b;
            if (b >= max) yield break;
        }
    }

    /// <summary>
    /// <summary>The JSON text, with non-ASCII text (Japanese) kept readable.</summary>
    public string ToJsonString() => ToJson().ToJsonString(new System.Text.Json.JsonSerializerOptions
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    });

    /// <summary>
    /// One JSON object: rows (all rows of all files, bad ones included), valid, usable (what training keeps),
    /// files[], categories{} (valid rows; no category counts under "(none)"), formats{}, error_count,
    /// errors[{file, line (JSONL, 1-based) | row (Parquet/JSON array, 0-based), field, reason}], dropped_count,
    /// dropped[{file, line | row, id?, reason}] and, with a tokenizer,
    /// tokens{count,trained,min,max,mean,p50,p95,truncated,dropped_too_long,dropped_no_target,histogram[]}.
    /// </summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject
        {
            ["rows"] = Read.TotalRows,
            ["valid"] = Read.Conversations.Count,
            ["usable"] = Usable,
            ["files"] = new JsonArray(Read.Files.Select(f => (JsonNode)new JsonObject
            {
                ["file"] = f.Path, ["kind"] = f.Kind, ["rows"] = f.Rows, ["row_groups"] = f.RowGroups, ["bad_rows"] = f.BadRows,
            }).ToArray()),
            ["categories"] = new JsonObject(CategoryTools.Counts(Read.Conversations.Select(c => c.Category)).Select(p => KeyValuePair.Create(p.Key, (JsonNode?)p.Value))),
            ["formats"] = new JsonObject(Read.Formats.OrderBy(p => p.Key).Select(p => KeyValuePair.Create(p.Key.ToString(), (JsonNode?)p.Value))),
            ["error_count"] = Read.ErrorCount,
            ["errors"] = new JsonArray(Read.Errors.Select(e =>
            {
                var x = new JsonObject();
                AddLocation(x, e.Location);
                x["field"] = e.Field;
                x["reason"] = e.Reason;
                return (JsonNode)x;
            }).ToArray()),
            ["dropped_count"] = DroppedCount,
            ["dropped"] = new JsonArray(Dropped.Select(d =>
            {
                var x = new JsonObject();
                if (d.Origin is { } where) AddLocation(x, where);
                if (d.Id != null) x["id"] = d.Id;
                x["reason"] = d.Reason;
                return (JsonNode)x;
            }).ToArray()),
        };
        if (Encode is { } r)
        {
            var sorted = r.Lengths.Order().ToList();
            int Pct(double p) => sorted.Count == 0 ? 0 : sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
            var histogram = new JsonArray();
            var lower = 0;
            foreach (var b in Buckets(sorted.Count == 0 ? 64 : sorted[^1]))
            {
                histogram.Add(new JsonObject { ["le"] = b, ["count"] = sorted.Count(l => l > lower && l <= b) });
                lower = b;
            }
            o["tokens"] = new JsonObject
            {
                ["count"] = r.Tokens, ["trained"] = r.TrainedTokens,
                ["min"] = sorted.Count == 0 ? 0 : sorted[0], ["max"] = sorted.Count == 0 ? 0 : sorted[^1],
                ["mean"] = sorted.Count == 0 ? 0 : Math.Round(sorted.Average(), 1), ["p50"] = Pct(0.5), ["p95"] = Pct(0.95),
                ["truncated"] = r.Truncated, ["dropped_too_long"] = r.DroppedTooLong, ["dropped_no_target"] = r.DroppedNoTarget,
                ["histogram"] = histogram,
            };
        }
        return o;
    }

    /// <summary>A human-readable report.</summary>
    public string ToText()
    {
        var j = ToJson();
        var sb = new System.Text.StringBuilder();
        foreach (var f in Read.Files)
            sb.AppendLine($"{f.Path}: {f.Kind}, {f.Rows} rows{(f.Kind == "parquet" ? $", {f.RowGroups} row groups" : "")}, {f.BadRows} bad");
        sb.AppendLine($"rows {Read.TotalRows}, valid {Read.Conversations.Count}, usable {Usable}, bad {Read.ErrorCount}, dropped by training {DroppedCount}");
        sb.AppendLine("categories:");
        foreach (var (k, v) in j["categories"]!.AsObject()) sb.AppendLine($"  {k,-28} {v}");
        sb.AppendLine("layouts: " + string.Join(", ", Read.Formats.Select(p => $"{p.Key} {p.Value}")));
        if (j["tokens"] is JsonObject t)
        {
            sb.AppendLine($"tokens: total {t["count"]}, trained {t["trained"]}, min {t["min"]}, mean {t["mean"]}, p50 {t["p50"]}, p95 {t["p95"]}, max {t["max"]}");
            sb.AppendLine($"  truncated {t["truncated"]}, dropped (too long) {t["dropped_too_long"]}, dropped (no target) {t["dropped_no_target"]}");
            var max = t["histogram"]!.AsArray().Max(h => (int)h!["count"]!);
            foreach (var h in t["histogram"]!.AsArray())
            {
                var n = (int)h!["count"]!;
                sb.AppendLine($"  <= {(int)h["le"]!,6}: {n,6} {new string('#', max == 0 ? 0 : (int)Math.Ceiling(40.0 * n / max))}");
            }
        }
        if (Read.ErrorCount > 0)
        {
            sb.AppendLine($"bad rows ({Read.ErrorCount}, first {Read.Errors.Count}):");
            foreach (var e in Read.Errors) sb.AppendLine("  " + e);
        }
        if (DroppedCount > 0)
        {
            sb.AppendLine($"dropped by training ({DroppedCount}, first {Dropped.Count}):");
            foreach (var d in Dropped) sb.AppendLine("  " + d);
        }
        return sb.ToString();
    }
}

/// <summary>Builds a <see cref="DatasetInspection"/> (what <c>trainer data inspect</c> prints).</summary>
public static class DatasetInspector
{
    public static DatasetInspection Inspect(string path, ITokenizer? tokenizer = null, MaskOptions? mask = null, int maxLength = int.MaxValue, int maxReportedErrors = 100)
    {
        var read = DatasetReader.Read(path, new DatasetReadOptions(OnError: BadRowPolicy.Skip, MaxReportedErrors: maxReportedErrors));
        if (tokenizer != null)
        {
            // Exactly what training does: encode, apply the length limit, drop what has no trained token.
            var encode = SftDataset.Build(read.Conversations, new SftEncoder(tokenizer, mask), maxLength, OverLength.Truncate).Report;
            return new DatasetInspection
            {
                Read = read, Encode = encode,
                DroppedCount = encode.DroppedNoTarget + encode.DroppedTooLong, Dropped = encode.DroppedNotes.ToList(),
            };
        }
        // Without a tokenizer: a conversation whose mask trains no character (no assistant turn, or every one with
        // train: false) has no trained token either, so training drops it.
        mask ??= new MaskOptions();
        var dropped = new List<SftNote>();
        long count = 0;
        for (var i = 0; i < read.Conversations.Count; i++)
        {
            var c = read.Conversations[i];
            if (TrainedSpans.Compute(c.Messages, ChatTemplate.Render(c.Messages), mask).Any(s => s.End > s.Start)) continue;
            count++;
            if (dropped.Count < maxReportedErrors) dropped.Add(new SftNote(SftNoteKind.DroppedNoTarget, i, c.Origin, c.Id, SftDataset.NoTrainedTurn));
        }
        return new DatasetInspection { Read = read, DroppedCount = count, Dropped = dropped };
    }
}
