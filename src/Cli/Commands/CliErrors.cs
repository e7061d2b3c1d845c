namespace Qwen35.Cli.Commands;

/// <summary>Exit codes of the data verbs and the mapping of exceptions to them (message on stderr).</summary>
static class CliErrors
{
    public const int Ok = 0;
    public const int Usage = 1;
    public const int BadInput = 2;
    public const int Failure = 3;

    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        // NotSupportedException: a dataset feature the readers refuse (e.g. tool calls in the Parquet writer).
        catch (Exception e) when (CliParsing.IsBadInput(e) || e is NotSupportedException)
        {
            Console.Error.WriteLine("error: " + e.Message);
            return BadInput;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine("failed: " + e);
            return Failure;
        }
    }
}
