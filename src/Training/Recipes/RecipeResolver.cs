using System.Reflection;

namespace Qwen35.Training.Recipes;

/// <summary>
/// Finds a recipe by path or bare name. A bare name (<c>tiny</c>, <c>9b</c>) means <c>recipes/&lt;name&gt;.yaml</c> in
/// the first folder holding <c>recipes/</c>, walking up from the current directory and then from the program's own
/// directory, so <c>trainer --recipe tiny</c> works from anywhere inside a clone and from the build output.
/// <c>tiny</c> and <c>dpo-tiny</c> also fall back to the copies embedded in this assembly.
/// </summary>
public static class RecipeResolver
{
    /// <summary>The text and a display name of the recipe, plus the folder its relative input paths resolve against.</summary>
    public sealed record Resolved(string Source, string Text, string BaseDir);

    public static Resolved Resolve(string nameOrPath)
    {
        if (File.Exists(nameOrPath))
        {
            var full = Path.GetFullPath(nameOrPath);
            return new Resolved(nameOrPath, File.ReadAllText(full), BaseDirOf(full));
        }
        var looksLikeName = !nameOrPath.Contains('/') && !nameOrPath.Contains('\\');
        if (looksLikeName)
        {
            var file = nameOrPath.EndsWith(".yaml", StringComparison.Ordinal) || nameOrPath.EndsWith(".yml", StringComparison.Ordinal)
                ? nameOrPath : nameOrPath + ".yaml";
            foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
                for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
                {
                    var candidate = Path.Combine(dir.FullName, "recipes", file);
                    if (File.Exists(candidate)) return new Resolved(candidate, File.ReadAllText(candidate), dir.FullName);
                }
            if (file is "tiny.yaml" or "dpo-tiny.yaml" && ReadEmbedded(file) is { } text)
                return new Resolved($"builtin recipe {file[..^5]}", text, FindRepoLikeRoot() ?? Directory.GetCurrentDirectory());
        }
        throw new RecipeException(nameOrPath, [new RecipeProblem(nameOrPath, "--recipe",
            looksLikeName ? $"no file {nameOrPath} and no recipes/{nameOrPath}.yaml above {Directory.GetCurrentDirectory()} or {AppContext.BaseDirectory}"
                          : "recipe file not found")]);
    }

    /// <summary>A recipe under <c>X/recipes/</c> resolves relative inputs against <c>X</c>; any other against its own folder.</summary>
    static string BaseDirOf(string recipePath)
    {
        var dir = Path.GetDirectoryName(recipePath)!;
        return Path.GetFileName(dir) == "recipes" ? Path.GetDirectoryName(dir)! : dir;
    }

    static string? FindRepoLikeRoot()
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir != null; dir = dir.Parent)
            if (Directory.Exists(Path.Combine(dir.FullName, "data"))) return dir.FullName;
        return null;
    }

    static string? ReadEmbedded(string name)
    {
        var asm = Assembly.GetExecutingAssembly();
        var res = asm.GetManifestResourceNames().FirstOrDefault(n => n.EndsWith("recipes." + name, StringComparison.Ordinal));
        if (res == null) return null;
        using var s = asm.GetManifestResourceStream(res)!;
        return new StreamReader(s).ReadToEnd();
    }

    /// <summary>
    /// An input path from a recipe: absolute paths and paths that exist relative to the current directory are used
    /// as they are; otherwise the path is taken relative to the recipe's base folder. Globs are left to the reader.
    /// </summary>
    public static string InputPath(string path, string baseDir)
    {
        if (Path.IsPathRooted(path) || File.Exists(path) || Directory.Exists(path)) return path;
        var candidate = Path.Combine(baseDir, path);
        return File.Exists(candidate) || Directory.Exists(candidate) || path.Contains('*') ? candidate : path;
    }
}
