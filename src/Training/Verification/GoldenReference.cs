using System.Text.Json;
using Qwen35.Models.SafeTensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Verification;

/// <summary>
/// A Hugging Face reference set laid out like tests/fixtures/qwen35-tiny-a, read once and validated up front so a
/// missing piece is named before any model runs. <c>trainer verify</c> and the golden tests read the reference through
/// this one reader; the numbers themselves stay Hugging Face's, the independent expectation. A missing or malformed
/// piece is a <see cref="UserInputException"/> naming the file and the key (`verify --golden` exits 2).
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
        : throw new UserInputException($"{GradientsPath}: no tensor '{key}'");

    /// <summary>A tensor of expected.safetensors, owned by this reader (clone it to keep it longer).</summary>
    public Tensor Tensor(string name) => _expected.TryGetValue(name, out var t) ? t
        : throw new UserInputException($"{ExpectedPath}: no tensor '{name}'");

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
        if (!Directory.Exists(dir)) throw new UserInputException($"{dir}: reference folder not found");
        string Need(string relative)
        {
            var path = Path.Combine(dir, relative);
            if (!File.Exists(path))
                throw new UserInputException($"{dir}: the reference set has no {relative} (expected the layout of tests/fixtures/qwen35-tiny-a)");
            return path;
        }
        Need("config.json");
        Need(Path.Combine("adapter", "adapter_config.json"));
        var inputsPath = Need("inputs.json");
        var expectedPath = Need("expected.json");
        var inputs = Json(inputsPath);
        var expected = Json(expectedPath);
        var sequences = ArrayAt(inputs, inputsPath, "sequences", s => s.EnumerateArray().Select(e => e.GetInt64()).ToArray());
        var losses = ArrayAt(expected, expectedPath, "losses", e => e.GetDouble());
        if (sequences.Length == 0 || losses.Length != sequences.Length)
            throw new UserInputException($"{dir}: inputs.json has {sequences.Length} sequences but expected.json {losses.Length} losses");
        if (ValueAt(expected, expectedPath, "greedy.prompt_index", e => e.GetInt32()) != 0)
            throw new UserInputException($"{expectedPath}: greedy.prompt_index must be 0");
        var promptLength = ValueAt(expected, expectedPath, "greedy.prompt_length", e => e.GetInt32());
        if (promptLength < 1 || promptLength > sequences[0].Length)
            throw new UserInputException($"{expectedPath}: greedy.prompt_length {promptLength} is not within sequence 0");
        var loraSequence = ValueAt(expected, expectedPath, "lora.sequence_index", e => e.GetInt32());
        if (loraSequence < 0 || loraSequence >= sequences.Length)
            throw new UserInputException($"{expectedPath}: lora.sequence_index {loraSequence} names no sequence");
        var gradientsPath = Need("expected_lora_grads.safetensors");
        var tensorsPath = Need("expected.safetensors");
        return new GoldenReference
        {
            Sequences = sequences,
            Losses = losses,
            GreedyTokens = ArrayAt(expected, expectedPath, "greedy.new_tokens", e => e.GetInt64()),
            PromptLength = promptLength,
            LoraSequence = loraSequence,
            LoraLoss = ValueAt(expected, expectedPath, "lora.loss", e => e.GetDouble()),
            Dir = dir,
            ExpectedPath = tensorsPath,
            GradientsPath = gradientsPath,
            _expected = LoadAll(tensorsPath),
            _gradients = LoadAll(gradientsPath),
        };
    }

    /// <summary>The value at a dotted key path of a JSON file, or one line naming the file and the key.</summary>
    static T ValueAt<T>(JsonElement root, string file, string dotted, Func<JsonElement, T> read)
    {
        var e = root;
        foreach (var key in dotted.Split('.'))
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty(key, out e))
                throw new UserInputException($"{file}: no key '{dotted}' (expected the layout of tests/fixtures/qwen35-tiny-a)");
        try { return read(e); }
        catch (Exception x) when (x is InvalidOperationException or FormatException)
        {
            throw new UserInputException($"{file}: '{dotted}' has the wrong type or range ({e.ValueKind}): {x.Message}");
        }
    }

    static T[] ArrayAt<T>(JsonElement root, string file, string dotted, Func<JsonElement, T> read) =>
        ValueAt(root, file, dotted, e => e.EnumerateArray().Select(read).ToArray());

    static JsonElement Json(string path)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new UserInputException($"{path}: invalid JSON: {e.Message}"); }
    }
}
