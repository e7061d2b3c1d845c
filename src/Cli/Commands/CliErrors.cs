namespace Qwen35.Cli.Commands;

/// <summary>Exit codes of the verbs and the mapping of exceptions to them (message on stderr).</summary>
static class CliErrors
{
    public const int Ok = 0;
    public const int Usage = 1;
    public const int BadInput = 2;
    public const int Failure = 3;

    /// <summary>
    /// Runs a model verb's body with the exit-code convention: bad input (<see cref="CliParsing.IsBadInput"/>, or
    /// <paramref name="alsoBadInput"/>) → "verb: error: message" and 2; anything else → "verb: failed: exception" and 3.
    /// </summary>
    public static int Guard(string verb, TextWriter stderr, Func<int> body, Func<Exception, bool>? alsoBadInput = null)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (CliParsing.IsBadInput(e) || alsoBadInput?.Invoke(e) == true)
        {
            stderr.WriteLine($"{verb}: error: {e.Message}");
            return BadInput;
        }
        catch (Exception e)
        {
            stderr.WriteLine($"{verb}: failed: {e}");
            return Failure;
        }
    }

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
