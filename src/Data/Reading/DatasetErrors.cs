namespace Qwen35.Data;

/// <summary>A field of one row is missing or malformed; the reader adds the file and row.</summary>
public sealed class RowFieldException(string field, string reason) : UserInputException($"{field}: {reason}")
{
    public string Field { get; } = field;
    public string Reason { get; } = reason;
}

/// <summary>One bad row: file, 0-based row within that file, the offending field and what is wrong with it.</summary>
public sealed record DatasetRowError(string File, long Row, string Field, string Reason)
{
    public override string ToString() => $"{File}: row {Row}: {Field}: {Reason}";
}

/// <summary>A bad row in fail-fast mode (the message names file, row, field and reason).</summary>
public sealed class DatasetRowException(DatasetRowError error) : UserInputException(error.ToString())
{
    public DatasetRowError Error { get; } = error;
}
