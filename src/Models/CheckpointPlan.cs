using Qwen35.Models.Config;
using Qwen35.Models.SafeTensors;

namespace Qwen35.Models;

/// <summary>
/// How a Hugging Face Qwen3.5 folder's tensors map onto <see cref="Qwen35ForCausalLM"/> parameters, worked out from
/// config.json and the safetensors headers only (no tensor data is read, nothing is allocated). Used by
/// <see cref="Qwen35ForCausalLM.FromPretrained"/> (which refuses a plan with a <see cref="Problem"/>) and by the
/// inspect verb (which reports it).
/// </summary>
public sealed class CheckpointPlan : IDisposable
{
    /// <summary>Key prefixes present in published checkpoints that a text-only model skips (and counts).</summary>
    public static readonly IReadOnlyList<string> SkippedPrefixes = ["model.visual.", "mtp."];

    CheckpointPlan(string configPath, Qwen35TextConfig config, SafeTensorsCheckpoint checkpoint)
    {
        ConfigPath = configPath;
        Config = config;
        Checkpoint = checkpoint;
    }

    public string ConfigPath { get; }

    /// <summary>The config to build; tie_word_embeddings is cleared when a tied config ships an lm_head tensor.</summary>
    public Qwen35TextConfig Config { get; private set; }

    public SafeTensorsCheckpoint Checkpoint { get; }

    /// <summary>Parameter name → checkpoint tensor name, for every tensor that loads.</summary>
    public IReadOnlyDictionary<string, string> Mapping { get; private set; } = new Dictionary<string, string>();

    /// <summary>Skipped tensors by prefix (model.visual., mtp.).</summary>
    public IReadOnlyDictionary<string, int> Skipped { get; private set; } = new Dictionary<string, int>();

    /// <summary>"wrapper" (model.language_model.*) or "flat" (model.layers.* text-only export).</summary>
    public string Layout { get; private set; } = "wrapper";

    /// <summary>Missing / unexpected / mis-shaped keys (sorted, named with the checkpoint path), or null when the
    /// checkpoint matches the config exactly.</summary>
    public string? Problem { get; private set; }

    public static CheckpointPlan Open(string dir)
    {
        var configPath = Path.Combine(dir, "config.json");
        var config = Qwen35TextConfig.Load(configPath);
        var checkpoint = SafeTensorsCheckpoint.Open(dir);
        var plan = new CheckpointPlan(configPath, config, checkpoint);
        try
        {
            plan.Build();
            return plan;
        }
        catch
        {
            plan.Dispose();
            throw;
        }
    }

    void Build()
    {
        var skipped = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var mapping = new Dictionary<string, string>(StringComparer.Ordinal);
        var unexpected = new List<string>();
        bool sawWrapper = false, sawFlat = false;
        foreach (var name in Checkpoint.Names)
        {
            var skip = SkippedPrefixes.FirstOrDefault(p => name.StartsWith(p, StringComparison.Ordinal));
            if (skip is not null)
            {
                skipped[skip] = skipped.GetValueOrDefault(skip) + 1;
                continue;
            }
            string target;
            if (name.StartsWith(ParameterManifest.TextPrefix, StringComparison.Ordinal) || name == "lm_head.weight")
            {
                target = name;
                sawWrapper |= name != "lm_head.weight";
            }
            else if (name.StartsWith("model.", StringComparison.Ordinal))
            {
                // Flat text-only export (HF Qwen3_5ForCausalLM names): model.X -> model.language_model.X.
                target = ParameterManifest.TextPrefix + name["model.".Length..];
                sawFlat = true;
            }
            else
            {
                unexpected.Add(name);
                continue;
            }
            if (!mapping.TryAdd(target, name))
                throw new UserInputException(
                    $"{Checkpoint.Source}: both '{mapping[target]}' and '{name}' map to parameter '{target}' (mixed wrapper and flat layouts)");
        }

        // A tied config with an lm_head tensor present: like HF (which does not tie when both exist) keep the stored
        // head rather than drop weights.
        if (Config.TieWordEmbeddings && mapping.ContainsKey("lm_head.weight"))
            Config = Config with { TieWordEmbeddings = false };

        var expected = ParameterManifest.For(Config).ToDictionary(e => e.Name, StringComparer.Ordinal);
        unexpected.AddRange(mapping.Where(kv => !expected.ContainsKey(kv.Key)).Select(kv => kv.Value));
        var missing = expected.Keys.Where(k => !mapping.ContainsKey(k)).ToList();
        var misShaped = mapping.Where(kv => expected.ContainsKey(kv.Key))
            .Select(kv => (kv.Value, Want: expected[kv.Key].Shape, Got: Checkpoint.Info(kv.Value).Shape))
            .Where(x => !x.Want.SequenceEqual(x.Got))
            .Select(x => $"{x.Value} has shape {Shapes.Format(x.Got)}, expected {Shapes.Format(x.Want)}")
            .ToList();
        foreach (var name in unexpected) mapping.Remove(ReverseLookup(mapping, name) ?? "");

        Mapping = mapping;
        Skipped = skipped;
        Layout = sawFlat && !sawWrapper ? "flat" : "wrapper";
        if (unexpected.Count + missing.Count + misShaped.Count > 0)
            Problem = DescribeMismatch(missing, unexpected, misShaped);
    }

    static string? ReverseLookup(Dictionary<string, string> mapping, string source) =>
        mapping.FirstOrDefault(kv => kv.Value == source).Key;

    string DescribeMismatch(List<string> missing, List<string> unexpected, List<string> misShaped)
    {
        static string List(string what, List<string> items)
        {
            items.Sort(StringComparer.Ordinal);
            const int shown = 20;
            var more = items.Count > shown ? $" … and {items.Count - shown} more" : "";
            return $"{items.Count} {what}: {string.Join("; ", items.Take(shown))}{more}";
        }
        var parts = new List<string>();
        if (missing.Count > 0) parts.Add(List("missing key(s)", missing));
        if (unexpected.Count > 0) parts.Add(List("unexpected key(s)", unexpected));
        if (misShaped.Count > 0) parts.Add(List("shape mismatch(es)", misShaped));
        return $"{Checkpoint.Source} does not match the model described by {ConfigPath}: {string.Join(". ", parts)}";
    }

    public void Dispose() => Checkpoint.Dispose();
}
