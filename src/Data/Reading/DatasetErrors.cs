namespace Qwen35.Data;

/// <summary>How a position in a dataset file is counted.</summary>
public enum LocationUnit
{
    /// <summary>The whole file (it cannot be read, or holds no rows).</summary>
    File,
    /// <summary>A 1-based line of a text file (JSONL), as an editor numbers it; blank lines count.</summary>
    Line,
    /// <summary>A 0-based row index (Parquet across its row groups, the elements of a JSON array file).</summary>
    Row,
}

/// <summary>Where a row came from: the file and its line (JSONL, 1-based) or row (Parquet / JSON array, 0-based).</summary>
public sealed record DatasetLocation(string File, LocationUnit Unit, long Number)
{
    public static DatasetLocation WholeFile(string file) => new(file, LocationUnit.File, 0);
    public static DatasetLocation AtLine(string file, long line) => new(file, LocationUnit.Line, line);
    public static DatasetLocation AtRow(string file, long row) => new(file, LocationUnit.Row, row);

    /// <summary>"line N", "row N", or "" for the whole file.</summary>
    public string Position => Unit switch
    {
        LocationUnit.Line => $"line {Number}",
        LocationUnit.Row => $"row {Number}",
        _ => "",
    };

    /// <summary>"FILE line N", "FILE row N" or "FILE": the one way every message names a place in the data.</summary>
    public override string ToString() => Unit == LocationUnit.File ? File : $"{File} {Position}";
}

/// <summary>A field of one row is missing or malformed; the reader adds the file and line or row.</summary>
public sealed class RowFieldException(string field, string reason) : UserInputException($"{field}: {reason}")
{
    public string Field { get; } = field;
    public string Reason { get; } = reason;
}

/// <summary>One bad row: where it is, the offending field and what is wrong with it, in words.</summary>
public sealed record DatasetRowError(DatasetLocation Location, string Field, string Reason)
{
    public string File => Location.File;

    /// <summary>"FILE line N: FIELD: reason" (JSONL), "FILE row N: FIELD: reason" (Parquet, JSON array), "FILE: FIELD: reason".</summary>
    public override string ToString() => $"{Location}: {Field}: {Reason}";
}

/// <summary>A bad row in fail-fast mode, or a file that cannot be read as a dataset at all (the message is the error's line).</summary>
public sealed class DatasetRowException(DatasetRowError error) : UserInputException(error.ToString())
{
    public DatasetRowError Error { get; } = error;
}
