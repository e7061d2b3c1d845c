using Qwen35.Data;

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
        catch (Exception e) when (e is DatasetRowException or RowFieldException or ChatTemplateException or FormatException
                                      or InvalidDataException or FileNotFoundException or DirectoryNotFoundException or NotSupportedException)
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
