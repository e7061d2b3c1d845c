using System.Text.RegularExpressions;

namespace Qwen35.Data;

/// <summary>Resolves a dataset path: one file, a folder (every .jsonl/.json/.parquet below it) or a glob (*, ?, **).</summary>
public static class DatasetFiles
{
    static readonly string[] Extensions = [".jsonl", ".json", ".parquet"];

    public static List<string> Resolve(string pathOrGlobOrFolder)
    {
        if (File.Exists(pathOrGlobOrFolder)) return [Path.GetFullPath(pathOrGlobOrFolder)];
        if (Directory.Exists(pathOrGlobOrFolder))
        {
            var files = Directory.EnumerateFiles(pathOrGlobOrFolder, "*", SearchOption.AllDirectories)
                .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                .Select(Path.GetFullPath).OrderBy(f => f, StringComparer.Ordinal).ToList();
            if (files.Count == 0) throw new UserInputException($"{pathOrGlobOrFolder}: folder holds no .jsonl, .json or .parquet file");
            return files;
        }
        if (pathOrGlobOrFolder.IndexOfAny(['*', '?']) < 0)
            throw new UserInputException($"{pathOrGlobOrFolder}: no such file or folder");

        // Base folder = the longest leading part without wildcards; the rest is matched against relative paths.
        var full = Path.GetFullPath(pathOrGlobOrFolder).Replace('\\', '/');
        var firstWild = full.IndexOfAny(['*', '?']);
        var baseDir = full[..(full.LastIndexOf('/', firstWild) + 1)];
        var pattern = full[baseDir.Length..];
        if (!Directory.Exists(baseDir)) throw new UserInputException($"{pathOrGlobOrFolder}: folder {baseDir} does not exist");
        var regex = new Regex("^" + GlobToRegex(pattern) + "$", RegexOptions.CultureInvariant);
        var matches = Directory.EnumerateFiles(baseDir, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetFullPath(f))
            .Where(f => regex.IsMatch(f.Replace('\\', '/')[baseDir.Length..]))
            .OrderBy(f => f, StringComparer.Ordinal).ToList();
        if (matches.Count == 0) throw new UserInputException($"{pathOrGlobOrFolder}: the pattern matches no file");
        return matches;
    }

    static string GlobToRegex(string glob)
    {
        var sb = new System.Text.StringBuilder();
        for (var i = 0; i < glob.Length; i++)
        {
            var c = glob[i];
            if (c == '*' && i + 1 < glob.Length && glob[i + 1] == '*')
            {
                i++;
                if (i + 1 < glob.Length && glob[i + 1] == '/') { i++; sb.Append("(?:.*/)?"); }
                else sb.Append(".*");
            }
            else if (c == '*') sb.Append("[^/]*");
            else if (c == '?') sb.Append("[^/]");
            else sb.Append(Regex.Escape(c.ToString()));
        }
        return sb.ToString();
    }
}
