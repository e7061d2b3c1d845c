using System.Collections;
using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;
using YamlDotNet.Serialization;
using YamlDotNet.Serialization.NamingConventions;

namespace Qwen35.Training.Recipes;

/// <summary>
/// Reads a recipe: YAML text → node tree → <c>--set</c> overrides applied to the tree → every key and value checked
/// against the <see cref="Recipe"/> records (collecting ALL problems, each with its line) → YamlDotNet deserialisation
/// (<see cref="RecipeYaml"/>) → each record's own range checks (<see cref="Recipe.Problems"/>). Checking the node tree ourselves, rather than letting YamlDotNet throw at the first unknown key,
/// is what lets one error message list every problem of a recipe.
/// </summary>
public static class RecipeLoader
{
    /// <summary>Loads and validates a recipe file with optional <c>key.sub=value</c> overrides.</summary>
    public static Recipe LoadFile(string path, IEnumerable<string>? overrides = null)
    {
        if (!File.Exists(path))
            throw new RecipeException(path, [new RecipeProblem(path, "(file)", "recipe file not found")]);
        return Parse(File.ReadAllText(path), path, overrides);
    }

    /// <summary>Parses and validates recipe text; <paramref name="source"/> names it in error messages.</summary>
    public static Recipe Parse(string yaml, string source, IEnumerable<string>? overrides = null)
    {
        var ctx = new Context(source);
        YamlMappingNode root;
        try
        {
            var stream = new YamlStream();
            stream.Load(new StringReader(yaml));
            root = stream.Documents.Count == 0 ? new YamlMappingNode()
                : stream.Documents[0].RootNode as YamlMappingNode
                  ?? throw new RecipeException(source, [new RecipeProblem($"{source} line {stream.Documents[0].RootNode.Start.Line}", "(document)", "a recipe must be a mapping of keys to values")]);
        }
        catch (YamlException e)
        {
            throw new RecipeException(source, [new RecipeProblem($"{source} line {SyntaxErrorLine(yaml, e.Start.Line, unclosedFlow: SyntaxMessage(e).Contains("flow", StringComparison.Ordinal))}", "(syntax)", SyntaxMessage(e))]);
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner throws this (not a YamlException) for some unterminated constructs, e.g. `[16`.
            throw new RecipeException(source, [new RecipeProblem($"{source} line {SyntaxErrorLine(yaml, 0, unclosedFlow: true)}", "(syntax)",
                "the YAML is not well-formed here (an unclosed [ or { or quote?)")]);
        }

        foreach (var o in overrides ?? []) ApplyOverride(root, o, ctx);
        CheckMapping(root, typeof(Recipe), "", ctx);
        if (ctx.Problems.Count > 0) throw new RecipeException(source, ctx.Problems);

        Recipe recipe;
        try
        {
            var text = new StringWriter();
            new YamlStream(new YamlDocument(root)).Save(text, assignAnchors: false);
            recipe = RecipeYaml.Deserializer().Deserialize<Recipe?>(text.ToString()) ?? new Recipe();
        }
        catch (YamlException e)
        {
            // Should not happen after CheckMapping, but if it does, still say where.
            throw new RecipeException(source, [new RecipeProblem($"{source} line {e.Start.Line}", "(value)", e.InnerException?.Message ?? e.Message)]);
        }

        foreach (var p in recipe.Problems())
            ctx.Add(ctx.Where(p.Key), p.Key, p.Message);
        if (ctx.Problems.Count > 0) throw new RecipeException(source, ctx.Problems);
        return recipe;
    }

    /// <summary>The snake_case key of a record property (a YamlMember alias wins).</summary>
    static string KeyOf(PropertyInfo p) => p.GetCustomAttribute<YamlMemberAttribute>()?.Alias ?? RecipeYaml.Naming.Apply(p.Name);

    /// <summary>
    /// Hash of everything that changes the training trajectory (not output_dir, logging/saving cadence, the export or the
    /// evaluations during training, which draw from their own generators), stored in
    /// checkpoints so a resume with a different recipe is noticed.
    /// </summary>
    public static string Hash(Recipe recipe)
    {
        var essential = recipe with { OutputDir = "", EvalEvery = 0, SaveEvery = 0, KeepLast = 0, LogEvery = 0, Export = new(), Eval = new() };
        var yaml = ToYaml(essential);
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(yaml)))[..16];
    }

    /// <summary>The recipe as snake_case YAML (every key, defaults included): what a run actually used.</summary>
    public static string ToYaml(Recipe recipe) => RecipeYaml.Serializer().Serialize(recipe);

    /// <summary>
    /// The 1-based line of a syntax error. YAML forbids tabs in indentation, and YamlDotNet reports that (and an
    /// unclosed flow collection) where its scanner gave up, which can be a line before the tab or the end of the
    /// file; so a line indented with a tab (always an error in YAML), else, for an unclosed flow collection, the first
    /// line with an unclosed bracket, else the reported line.
    /// </summary>
    static long SyntaxErrorLine(string yaml, long reported, bool unclosedFlow)
    {
        var lines = yaml.Split('\n');
        for (var i = 0; i < lines.Length; i++)
            if (lines[i].Length > lines[i].TrimStart().Length && lines[i][..(lines[i].Length - lines[i].TrimStart().Length)].Contains('\t'))
                return i + 1;
        for (var i = 0; unclosedFlow && i < lines.Length; i++)
        {
            var text = lines[i].Split('#')[0];
            if (text.Count(c => c == '[') > text.Count(c => c == ']') || text.Count(c => c == '{') > text.Count(c => c == '}'))
                return i + 1;
        }
        return Math.Max(1, Math.Min(reported, lines.Length));
    }

    /// <summary>YamlDotNet's message without its "(Line: 1, Col: 1, Idx: 0) - (…):" position prefix.</summary>
    static string SyntaxMessage(YamlException e)
    {
        var message = (e.InnerException?.Message ?? e.Message).Trim();
        var cut = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line:", StringComparison.Ordinal) && cut > 0 ? message[(cut + 3)..] : message;
    }

    // ---- --set overrides -------------------------------------------------------------------------------------

    static void ApplyOverride(YamlMappingNode root, string assignment, Context ctx)
    {
        var eq = assignment.IndexOf('=');
        if (eq <= 0)
        {
            ctx.Add($"--set {assignment}", assignment, "expected key.sub=value");
            return;
        }
        var path = assignment[..eq].Trim();
        var valueText = assignment[(eq + 1)..];
        YamlNode value;
        try
        {
            // Parse the value as YAML so `[q_proj, v_proj]` is a list and `'007'` stays a string.
            var s = new YamlStream();
            s.Load(new StringReader(valueText));
            value = s.Documents.Count == 0 ? new YamlScalarNode("") : s.Documents[0].RootNode;
        }
        catch (YamlException e)
        {
            ctx.Add($"--set {assignment}", path, "value is not valid YAML: " + (e.InnerException?.Message ?? e.Message));
            return;
        }

        var parts = path.Split('.');
        var node = root;
        for (var i = 0; i < parts.Length - 1; i++)
        {
            var key = new YamlScalarNode(parts[i]);
            if (node.Children.TryGetValue(key, out var child) && child is YamlMappingNode m) node = m;
            else
            {
                var created = new YamlMappingNode();
                node.Children[key] = created;
                node = created;
            }
        }
        node.Children[new YamlScalarNode(parts[^1])] = value;
        ctx.MarkOverride(value, assignment);
    }

    // ---- structural check of the node tree against the records ------------------------------------------------

    static void CheckMapping(YamlMappingNode mapping, Type type, string prefix, Context ctx)
    {
        var props = type.GetProperties(BindingFlags.Public | BindingFlags.Instance)
            .Where(p => p.CanWrite).ToDictionary(KeyOf);
        foreach (var (keyNode, valueNode) in mapping.Children.ToList())
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? keyNode.ToString();
            var path = prefix.Length == 0 ? key : $"{prefix}.{key}";
            if (!props.TryGetValue(key, out var prop))
            {
                var hint = Suggest(key, props.Keys);
                ctx.Add(ctx.Where(valueNode, keyNode), path,
                    "unknown key" + (hint == null ? "" : $" (did you mean '{hint}'?)") + $"; known keys here: {string.Join(", ", props.Keys)}");
                continue;
            }
            ctx.Remember(path, valueNode, keyNode);
            var checkedNode = CheckValue(valueNode, prop.PropertyType, path, ctx);
            if (!ReferenceEquals(checkedNode, valueNode)) mapping.Children[keyNode] = checkedNode;
        }
    }

    /// <summary>Checks one value against a CLR type; returns the node to keep (a lone scalar becomes a one-item list).</summary>
    static YamlNode CheckValue(YamlNode node, Type type, string path, Context ctx)
    {
        var underlying = Nullable.GetUnderlyingType(type);
        if (IsNull(node) && (underlying != null || !type.IsValueType)) return node;
        type = underlying ?? type;

        if (type == typeof(Qwen35.Lora.LoraTargets))
        {
            // One string (a name, all-linear or a regex) or a list of names.
            if (node is YamlScalarNode) return node;
            if (node is YamlSequenceNode names && names.Children.All(n => n is YamlScalarNode)) return node;
            ctx.Add(ctx.Where(node), path, "expected a list of module names, or one string (all-linear or a regular expression)");
            return node;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(List<>))
        {
            var item = type.GetGenericArguments()[0];
            if (node is YamlScalarNode scalar)
            {
                CheckScalar(scalar, item, path, ctx);
                var seq = new YamlSequenceNode(scalar);
                ctx.CopyOrigin(scalar, seq);
                return seq;
            }
            if (node is not YamlSequenceNode list)
            {
                ctx.Add(ctx.Where(node), path, $"expected a list of {Describe(item)}");
                return node;
            }
            for (var i = 0; i < list.Children.Count; i++)
                CheckValue(list.Children[i], item, $"{path}[{i}]", ctx);
            return node;
        }
        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(Dictionary<,>))
        {
            if (node is not YamlMappingNode map)
            {
                ctx.Add(ctx.Where(node), path, $"expected a mapping of name: {Describe(type.GetGenericArguments()[1])}");
                return node;
            }
            foreach (var (k, v) in map.Children)
                CheckValue(v, type.GetGenericArguments()[1], $"{path}.{(k as YamlScalarNode)?.Value}", ctx);
            return node;
        }
        if (type.IsClass && type != typeof(string))
        {
            if (node is YamlMappingNode section) CheckMapping(section, type, path, ctx);
            else ctx.Add(ctx.Where(node), path, "expected a section (a mapping of keys)");
            return node;
        }
        if (node is YamlScalarNode s) CheckScalar(s, type, path, ctx);
        else ctx.Add(ctx.Where(node), path, $"expected {Describe(type)}, found a {(node is YamlSequenceNode ? "list" : "mapping")}");
        return node;
    }

    static void CheckScalar(YamlScalarNode node, Type type, string path, Context ctx)
    {
        var v = node.Value ?? "";
        var inv = CultureInfo.InvariantCulture;
        var ok = type == typeof(string) ? true
            : type == typeof(int) ? int.TryParse(v, NumberStyles.Integer, inv, out _)
            : type == typeof(long) ? long.TryParse(v, NumberStyles.Integer, inv, out _)
            : type == typeof(double) ? double.TryParse(v, NumberStyles.Float, inv, out _)
            : type == typeof(bool) ? v is "true" or "false" or "True" or "False"
            : type.IsEnum ? OptionNames.TryParse(type, v) is not null
            : throw new NotSupportedException($"recipe property type {type}");
        if (!ok) ctx.Add(ctx.Where(node), path, type.IsEnum ? $"'{v}' is not one of {string.Join(", ", OptionNames.Names(type))}" : $"'{v}' is not {Describe(type)}");
    }

    static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain or ScalarStyle.Any } s && s.Value is null or "" or "~" or "null" or "Null" or "NULL";

    static string Describe(Type t) =>
        t == typeof(int) || t == typeof(long) ? "an integer"
        : t == typeof(double) ? "a number"
        : t == typeof(bool) ? "true or false"
        : "a string";

    /// <summary>The known key closest in edit distance, when it is close enough to be a likely typo.</summary>
    static string? Suggest(string key, IEnumerable<string> known)
    {
        var best = known.Select(k => (k, d: Levenshtein(key, k))).OrderBy(x => x.d).FirstOrDefault();
        return best.k != null && best.d <= Math.Max(2, key.Length / 3) ? best.k : null;
    }

    static int Levenshtein(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
            for (var j = 1; j <= b.Length; j++)
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
        return d[a.Length, b.Length];
    }

    /// <summary>Problems found so far, plus where each key and node came from (file line or --set).</summary>
    sealed class Context(string source)
    {
        public List<RecipeProblem> Problems { get; } = [];
        readonly Dictionary<YamlNode, string> _overrides = new(ReferenceEqualityComparer.Instance);
        readonly Dictionary<string, string> _keyLocations = [];

        public void Add(string location, string key, string message) => Problems.Add(new RecipeProblem(location, key, message));
        public void MarkOverride(YamlNode node, string assignment)
        {
            foreach (var n in node.AllNodes) _overrides[n] = $"--set {assignment}";
        }
        public void CopyOrigin(YamlNode from, YamlNode to)
        {
            if (_overrides.TryGetValue(from, out var o)) _overrides[to] = o;
        }
        public void Remember(string path, YamlNode value, YamlNode key) => _keyLocations[path] = Where(value, key);

        public string Where(YamlNode node, YamlNode? key = null) =>
            _overrides.TryGetValue(node, out var o) ? o : $"{source} line {(key ?? node).Start.Line}";

        /// <summary>Location of a key after deserialisation: its line, its --set, or "default" when the recipe omits it.</summary>
        public string Where(string path)
        {
            for (var p = path; p.Length > 0; p = p.Contains('.') ? p[..p.LastIndexOf('.')] : "")
                if (_keyLocations.TryGetValue(p, out var loc)) return loc;
            return $"{source} (default value)";
        }
    }
}
