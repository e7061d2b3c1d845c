using System.Text.Json;
using Qwen35.Models.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Verification;

/// <summary>
/// A Hugging Face reference set laid out like tests/fixtures/qwen35-tiny-a, read once and validated up front so a
/// missing piece is named before any model runs. <c>trainer verify</c> and the golden tests read the reference through
/// this one reader; the numbers themselves stay Hugging Face's, the independent expectation.
/// </summary>
public sealed class GoldenReference : IDisposable
{
    /// <summary>The token ids of each reference sequence (inputs.json).</summary>
    public required long[][] Sequences { get; init; }
    /// <summary>Hugging Face's mean next-token loss of each sequence (expected.json).</summary>
    public required double[] Losses { get; init; }
    /// <summary>The greedy tokens decoded after the first <see cref="PromptLength"/> tokens of sequence 0.</summary>
    public required long[] GreedyTokens { get; init; }
    public required int PromptLength { get; init; }
    /// <summary>The sequence the PEFT adapter's logits, loss and gradients were computed on.</summary>
    public required int LoraSequence { get; init; }
    public required double LoraLoss { get; init; }
    public required string Dir { get; init; }
    public required string ExpectedPath { get; init; }
    public required string GradientsPath { get; init; }
    public string AdapterDir => Path.Combine(Dir, "adapter");

    /// <summary>The keys of expected_lora_grads.safetensors (PEFT adapter keys), in ordinal order.</summary>
    public IEnumerable<string> GradientKeys => _gradients.Keys.Order(StringComparer.Ordinal);

    /// <summary>Both reference files, read once (they are small: the golden set's are under 1 MB); fp32, CPU.</summary>
    Dictionary<string, Tensor> _expected = [], _gradients = [];

    /// <summary>A gradient of expected_lora_grads.safetensors, owned by this reader (clone it to keep it longer).</summary>
    public Tensor Gradient(string key) => _gradients.TryGetValue(key, out var t) ? t
        : throw new InvalidDataException($"{GradientsPath}: no tensor '{key}'");

    /// <summary>A tensor of expected.safetensors, owned by this reader (clone it to keep it longer).</summary>
    public Tensor Tensor(string name) => _expected.TryGetValue(name, out var t) ? t
        : throw new InvalidDataException($"{ExpectedPath}: no tensor '{name}'");

    public void Dispose()
    {
        foreach (var t in _expected.Values.Concat(_gradients.Values)) t.Dispose();
    }

    static Dictionary<string, Tensor> LoadAll(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        return file.Tensors.Keys.ToDictionary(k => k, k => file.Load(k).to(ScalarType.Float32).DetachFromDisposeScope());
    }

    public static GoldenReference Open(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: reference folder not found");
        string Need(string relative)
        {
            var path = Path.Combine(dir, relative);
            if (!File.Exists(path))
                throw new FileNotFoundException($"{dir}: the reference set has no {relative} (expected the layout of tests/fixtures/qwen35-tiny-a)", path);
            return path;
        }
        Need("config.json");
        Need(Path.Combine("adapter", "adapter_config.json"));
        var inputs = Json(Need("inputs.json"));
        var expected = Json(Need("expected.json"));
        try
        {
            var sequences = inputs.GetProperty("sequences").EnumerateArray()
                .Select(s => s.EnumerateArray().Select(e => e.GetInt64()).ToArray()).ToArray();
            var losses = expected.GetProperty("losses").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            if (sequences.Length == 0 || losses.Length != sequences.Length)
                throw new InvalidDataException($"{dir}: inputs.json has {sequences.Length} sequences but expected.json {losses.Length} losses");
            var greedy = expected.GetProperty("greedy");
            if (greedy.GetProperty("prompt_index").GetInt32() != 0)
                throw new InvalidDataException($"{dir}: expected.json greedy.prompt_index must be 0");
            var promptLength = greedy.GetProperty("prompt_length").GetInt32();
            if (promptLength < 1 || promptLength > sequences[0].Length)
                throw new InvalidDataException($"{dir}: expected.json greedy.prompt_length {promptLength} is not within sequence 0");
            var gradientsPath = Need("expected_lora_grads.safetensors");
            var lora = expected.GetProperty("lora");
            var loraSequence = lora.GetProperty("sequence_index").GetInt32();
            if (loraSequence < 0 || loraSequence >= sequences.Length)
                throw new InvalidDataException($"{dir}: expected.json lora.sequence_index {loraSequence} names no sequence");
            return new GoldenReference
            {
                Sequences = sequences,
                Losses = losses,
                GreedyTokens = greedy.GetProperty("new_tokens").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                PromptLength = promptLength,
                LoraSequence = loraSequence,
                LoraLoss = lora.GetProperty("loss").GetDouble(),
                Dir = dir,
                ExpectedPath = Need("expected.safetensors"),
                GradientsPath = gradientsPath,
                _expected = LoadAll(Need("expected.safetensors")),
                _gradients = LoadAll(gradientsPath),
            };
        }
        catch (Exception e) when (e is KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"{dir}: inputs.json/expected.json do not have the reference layout: {e.Message}");
        }
    }

    static JsonElement Json(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new InvalidDataException($"{path}: invalid JSON: {e.Message}"); }
    }
}
