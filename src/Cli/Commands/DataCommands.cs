using System.CommandLine;
using Qwen35.Data;
using Qwen35.Data.Preference;
using Qwen35.Training;
using Qwen35.Training.Recipes;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer data ...</c>: inspect a dataset, preview rendered samples with their loss mask, convert between
/// layouts/formats (JSONL to Parquet for the bundled sample), and benchmark a tokenizer.
/// </summary>
static class DataCommands
{
    public static Command Build()
    {
        var data = new Command("data", "Dataset tools: inspect, preview, convert, bench-tokenizer.");
        data.Subcommands.Add(Inspect());
        data.Subcommands.Add(Preview());
        data.Subcommands.Add(Convert());
        data.Subcommands.Add(BenchTokenizer());
        return data;
    }

    static Option<string> DataOption(bool required = true) =>
        new("--data") { Description = "Dataset: a .jsonl/.json/.parquet file, a folder, or a glob (quote it).", Required = required };

    static Option<string> TokenizerOption(string description = "\"builtin\" or a folder with tokenizer.json (+ tokenizer_config.json).") =>
        new("--tokenizer") { Description = description };

    static Command Inspect()
    {
        var dataOpt = DataOption();
        var tokOpt = TokenizerOption("Also tokenize (\"builtin\" or a tokenizer folder) and report token lengths.");
        var jsonOpt = new Option<bool>("--json") { Description = "Print one JSON object instead of the text report." };
        var maxLenOpt = new Option<int>("--max-length") { Description = "Length used to count truncations.", DefaultValueFactory = _ => int.MaxValue };
        var formatOpt = new Option<string>("--format") { Description = "sft (conversations) or preference (DPO pairs: prompt/chosen/rejected).", DefaultValueFactory = _ => "sft" };
        formatOpt.AcceptOnlyFromAmong("sft", "preference");
        var cmd = new Command("inspect", "Rows, row groups, per-category counts, token-length histogram, bad rows and rows training would drop. Exit 2 when some rows are bad or no row is usable.")
        {
            dataOpt, tokOpt, jsonOpt, maxLenOpt, formatOpt,
        };
        cmd.SetAction(pr => CliErrors.Run("data", Console.Error, () =>
        {
            var tokenizer = pr.GetValue(tokOpt) is { } t ? TokenizerLoader.Load(t) : null;
            var data = pr.GetValue(dataOpt)!;
            if (pr.GetValue(formatOpt) == "preference") return InspectPreference(data, tokenizer, pr.GetValue(maxLenOpt), pr.GetValue(jsonOpt));
            var inspection = DatasetInspector.Inspect(data, tokenizer, maxLength: pr.GetValue(maxLenOpt));
            Console.Out.Write(pr.GetValue(jsonOpt) ? inspection.ToJsonString() + "\n" : inspection.ToText());
            if (inspection.Usable == 0)
            {
                // Training would stop with nothing to train on; say so here rather than exit 0.
                Console.Error.WriteLine($"data: error: {data}: no usable row (rows {inspection.Read.TotalRows}, bad {inspection.Read.ErrorCount}, dropped by training {inspection.DroppedCount})");
                return CliErrors.BadInput;
            }
            return inspection.Read.ErrorCount > 0 ? CliErrors.BadInput : CliErrors.Ok;
        }));
        return cmd;
    }

    /// <summary>Preference pairs: bad rows (and, with a tokenizer, pairs max_length drops) make the exit 2.</summary>
    static int InspectPreference(string data, ITokenizer? tokenizer, int maxLength, bool json)
    {
        var inspection = PreferenceInspector.Inspect(data, tokenizer, maxLength: maxLength);
        var shownLength = maxLength == int.MaxValue ? (int?)null : maxLength;
        Console.Out.Write(json ? inspection.ToJsonString(shownLength) + "\n" : inspection.ToText());
        if (inspection.Usable == 0)
        {
            Console.Error.WriteLine($"data: error: {data}: no usable pair (rows {inspection.Read.TotalRows}, bad {inspection.Read.ErrorCount}, dropped by max_length {inspection.Tokens?.Dropped ?? 0})");
            return CliErrors.BadInput;
        }
        return inspection.Problems > 0 ? CliErrors.BadInput : CliErrors.Ok;
    }

    static Command Preview()
    {
        var recipeOpt = new Option<string>("--recipe") { Description = "Training recipe (file or bare name in recipes/): data.train, tokenizer/model and the data mask keys." };
        var dataOpt = DataOption(required: false);
        var tokOpt = TokenizerOption();
        var nOpt = new Option<int>("--n") { Description = "Number of conversations to show (at least 1).", DefaultValueFactory = _ => 3 };
        var thinkOpt = new Option<bool>("--train-think-block") { Description = "Train the <think> block of assistant turns after the last user query." };
        var lastOpt = new Option<bool>("--last-assistant-only") { Description = "Train only the last assistant turn by default." };
        var overlapOpt = new Option<bool>("--seam-overlap") { Description = "Train tokens that straddle a trained/untrained seam (default: only tokens entirely trained)." };
        var refusalOpt = new Option<string>("--rto-refusal") { Description = "Refusal string whose first token RTO spans target.", DefaultValueFactory = _ => new MaskOptions().RtoRefusal };
        var colorOpt = new Option<bool>("--color") { Description = "Highlight with ANSI colours (green trained, magenta RTO) instead of [[...]] / {{rto:...}}." };
        var cmd = new Command("preview", "Rendered samples with the trained tokens marked: [[trained]], {{rto:...}}, the rest is context.")
        {
            recipeOpt, dataOpt, tokOpt, nOpt, thinkOpt, lastOpt, overlapOpt, refusalOpt, colorOpt,
        };
        cmd.SetAction(pr => CliErrors.Run("data", Console.Error, () =>
        {
            if (pr.GetValue(nOpt) is var n and < 1) throw new UserInputException($"--n must be at least 1 (got {n})");
            var data = pr.GetValue(dataOpt);
            var tokenizer = pr.GetValue(tokOpt);
            if (pr.GetValue(recipeOpt) is { } recipeName)
            {
                // The recipe supplies data path, tokenizer and mask options; --data/--tokenizer still override.
                Recipe recipe;
                RecipeResolver.Resolved resolved;
                resolved = RecipeResolver.Resolve(recipeName);
                recipe = RecipeLoader.Parse(resolved.Text, resolved.Source);
                if (data == null)
                {
                    if (recipe.Data.Train.Count == 0)
                        throw new UserInputException($"{resolved.Source}: data.train is empty; give --data PATH");
                    if (recipe.Data.Train.Count > 1) Console.Error.WriteLine($"previewing the first of {recipe.Data.Train.Count} data.train entries");
                    data = RecipeResolver.InputPath(recipe.Data.Train[0], resolved.BaseDir);
                }
                // The recipe's tokenizer as training resolves it (the session), on the CPU whatever its device.
                var session = Session.Open(recipe.SessionOptions with { Tokenizer = tokenizer ?? recipe.Tokenizer, Device = "cpu", CpuThreads = 0 },
                    resolved.BaseDir);
                var d = recipe.Data;
                var recipeMask = d.Mask() with
                {
                    TrainThinkBlock = d.TrainThinkBlock || pr.GetValue(thinkOpt),
                    AssistantTurns = pr.GetValue(lastOpt) ? AssistantTurns.Last : d.AssistantTurns,
                    SeamRule = pr.GetValue(overlapOpt) ? SeamRule.Overlap : d.SeamRule,
                };
                DataPreview.Run(new DataPreviewOptions(data, session.Tokenizer, recipeMask, pr.GetValue(nOpt), pr.GetValue(colorOpt)), Console.Out);
                return CliErrors.Ok;
            }
            if (data == null)
            {
                Console.Error.WriteLine("preview needs --data PATH (or --recipe FILE).");
                return CliErrors.Usage;
            }
            var mask = new MaskOptions(
                TrainThinkBlock: pr.GetValue(thinkOpt),
                AssistantTurns: pr.GetValue(lastOpt) ? AssistantTurns.Last : AssistantTurns.All,
                SeamRule: pr.GetValue(overlapOpt) ? SeamRule.Overlap : SeamRule.Within,
                RtoRefusal: pr.GetValue(refusalOpt)!);
            DataPreview.Run(new DataPreviewOptions(data, TokenizerLoader.Load(tokenizer), mask, pr.GetValue(nOpt), pr.GetValue(colorOpt)), Console.Out);
            return CliErrors.Ok;
        }));
        return cmd;
    }

    static Command Convert()
    {
        var dataOpt = DataOption();
        var outOpt = new Option<string>("--out") { Description = "Output .parquet (Hugging Face layout) or .jsonl (the trainer's messages schema).", Required = true };
        var rgOpt = new Option<int>("--row-group-size") { Description = "Rows per Parquet row group.", DefaultValueFactory = _ => 100_000 };
        var skipOpt = new Option<bool>("--skip-bad-rows") { Description = "Leave bad rows out (reported on stderr) instead of failing." };
        var cmd = new Command("convert", "Convert any supported layout (messages, ShareGPT, prompt/completion, text/output, Alpaca, DeRTa) to Parquet or canonical JSONL.")
        {
            dataOpt, outOpt, rgOpt, skipOpt,
        };
        cmd.SetAction(pr => CliErrors.Run("data", Console.Error, () =>
        {
            var read = DatasetReader.Read(pr.GetValue(dataOpt)!, new DatasetReadOptions(OnError: pr.GetValue(skipOpt) ? BadRowPolicy.Skip : BadRowPolicy.Fail));
            foreach (var e in read.Errors) Console.Error.WriteLine("skipped " + e);
            var output = pr.GetValue(outOpt)!;
            if (output.EndsWith(".parquet", StringComparison.OrdinalIgnoreCase))
                ParquetConversationWriter.Write(read.Conversations, output, pr.GetValue(rgOpt));
            else if (output.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase))
                JsonlConversationWriter.Write(read.Conversations, output);
            else
            {
                Console.Error.WriteLine($"--out {output}: the extension must be .parquet or .jsonl");
                return CliErrors.Usage;
            }
            Console.Error.WriteLine($"wrote {read.Conversations.Count} conversations to {output} ({read.ErrorCount} bad rows skipped)");
            return CliErrors.Ok;
        }));
        return cmd;
    }

    static Command BenchTokenizer()
    {
        var tokOpt = TokenizerOption();
        tokOpt.Required = true;
        var inputOpt = new Option<string>("--input") { Description = "Text file to encode (default: a built-in mixed Japanese/English corpus)." };
        var secondsOpt = new Option<double>("--seconds") { Description = "Minimum measuring time.", DefaultValueFactory = _ => 2.0 };
        var cmd = new Command("bench-tokenizer", "Tokenizer throughput in tokens/s.") { tokOpt, inputOpt, secondsOpt };
        cmd.SetAction(pr => CliErrors.Run("data", Console.Error, () => TokenizeCommand.RunBench(pr.GetValue(tokOpt)!, pr.GetValue(inputOpt), pr.GetValue(secondsOpt))));
        return cmd;
    }
}
