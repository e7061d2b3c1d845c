using System.CommandLine;
using System.Text.Json;
using Qwen35.Training;
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
        var session = new SessionFlags(tokenizer: false);
        var tokens = new Option<FileInfo>("--tokens") { Description = "JSON file {\"sequences\": [[token ids...], ...]}", Required = true };
        var cmd = new Command("score", "Mean next-token cross-entropy of token sequences under a model (and optional LoRA adapter).") { tokens };
        session.AddTo(cmd);
        cmd.SetAction(pr => CliErrors.Run("score", pr.InvocationConfiguration.Error, () =>
            Run(session.Read(pr), pr.GetValue(tokens)!.FullName, pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error)));
        return cmd;
    }

    /// <summary>The verb's body; returns the exit code (<see cref="CliErrors"/>).</summary>
    public static int Run(SessionOptions options, string tokensPath, TextWriter stdout, TextWriter stderr)
    {
        {
            var sequences = ReadSequences(tokensPath);
            using var log = CliLog.For("score", stderr);
            var session = Session.Open(options);
            using var model = session.LoadModel(log);
            model.eval();
            for (var i = 0; i < sequences.Length; i++)
                foreach (var (id, t) in sequences[i].Select((id, t) => (id, t)))
                    if (id < 0 || id >= model.Config.VocabSize)
                        throw new UserInputException(
                            $"{tokensPath}: sequences[{i}][{t}] = {id} is outside the vocabulary [0, {model.Config.VocabSize})");

            var losses = new List<double>();
            foreach (var seq in sequences)
            {
                using var scope = NewDisposeScope();
                var ids = tensor(seq, dtype: ScalarType.Int64, device: session.Device).unsqueeze(0);
                losses.Add(model.SequenceLosses(ids)[0]);
            }
            stdout.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object> { ["losses"] = losses }));
            return CliErrors.Ok;
        }
    }

    static long[][] ReadSequences(string path)
    {
        if (!File.Exists(path)) throw new UserInputException($"{path}: tokens file not found");
        JsonDocument doc;
        try { doc = JsonDocument.Parse(File.ReadAllText(path)); }
        catch (JsonException e) { throw new UserInputException($"{path}: invalid JSON: {e.Message}"); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object ||
                !doc.RootElement.TryGetProperty("sequences", out var seqs) || seqs.ValueKind != JsonValueKind.Array)
                throw new UserInputException($"{path}: expected an object with a \"sequences\" list of token-id lists");
            var result = new List<long[]>();
            var i = 0;
            foreach (var s in seqs.EnumerateArray())
            {
                if (s.ValueKind != JsonValueKind.Array)
                    throw new UserInputException($"{path}: sequences[{i}] is not a list of token ids");
                var ids = new List<long>();
                var t = 0;
                foreach (var e in s.EnumerateArray())
                {
                    if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out var id))
                        throw new UserInputException($"{path}: sequences[{i}][{t}] is not an integer token id");
                    ids.Add(id);
                    t++;
                }
                if (ids.Count < 2)
                    throw new UserInputException($"{path}: sequences[{i}] has {ids.Count} token(s); a next-token loss needs at least 2");
                result.Add(ids.ToArray());
                i++;
            }
            if (result.Count == 0) throw new UserInputException($"{path}: \"sequences\" is empty");
            return result.ToArray();
        }
    }
}
