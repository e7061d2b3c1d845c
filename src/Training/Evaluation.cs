using Qwen35.Data;
using Qwen35.Lora;
using Qwen35.Training.Data;
using Qwen35.Training.Loop;
using Qwen35.Training.Recipes;
using Serilog;

namespace Qwen35.Training;

/// <summary>Loss of a model (optionally with a LoRA adapter) on a dataset: the `trainer eval` verb.</summary>
public static class Evaluation
{
    public sealed record Options
    {
        public required string Model { get; init; }
        public string? Adapter { get; init; }
        public required string Data { get; init; }
        public string? Tokenizer { get; init; }
        public string Format { get; init; } = "auto";
        public int MaxLength { get; init; } = 2048;
        public int BatchSize { get; init; } = 4;
        public string Device { get; init; } = "cpu";
        public string Precision { get; init; } = "fp32";
        public bool TrainThinkBlock { get; init; }
        public string OnBadRow { get; init; } = "fail";
    }

    public sealed record Report(EvalResult Result, int Examples, IReadOnlyList<string> Categories);

    /// <summary>Token-mean loss over the trained tokens of every example, overall and per category, with the same
    /// masking and length policy as training.</summary>
    public static Report Run(Options o, ILogger log)
    {
        // A recipe carries the data options, so eval masks and truncates exactly like training would.
        var recipe = new Recipe
        {
            Model = o.Model,
            Tokenizer = o.Tokenizer,
            Device = o.Device,
            Precision = o.Precision,
            Data = new DataSection { Train = [o.Data], Format = o.Format, MaxLength = o.MaxLength, TrainThinkBlock = o.TrainThinkBlock, OnBadRow = o.OnBadRow },
            Schedule = new ScheduleSection { MicroBatchSize = o.BatchSize },
        };
        var problems = RecipeValidator.Validate(recipe).ToList();
        if (problems.Count > 0)
            throw new ArgumentException(string.Join("; ", problems.Select(p => $"{p.Key}: {p.Message}")));
        var device = ModelSetup.ResolveDevice(o.Device);
        var dtype = ModelSetup.ResolveDtype(o.Precision);
        var cwd = Directory.GetCurrentDirectory();
        using var model = ModelSetup.LoadModel(o.Model, cwd, dtype, device, recipe.Schedule.Seed, log);
        if (o.Adapter is not null)
        {
            var loaded = LoraInjector.LoadAdapter(model, o.Adapter);
            log.Information("{Report}", loaded.Report.Format().TrimEnd());
            foreach (var w in loaded.Warnings) log.Warning("adapter: {Warning}", w);
        }
        var tokenizerName = o.Tokenizer ?? (o.Model == ModelSetup.BuiltinTiny ? TokenizerLoader.BuiltInName : o.Model);
        var tokenizer = TokenizerLoader.Load(tokenizerName);
        var data = SftData.Load(recipe, cwd, tokenizer, log, evalOnly: true);
        if (data.EvalBatches.Count == 0) throw new InvalidDataException($"{o.Data}: no example with a trained token to evaluate");
        var result = TrainLoop.Evaluate(model, data.EvalBatches, data.Categories);
        return new Report(result, data.EvalExamples, data.Categories);
    }
}
