using System.Reflection;
using System.Text;

namespace Qwen35;

/// <summary>Other spellings a user may write for an enum value (e.g. <c>float32</c> for <c>fp32</c>).</summary>
[AttributeUsage(AttributeTargets.Field)]
public sealed class AliasAttribute(params string[] names) : Attribute
{
    public IReadOnlyList<string> Names { get; } = names;
}

/// <summary>
/// The one vocabulary of option values: an enum value is written in snake_case (<c>ShareGpt</c> → <c>share_gpt</c>,
/// <c>Bf16</c> → <c>bf16</c>), and also read from its <see cref="AliasAttribute"/> spellings, case-insensitively.
/// Recipes (YAML), command-line flags and reports all go through here, so <c>--dtype bfloat16</c> means the same in
/// every verb and in <c>precision: bfloat16</c>.
/// </summary>
public static class OptionNames
{
    /// <summary>snake_case of a C# identifier: <c>PromptCompletion</c> → <c>prompt_completion</c>.</summary>
    static string SnakeCase(string name)
    {
        var sb = new StringBuilder(name.Length + 4);
        for (var i = 0; i < name.Length; i++)
        {
            var c = name[i];
            if (char.IsUpper(c) && i > 0 && (char.IsLower(name[i - 1]) || (i + 1 < name.Length && char.IsLower(name[i + 1]) && char.IsUpper(name[i - 1]))))
                sb.Append('_');
            sb.Append(char.ToLowerInvariant(c));
        }
        return sb.ToString();
    }

    /// <summary>The canonical spelling of an enum value.</summary>
    public static string Name(Enum value) => SnakeCase(value.ToString());

    /// <summary>The canonical spellings of every value of <paramref name="type"/>, in declaration order.</summary>
    public static IReadOnlyList<string> Names(Type type) => Enum.GetValues(type).Cast<Enum>().Select(Name).ToArray();

    public static IReadOnlyList<string> Names<T>() where T : struct, Enum => Names(typeof(T));

    /// <summary>Reads a canonical name or an alias (any case); null when <paramref name="text"/> names no value.</summary>
    public static object? TryParse(Type type, string text)
    {
        var wanted = text.Trim();
        foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static))
        {
            var value = (Enum)field.GetValue(null)!;
            var spellings = new[] { Name(value) }.Concat(field.GetCustomAttribute<AliasAttribute>()?.Names ?? []);
            if (spellings.Any(s => string.Equals(s, wanted, StringComparison.OrdinalIgnoreCase))) return value;
        }
        return null;
    }

    /// <summary>Reads a value; throws <see cref="UserInputException"/> naming <paramref name="where"/> (a key or a flag)
    /// and the allowed spellings.</summary>
    public static T Parse<T>(string text, string where) where T : struct, Enum =>
        TryParse(typeof(T), text) is T value ? value : throw new UserInputException(NotOneOf(typeof(T), text, where));

    /// <summary>"where: 'text' is not one of a, b, c".</summary>
    public static string NotOneOf(Type type, string text, string where) =>
        $"{where}: '{text}' is not one of {string.Join(", ", Names(type))}";
}

/// <summary>One thing wrong with an option: its key (e.g. <c>lora.rank</c>) and what is wrong, in words.</summary>
public sealed record OptionProblem(string Key, string Message)
{
    public override string ToString() => $"{Key}: {Message}";

    /// <summary>The same problem under a section prefix (<c>rank</c> → <c>lora.rank</c>).</summary>
    public OptionProblem Under(string section) => this with { Key = section.Length == 0 ? Key : $"{section}.{Key}" };
}

/// <summary>Collects <see cref="OptionProblem"/>s in a record's Validate().</summary>
public sealed class OptionChecks
{
    readonly List<OptionProblem> _problems = [];

    public IReadOnlyList<OptionProblem> Problems => _problems;

    /// <summary>Adds <paramref name="message"/> for <paramref name="key"/> unless <paramref name="ok"/>.</summary>
    public OptionChecks Require(bool ok, string key, string message)
    {
        if (!ok) _problems.Add(new OptionProblem(key, message));
        return this;
    }

    public OptionChecks Add(IEnumerable<OptionProblem> problems, string section = "")
    {
        _problems.AddRange(problems.Select(p => p.Under(section)));
        return this;
    }

    /// <summary>Throws one <see cref="UserInputException"/> listing every problem (for options built in code).</summary>
    public static void ThrowIfAny(IEnumerable<OptionProblem> problems, string what)
    {
        var list = problems.ToList();
        if (list.Count > 0) throw new UserInputException($"{what}: {string.Join("; ", list)}");
    }
}
