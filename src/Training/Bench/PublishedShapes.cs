using Qwen35.Models.Config;

namespace Qwen35.Training.Bench;

/// <summary>Qwen3.5 text-decoder shapes from the published configs (config.json of Hugging Face's Qwen/Qwen3.5-9B and
/// Qwen/Qwen3.5-27B), truncatable to fewer layers so a benchmark fits a small machine. Layer types repeat
/// [linear ×3, full] (full_attention_interval 4).</summary>
public static class PublishedShapes
{
    public static readonly string[] Names = ["tiny", "9b", "27b"];

    public static Qwen35TextConfig Get(string name, int? layers)
    {
        var c = name switch
        {
            "tiny" => Qwen35TextConfig.Tiny(),
            "9b" => Qwen35TextConfig.Tiny() with
            {
                VocabSize = 248_320, HiddenSize = 4096, IntermediateSize = 12_288, NumHiddenLayers = 32,
                NumAttentionHeads = 16, NumKeyValueHeads = 4, HeadDim = 256,
                LinearNumKeyHeads = 16, LinearNumValueHeads = 32, LinearKeyHeadDim = 128, LinearValueHeadDim = 128,
                MropeSection = [11, 11, 10], TieWordEmbeddings = false, LayerTypes = Pattern(32),
            },
            "27b" => Qwen35TextConfig.Tiny() with
            {
                VocabSize = 248_320, HiddenSize = 5120, IntermediateSize = 17_408, NumHiddenLayers = 64,
                NumAttentionHeads = 24, NumKeyValueHeads = 4, HeadDim = 256,
                LinearNumKeyHeads = 16, LinearNumValueHeads = 48, LinearKeyHeadDim = 128, LinearValueHeadDim = 128,
                MropeSection = [11, 11, 10], TieWordEmbeddings = false, LayerTypes = Pattern(64),
            },
            _ => throw new UserInputException($"unknown shape '{name}' ({string.Join(", ", Names)})"),
        };
        if (layers is { } n)
        {
            if (n < 1) throw new UserInputException("--layers must be >= 1");
            c = c with { NumHiddenLayers = n, LayerTypes = Pattern(n) };
        }
        return c;
    }

    static string[] Pattern(int n) =>
        Enumerable.Range(0, n).Select(i => (i + 1) % 4 == 0 ? Qwen35TextConfig.FullAttention : Qwen35TextConfig.LinearAttention).ToArray();
}
