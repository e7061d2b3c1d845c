namespace Qwen35.Cli.Commands;

/// <summary>
/// stderr of a rank other than 0 in a multi-process job: its lines carry <c>rank N:</c>, and a bad-input line
/// (<c>VERB: error: …</c>) is dropped because every rank reads the same recipe and data and rank 0 reports it.
/// </summary>
public sealed class RankErrorWriter(TextWriter inner, int rank) : TextWriter
{
    public override System.Text.Encoding Encoding => inner.Encoding;

    public override void WriteLine(string? value)
    {
        if (value is not null && value.Contains(": error: ", StringComparison.Ordinal)) return;
        inner.WriteLine($"rank {rank}: {value}");
    }

    public override void Write(char value) => inner.Write(value);
    public override void Flush() => inner.Flush();
}
