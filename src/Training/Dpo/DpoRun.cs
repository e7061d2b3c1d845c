using Qwen35.Data;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Training.Recipes;
using Serilog;

namespace Qwen35.Training.Dpo;

/// <summary>
/// The DPO part of a training run's setup (<see cref="SftTrainer"/> calls it when <c>objective: dpo</c>): the
/// adapter to train (fresh, or a copy of <c>dpo.reference_adapter</c>), the preference data, and the reference
/// log-probs (from output_dir's cache on resume, else one pass, see <see cref="ReferenceLogps"/>).
/// </summary>
public sealed class DpoRun
{
    readonly string _fingerprint;

    DpoRun(DpoData data, DpoObjective objective, string fingerprint)
    {
        Data = data;
        Objective = objective;
        _fingerprint = fingerprint;
    }

    public DpoData Data { get; }
    public DpoObjective Objective { get; }

    /// <summary>The reference adapter's folder resolved against the recipe's folder, checked to exist; null = base
    /// model (or not a DPO run).</summary>
    public static string? ReferenceAdapterDir(Recipe r, string baseDir)
    {
        if (r.Objective != TrainingObjectiveKind.Dpo || r.Dpo.ReferenceAdapter is not { } raw) return null;
        var dir = RecipeResolver.InputPath(raw, baseDir);
        if (!File.Exists(Path.Combine(dir, PeftAdapter.WeightsFileName)))
            throw new UserInputException($"dpo.reference_adapter: '{raw}' is not a PEFT adapter folder (no {PeftAdapter.WeightsFileName} in {Path.GetFullPath(dir)})");
        return Path.GetFullPath(dir);
    }

    /// <summary>
    /// Attaches the adapter a run trains: for DPO with a reference adapter a copy of it (its own LoRA options,
    /// returned), else a fresh one from the recipe's <c>lora:</c> section. The model must not have an adapter yet.
    /// </summary>
    public static LoraOptions AttachAdapter(Recipe r, string baseDir, Qwen35ForCausalLM model, ILogger log)
    {
        if (ReferenceAdapterDir(r, baseDir) is not { } dir)
        {
            log.Information("{Report}", LoraInjector.Apply(model, r.Lora, r.Schedule.Seed).Format().TrimEnd());
            return r.Lora;
        }
        var loaded = LoraInjector.LoadAdapter(model, dir);
        log.Information("dpo: training a copy of the reference adapter {Dir} (its LoRA settings; the recipe's lora: section is not used): {Report}",
            dir, loaded.Report.Format().TrimEnd());
        foreach (var w in loaded.Warnings) log.Warning("adapter: {Warning}", w);
        return loaded.Options;
    }

    /// <summary>
    /// Loads the pairs and sets their reference log-probs: on resume from output_dir's cache when it matches this
    /// run, else computed now. Must run before any training step (and before a checkpoint's adapter is loaded): the
    /// adapter attached by <see cref="AttachAdapter"/> is then still the reference, or is switched off for the base.
    /// </summary>
    public static DpoRun Prepare(Recipe r, string baseDir, Qwen35ForCausalLM model, ITokenizer tokenizer, OutputMode mode, ILogger log)
    {
        var data = DpoData.Load(r.Data, r.Dpo, r.Schedule.MicroBatchSize, r.Schedule.Seed, baseDir, tokenizer, log);
        var referenceDir = ReferenceAdapterDir(r, baseDir);
        var fingerprint = ReferenceLogps.Fingerprint(r.Model, r.Schedule.Seed, referenceDir, OptionNames.Name(r.Precision), model.Device.type.ToString());
        var cache = Path.Combine(r.OutputDir, ReferenceLogps.FileName);
        string? why = null;
        var cached = mode == OutputMode.Resume ? ReferenceLogps.TryLoad(cache, fingerprint, data.All, out why) : null;
        if (cached is { } c)
        {
            log.Information("dpo: reference log-probs of {Pairs} pairs reused from {Path}", data.All.Count, cache);
            data.SetReference(c.Chosen, c.Rejected);
        }
        else
        {
            if (mode == OutputMode.Resume)
                log.Warning("dpo: recomputing the reference log-probs: {Why}", why ?? $"{cache} is missing");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var (chosen, rejected) = ReferenceLogps.Compute(model, data, baseModel: referenceDir is null);
            data.SetReference(chosen, rejected);
            log.Information("dpo: reference log-probs of {Pairs} pairs ({Reference}) in {Seconds:F1} s", data.All.Count,
                referenceDir ?? "base model, adapter off", clock.Elapsed.TotalSeconds);
        }
        return new DpoRun(data, new DpoObjective(r.Dpo), fingerprint);
    }

    /// <summary>Writes the reference cache into output_dir (once it exists).</summary>
    public void SaveCache(string outputDir)
    {
        var (chosen, rejected) = Data.Reference;
        ReferenceLogps.Save(Path.Combine(outputDir, ReferenceLogps.FileName), _fingerprint, Data.All, chosen, rejected);
    }
}
