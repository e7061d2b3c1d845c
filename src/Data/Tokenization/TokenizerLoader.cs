namespace Qwen35.Data;

/// <summary>Resolves the tokenizer named by a recipe or a CLI option.</summary>
public static class TokenizerLoader
{
    /// <summary>The name that selects <see cref="ByteLevelTokenizer.BuiltIn"/>.</summary>
    public const string BuiltInName = "builtin";

    /// <summary>
    /// "builtin" (or null/empty) => the built-in byte tokenizer; a folder => <see cref="QwenTokenizer.FromFolder"/>;
    /// a path to a tokenizer.json file => that file (plus tokenizer_config.json beside it when present).
    /// </summary>
    public static ITokenizer Load(string? dirOrBuiltin)
    {
        if (string.IsNullOrWhiteSpace(dirOrBuiltin) || string.Equals(dirOrBuiltin, BuiltInName, StringComparison.OrdinalIgnoreCase))
            return ByteLevelTokenizer.BuiltIn();
        if (Directory.Exists(dirOrBuiltin)) return QwenTokenizer.FromFolder(dirOrBuiltin);
        if (File.Exists(dirOrBuiltin) && dirOrBuiltin.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            var config = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(dirOrBuiltin))!, "tokenizer_config.json");
            return QwenTokenizer.FromFiles(dirOrBuiltin, File.Exists(config) ? config : null);
        }
        throw new UserInputException($"tokenizer '{dirOrBuiltin}' is neither \"{BuiltInName}\", a folder with tokenizer.json, nor a tokenizer.json file");
    }
}
