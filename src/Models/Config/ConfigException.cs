namespace Qwen35.Models.Config;

/// <summary>A config.json that cannot be read as a dense Qwen3.5 text config; the message starts with the file and
/// names the key (bad input: the CLI prints it and exits 2).</summary>
public sealed class ConfigException(string message) : UserInputException(message);
