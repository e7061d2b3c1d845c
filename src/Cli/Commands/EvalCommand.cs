using System.CommandLine;
using System.Text.Json;
using Qwen35.Data;
using Qwen35.Training;
using Qwen35.Training.Dpo;

namespace Qwen35.Cli.Commands;

/// <summary>`trainer eval --model DIR|builtin:tiny [--adapter DIR] --data PATH [--json]`: mean loss overall and per
/// category. The data flags are <see cref="DataOptions"/>' keys, so eval masks and truncates exactly like training.
/// With <c>--objective dpo</c> the data are preference pairs and the result is the DPO loss and TRL's reward and
/// log-prob metrics (means over pairs), overall and per category (docs/dpo.md).</summary>
public static class EvalCommand
{
    public static Command Build()
    {
        var session = new SessionFlags();
        var data = new Option<string>("--data") { Description = "JSONL/Parquet file, folder or glob to evaluate on", Required = true };
        var format = new Option<string>("--format")
        {
            Description = $"Row format: {string.Join(", ", OptionNames.Names<RowFormat>())}",
            DefaultValueFactory = _ => OptionNames.Name(RowFormat.Auto),
        };
        var defaults = new DataOptions();
        var maxLength = new Option<int>("--max-length") { Description = "Longest example in tokens (longer ones are truncated)", DefaultValueFactory = _ => defaults.MaxLength };
        var thinkBlock = new Option<bool>("--train-think-block") { Description = "Count the <think> block's tokens too (data.train_think_block)" };
        var batch = new Option<int>("--batch-size") { Description = "Rows per forward pass", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object" };
        var dpoDefaults = new DpoOptions();
        var objective = new Option<string>("--objective")
        {
            Description = $"What to measure: {string.Join(", ", OptionNames.Names<TrainingObjectiveKind>())} (dpo: --data holds preference pairs)",
            DefaultValueFactory = _ => OptionNames.Name(TrainingObjectiveKind.Sft),
        };
        var beta = new Option<double>("--beta") { Description = "DPO beta (--objective dpo)", DefaultValueFactory = _ => dpoDefaults.Beta };
        var lossType = new Option<string>("--loss-type")
        {
            Description = $"DPO loss: {string.Join(", ", OptionNames.Names<DpoLossType>())} (--objective dpo)",
            DefaultValueFactory = _ => OptionNames.Name(dpoDefaults.LossType),
        };
        var referenceAdapter = new Option<string?>("--reference-adapter")
        {
            Description = "PEFT adapter that is the DPO reference (default: the base model, adapter off)",
        };
        var cmd = new Command("eval", "Mean token loss of a model (+ adapter) on a dataset, overall and per category")
        {
            data, format, maxLength, thinkBlock, batch, json, objective, beta, lossType, referenceAdapter,
        };
        session.AddTo(cmd);
        cmd.SetAction(pr => CliErrors.Run("eval", pr.InvocationConfiguration.Error, () =>
        {
            var stdout = pr.InvocationConfiguration.Output;
            using var log = CliLog.For("eval", pr.InvocationConfiguration.Error);
            var dataOptions = defaults with
            {
                Train = [pr.GetValue(data)!],
                Format = OptionNames.Parse<RowFormat>(pr.GetValue(format)!, "--format"),
                MaxLength = pr.GetValue(maxLength),
                TrainThinkBlock = pr.GetValue(thinkBlock),
            };
            if (OptionNames.Parse<TrainingObjectiveKind>(pr.GetValue(objective)!, "--objective") == TrainingObjectiveKind.Dpo)
            {
                var dpo = dpoDefaults with
                {
                    Beta = pr.GetValue(beta),
                    LossType = OptionNames.Parse<DpoLossType>(pr.GetValue(lossType)!, "--loss-type"),
                    ReferenceAdapter = pr.GetValue(referenceAdapter),
                };
                WriteDpo(stdout, Evaluation.RunDpo(session.Read(pr), dataOptions, dpo, pr.GetValue(batch), log), pr.GetValue(json));
                return CliErrors.Ok;
            }
            if (pr.GetValue(referenceAdapter) is not null)
                throw new UserInputException("--reference-adapter: applies to --objective dpo only");
            var report = Evaluation.Run(session.Read(pr), dataOptions, pr.GetValue(batch), log);
            var r = report.Result;
            if (!double.IsFinite(r.Loss))
                throw new InvalidOperationException($"the eval loss is {r.Loss}: the model's outputs are not finite");
            if (pr.GetValue(json))
                stdout.WriteLine(JsonSerializer.Serialize(new { loss = r.Loss, tokens = r.Tokens, examples = report.Examples, by_category = r.ByCategory }));
            else
            {
                stdout.WriteLine($"loss\t{r.Loss:F4}\t{r.Tokens} tokens\t{report.Examples} examples");
                foreach (var (c, v) in r.ByCategory) stdout.WriteLine($"{c}\t{v:F4}");
            }
            return CliErrors.Ok;
        }));
        return cmd;
    }

    /// <summary>The DPO result: loss and TRL's metrics (means over pairs), the pair count, and the same per category.</summary>
    static void WriteDpo(TextWriter stdout, Evaluation.Report report, bool json)
    {
        var r = report.Result;
        if (!double.IsFinite(r.Loss))
            throw new InvalidOperationException($"the DPO eval loss is {r.Loss}: the model's outputs are not finite");
        var overall = new Dictionary<string, object> { ["loss"] = r.Loss };
        foreach (var (k, v) in r.Metrics!) overall[k] = v;
        overall["pairs"] = report.Examples;
        overall["by_category"] = r.MetricsByCategory!;
        if (json)
        {
            stdout.WriteLine(JsonSerializer.Serialize(overall));
            return;
        }
        stdout.WriteLine($"pairs\t{report.Examples}");
        foreach (var (k, v) in r.Metrics!.Prepend(new("loss", r.Loss))) stdout.WriteLine($"{k}\t{v:F4}");
        foreach (var (c, m) in r.MetricsByCategory!)
            stdout.WriteLine($"{c}\t{string.Join("\t", m.Select(kv => $"{kv.Key} {kv.Value:F4}"))}");
    }
}
