using System.CommandLine;
using System.Text.Json;
using Qwen35.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer score --model DIR [--adapter DIR] --tokens FILE</c>: mean next-token cross-entropy (fp32) of each token
/// sequence in FILE (<c>{"sequences": [[ids...], ...]}</c>), printed as <c>{"losses": [...]}</c> on stdout.
/// Each sequence runs alone (batch 1, no padding), so the numbers are comparable with Hugging Face's
/// <c>ForCausalLMLoss</c> with labels = input ids.
/// </summary>
public static class ScoreCommand
{
    public static Command Build()
    {
        var model = new Option<DirectoryInfo>("--model") { Description = "Hugging Face Qwen3.5 folder (config.json + safetensors)", Required = true };
        var adapter = new Option<DirectoryInfo?>("--adapter") { Description = "PEFT LoRA adapter folder to apply before scoring" };
        var tokens = new Option<FileInfo>("--tokens") { Description = "JSON file {\"sequences\": [[token ids...], ...]}", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "float32 (default) or bfloat16", DefaultValueFactory = _ => "float32" };
        var device = new Option<string>("--device") { Description = "cpu (default) or cuda[:N]", DefaultValueFactory = _ => "cpu" };
        var cmd = new Command("score", "Mean next-token cross-entropy of token sequences under a model (and optional LoRA adapter).")
        {
            model, adapter, tokens, dtype, device,
        };
        cmd.SetAction(pr => Run(pr.GetValue(model)!.FullName, pr.GetValue(adapter)?.FullName, pr.GetValue(tokens)!.FullName,
            pr.GetValue(dtype)!, pr.GetValue(device)!, pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error));
        return cmd;
    }

    /// <summary>The verb's body; returns the exit code (0 ok, 2 bad input, 3 runtime failure).</summary>
    public static int Run(string modelDir, string? adapterDir, string tokensPath, string dtypeName, string deviceName,
        TextWriter stdout, TextWriter stderr)
    {
        return CliErrors.Guard("score", stderr, () =>
        {
            var dtype = CliParsing.Dtype(dtypeName);
            var device = CliParsing.Device(deviceName);
            var sequences = ReadSequences(tokensPath);
            stderr.WriteLine($"score: loading {modelDir} ({dtype} on {device})");
            var (model, report) = Qwen35ForCausalLM.FromPretrained(modelDir, dtype, device);
            using (model)
            {
                stderr.WriteLine($"score: {report}");
                if (adapterDir is not null)
                {
                    var loaded = Qwen35.Lora.LoraInjector.LoadAdapter(model, adapterDir);
                    stderr.WriteLine($"score: adapter {adapterDir} attached to {loaded.Report.Modules.Count} projections " +
                                     $"({loaded.Report.TrainableParameters:N0} adapter parameters)");
                    foreach (var w in loaded.Warnings) stderr.WriteLine($"score: warning: {w}");
                }
                model.eval();
                for (var i = 0; i < sequences.Length; i++)
                    foreach (var (id, t) in sequences[i].Select((id, t) => (id, t)))
                        if (id < 0 || id >= model.Config.VocabSize)
                            throw new InvalidDataException(
                                $"{tokensPath}: sequences[{i}][{t}] = {id} is outside the vocabulary [0, {model.Config.VocabSize})");

                var losses = new List<double>();
                foreach (var seq in sequences)
                {
                    using var scope = NewDisposeScope();
                    var ids = tensor(seq, dtype: ScalarType.Int64, device: device).unsqueeze(0);
                    losses.Add(model.SequenceLosses(ids)[0]);
                }
                stdout.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object> { ["losses"] = losses }));
                return 0;
            }
        });
    }

    static long[][] ReadSequences(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: tokens file not found", path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new InvalidDataException($"{path}: invalid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object ||
                !doc.RootElement.TryGetProperty("sequences", out var seqs) || seqs.ValueKind != JsonValueKind.Array)
                throw new InvalidDataException($"{path}: expected an object with a \"sequences\" list of token-id lists");
            var result = new List<long[]>();
            var i = 0;
            foreach (var s in seqs.EnumerateArray())
            {
                if (s.ValueKind != JsonValueKind.Array)
                    throw new InvalidDataException($"{path}: sequences[{i}] is not a list of token ids");
                var ids = new List<long>();
                var t = 0;
                foreach (var e in s.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var id))
                        throw new InvalidDataException($"{path}: sequences[{i}][{t}] is not an integer token id");
                    ids.Add(id);
                    t++;
                }
                if (ids.Count < 2)
                    throw new InvalidDataException($"{path}: sequences[{i}] has {ids.Count} token(s); a next-token loss needs at least 2");
                result.Add(ids.ToArray());
                i++;
            }
            if (result.Count == 0) throw new InvalidDataException($"{path}: \"sequences\" is empty");
            return result.ToArray();
        }
    }
}
