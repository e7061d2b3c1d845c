using System.CommandLine;
using System.Text.Json;
using Qwen35.Data;
using Qwen35.Training;

namespace Qwen35.Cli.Commands;

/// <summary>`trainer eval --model DIR|builtin:tiny [--adapter DIR] --data PATH [--json]`: mean loss overall and per
/// category. The data flags are <see cref="DataOptions"/>' keys, so eval masks and truncates exactly like training.</summary>
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
        var cmd = new Command("eval", "Mean token loss of a model (+ adapter) on a dataset, overall and per category")
        {
            data, format, maxLength, thinkBlock, batch, json,
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
}
