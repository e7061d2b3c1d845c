using System.CommandLine;
using System.Text.Json;
using Qwen35.Training;
using Qwen35.Training.Observability;
using Serilog.Events;

namespace Qwen35.Cli.Commands;

/// <summary>`trainer eval --model DIR|builtin:tiny [--adapter DIR] --data PATH [--json]`: mean loss overall and per category.</summary>
public static class EvalCommand
{
    public static Command Build()
    {
        var model = new Option<string>("--model") { Description = "Model folder (config.json + safetensors) or builtin:tiny", Required = true };
        var adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder to apply (optional)" };
        var data = new Option<string>("--data") { Description = "JSONL/Parquet file, folder or glob to evaluate on", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder or 'builtin' (default: the model folder; builtin for builtin:tiny)" };
        var format = new Option<string>("--format") { Description = "Row format (auto, messages, share_gpt, prompt_completion, text_output, alpaca, prefix_text, question_answer_turns)", DefaultValueFactory = _ => "auto" };
        var maxLength = new Option<int>("--max-length") { Description = "Longest example in tokens (longer ones are truncated)", DefaultValueFactory = _ => 2048 };
        var batch = new Option<int>("--batch-size") { Description = "Rows per forward pass", DefaultValueFactory = _ => 4 };
        var device = new Option<string>("--device") { Description = "cpu or cuda", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "fp32 or bf16 (base weights)", DefaultValueFactory = _ => "fp32" };
        var json = new Option<bool>("--json") { Description = "Print the result as one JSON object" };
        var cmd = new Command("eval", "Mean token loss of a model (+ adapter) on a dataset, overall and per category")
        {
            model, adapter, data, tokenizer, format, maxLength, batch, device, dtype, json,
        };
        cmd.SetAction(pr =>
        {
            try
            {
                using var log = TrainLogging.Create(null, LogEventLevel.Information);
                var report = Evaluation.Run(new Evaluation.Options
                {
                    Model = pr.GetValue(model)!, Adapter = pr.GetValue(adapter), Data = pr.GetValue(data)!,
                    Tokenizer = pr.GetValue(tokenizer), Format = pr.GetValue(format)!, MaxLength = pr.GetValue(maxLength),
                    BatchSize = pr.GetValue(batch), Device = pr.GetValue(device)!, Precision = pr.GetValue(dtype)!,
                }, log);
                var r = report.Result;
                if (pr.GetValue(json))
                    Console.WriteLine(JsonSerializer.Serialize(new { loss = r.Loss, tokens = r.Tokens, examples = report.Examples, by_category = r.ByCategory }));
                else
                {
                    Console.WriteLine($"loss\t{r.Loss:F4}\t{r.Tokens} tokens\t{report.Examples} examples");
                    foreach (var (c, v) in r.ByCategory) Console.WriteLine($"{c}\t{v:F4}");
                }
                return 0;
            }
            catch (Exception e)
            {
                return TrainErrors.Report(e);
            }
        });
        return cmd;
    }
}
