namespace Qwen35.Lora;

/// <summary>
/// An adapter folder that cannot be used: the message names the file and the key or field at fault. Derives from
/// <see cref="IOException"/> like SafeTensorsFormatException (InvalidDataException is sealed), so the CLI can map
/// both to "bad input".
/// </summary>
public sealed class AdapterFormatException(string message, Exception? inner = null) : IOException(message, inner);
