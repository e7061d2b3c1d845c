namespace Qwen35.Training.Recipes;

/// <summary>One thing wrong with a recipe: where (file and line, or the --set override), which key, and what.</summary>
public sealed record RecipeProblem(string Location, string Key, string Message)
{
    public override string ToString() => $"{Location}: {Key}: {Message}";
}

/// <summary>A recipe that cannot be used. Lists every problem found, not just the first.</summary>
public sealed class RecipeException(string source, IReadOnlyList<RecipeProblem> problems)
    : UserInputException(Format(source, problems))
{
    public IReadOnlyList<RecipeProblem> Problems { get; } = problems;

    static string Format(string source, IReadOnlyList<RecipeProblem> problems) =>
        problems.Count == 1
            ? $"invalid recipe {source}: {problems[0]}"
            : $"invalid recipe {source} ({problems.Count} problems):\n  " + string.Join("\n  ", problems);
}
