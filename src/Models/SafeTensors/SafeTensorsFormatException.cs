namespace Qwen35.Models.SafeTensors;

/// <summary>
/// A safetensors file (or a sharded checkpoint's index) that breaks the format. The message always names the file
/// and the tensor or header field at fault, so a user can tell which download is damaged.
/// </summary>
public sealed class SafeTensorsFormatException : UserInputException
{
    public SafeTensorsFormatException(string message) : base(message) { }

    public SafeTensorsFormatException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Builds "<paramref name="file"/>: <paramref name="what"/>" with the file's full path.</summary>
    internal static SafeTensorsFormatException In(string file, string what, Exception? inner = null)
    {
        var message = $"{file}: {what}";
        return inner is null ? new(message) : new(message, inner);
    }
}
