namespace Qwen35.Training.Recipes;

/// <summary>Value checks that YAML typing cannot express: ranges, allowed words, required keys.</summary>
public static class RecipeValidator
{
    /// <summary>data.format values: the dataset reader's RowFormat names in snake_case.</summary>
    public static readonly string[] FormatNames =
        Enum.GetNames<Qwen35.Data.RowFormat>().Select(n => YamlDotNet.Serialization.NamingConventions.UnderscoredNamingConvention.Instance.Apply(n)).ToArray();

    /// <summary>The RowFormat named by a data.format value.</summary>
    public static Qwen35.Data.RowFormat ParseFormat(string name) =>
        Enum.GetValues<Qwen35.Data.RowFormat>().First(f => YamlDotNet.Serialization.NamingConventions.UnderscoredNamingConvention.Instance.Apply(f.ToString()) == name);

    /// <summary>Every problem as (key path, message); empty when the recipe is usable.</summary>
    public static IEnumerable<(string Key, string Message)> Validate(Recipe r)
    {
        static IEnumerable<(string, string)> OneOf(string key, string value, params string[] allowed) =>
            allowed.Contains(value) ? [] : [(key, $"'{value}' is not one of {string.Join(", ", allowed)}")];

        var problems = new List<(string, string)>();
        void Check(bool ok, string key, string message)
        {
            if (!ok) problems.Add((key, message));
        }

        Check(!string.IsNullOrWhiteSpace(r.Model), "model", "must name a model folder or builtin:tiny");
        problems.AddRange(OneOf("precision", r.Precision, "fp32", "bf16"));
        problems.AddRange(OneOf("device", r.Device, "cpu", "cuda"));
        Check(r.EvalEvery >= 0, "eval_every", "must be >= 0");
        Check(r.SaveEvery >= 0, "save_every", "must be >= 0");
        Check(r.KeepLast >= 1, "keep_last", "must be >= 1");
        Check(r.LogEvery >= 1, "log_every", "must be >= 1");
        Check(!string.IsNullOrWhiteSpace(r.OutputDir), "output_dir", "must not be empty");
        Check(r.CpuThreads >= 0, "cpu_threads", "must be >= 0 (0 = libtorch default)");

        var l = r.Lora;
        Check(l.Rank >= 1, "lora.rank", "must be >= 1");
        Check(l.Alpha > 0, "lora.alpha", "must be > 0");
        Check(l.Dropout is >= 0 and < 1, "lora.dropout", "must be in [0, 1)");
        problems.AddRange(OneOf("lora.compute_dtype", l.ComputeDtype, "fp32", "model"));
        Check(l.TargetModules.Count > 0, "lora.target_modules", "must name at least one module");
        Check(l.LayersToTransform?.All(i => i >= 0) ?? true, "lora.layers_to_transform", "layer indices must be >= 0");
        Check(l.RankPattern?.Values.All(v => v >= 1) ?? true, "lora.rank_pattern", "ranks must be >= 1");
        Check(l.AlphaPattern?.Values.All(v => v > 0) ?? true, "lora.alpha_pattern", "alphas must be > 0");

        var d = r.Data;
        Check(d.Train.Count > 0, "data.train", "name at least one training file, glob or folder");
        Check(d.EvalSplit is >= 0 and < 1, "data.eval_split", "must be in [0, 1)");
        Check(d.MaxLength >= 2, "data.max_length", "must be >= 2");
        Check(d.PackLength is null or >= 2, "data.pack_length", "must be >= 2");
        Check(!(d.PackLength < d.MaxLength && d.Packing), "data.pack_length", "must be >= data.max_length so every example fits in a row");
        problems.AddRange(OneOf("data.truncation", d.Truncation, "truncate", "drop"));
        problems.AddRange(OneOf("data.on_bad_row", d.OnBadRow, "fail", "skip"));
        problems.AddRange(OneOf("data.assistant_turns", d.AssistantTurns, "all", "last"));
        problems.AddRange(OneOf("data.seam_rule", d.SeamRule, "within", "overlap"));
        problems.AddRange(OneOf("data.format", d.Format, FormatNames));
        Check(d.CategoryWeights?.Values.All(w => w >= 0 && double.IsFinite(w)) ?? true, "data.category_weights", "weights must be finite and >= 0");

        var s = r.Schedule;
        Check(s.Epochs >= 1, "schedule.epochs", "must be >= 1");
        Check(s.MaxSteps is null or >= 1, "schedule.max_steps", "must be >= 1");
        Check(s.MicroBatchSize >= 1, "schedule.micro_batch_size", "must be >= 1");
        Check(s.GradAccum >= 1, "schedule.grad_accum", "must be >= 1");
        Check(s.LearningRate > 0 && double.IsFinite(s.LearningRate), "schedule.learning_rate", "must be > 0");
        Check(s.WarmupSteps is null or >= 0, "schedule.warmup_steps", "must be >= 0");
        Check(s.WarmupRatio is >= 0 and < 1, "schedule.warmup_ratio", "must be in [0, 1)");
        problems.AddRange(OneOf("schedule.lr_scheduler", s.LrScheduler, "cosine", "linear", "constant"));
        Check(s.MinLrRatio is >= 0 and <= 1, "schedule.min_lr_ratio", "must be in [0, 1]");
        Check(s.WeightDecay >= 0, "schedule.weight_decay", "must be >= 0");
        Check(s.Beta1 is >= 0 and < 1, "schedule.beta1", "must be in [0, 1)");
        Check(s.Beta2 is >= 0 and < 1, "schedule.beta2", "must be in [0, 1)");
        Check(s.Eps > 0, "schedule.eps", "must be > 0");
        Check(s.MaxGradNorm >= 0, "schedule.max_grad_norm", "must be >= 0 (0 = no clipping)");
        Check(s.MaxNonfiniteSteps >= 1, "schedule.max_nonfinite_steps", "must be >= 1");
        return problems;
    }
}
