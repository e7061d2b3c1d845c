namespace Qwen35.Lora;

/// <summary>
/// An adapter folder that cannot be used: the message names the file and the key or field at fault.
/// </summary>
public sealed class AdapterFormatException(string message, Exception? inner = null) : UserInputException(message, inner);
