using System.CommandLine;
using Qwen35.Data;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer tokenize</c>: JSON lines in, ids out (<see cref="TokenizeJsonl"/> describes the lines), or
/// <c>--bench</c> for tokenizer throughput.
/// </summary>
static class TokenizeCommand
{
    public static Command Build()
    {
        var tokOpt = new Option<string>("--tokenizer") { Description = "\"builtin\" or a folder with tokenizer.json (+ tokenizer_config.json).", Required = true };
        var inputOpt = new Option<string>("--input") { Description = "JSONL: {\"text\"} or {\"messages\", \"add_generation_prompt\"?, \"enable_thinking\"?} per line (\"-\" = stdin)." };
        var outputOpt = new Option<string>("--output") { Description = "Write the output lines here instead of stdout (temp file, then renamed)." };
        var benchOpt = new Option<bool>("--bench") { Description = "Measure throughput (tokens/s) on --input as plain text, or a built-in corpus." };
        var cmd = new Command("tokenize", "Tokenize text or chat messages with a Qwen tokenizer; prints one {\"ids\": [...]} line per input line.")
        {
            tokOpt, inputOpt, outputOpt, benchOpt,
        };
        cmd.SetAction(pr => CliErrors.Run("tokenize", Console.Error, () =>
        {
            if (pr.GetValue(benchOpt)) return RunBench(pr.GetValue(tokOpt)!, pr.GetValue(inputOpt), 2.0);
            var input = pr.GetValue(inputOpt);
            if (input == null)
            {
                Console.Error.WriteLine("tokenize needs --input FILE.jsonl (or --bench).");
                return CliErrors.Usage;
            }
            var tokenizer = TokenizerLoader.Load(pr.GetValue(tokOpt));
            using var reader = input == "-" ? Console.In : new StreamReader(input);
            var output = pr.GetValue(outputOpt);
            if (output == null)
            {
                TokenizeJsonl.Process(tokenizer, reader, Console.Out, input);
                return CliErrors.Ok;
            }
            AtomicFile.WriteText(output, writer => TokenizeJsonl.Process(tokenizer, reader, writer, input));
            return CliErrors.Ok;
        }));
        return cmd;
    }

    /// <summary>Prints "N tokens/s (...)" to stdout.</summary>
    public static int RunBench(string tokenizerName, string? inputPath, double seconds)
    {
        var load = System.Diagnostics.Stopwatch.StartNew();
        var tokenizer = TokenizerLoader.Load(tokenizerName);
        Console.Error.WriteLine($"loaded {tokenizerName} in {load.Elapsed.TotalSeconds:F2} s");
        var text = inputPath != null ? File.ReadAllText(inputPath) : TokenizerBenchmark.DefaultCorpus;
        // 1000-character chunks, like a dataset of short documents.
        var chunks = Enumerable.Range(0, (text.Length + 999) / 1000).Select(i => text.Substring(i * 1000, Math.Min(1000, text.Length - i * 1000))).ToList();
        var result = TokenizerBenchmark.Run(tokenizer, chunks, seconds);
        Console.Out.WriteLine(result);
        return CliErrors.Ok;
    }
}
