using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using static TorchSharp.torch;

namespace Qwen35.Export.Gguf;

/// <summary>What <see cref="GgufModelExport.Export"/> wrote.</summary>
public sealed record GgufExportResult(string Path, int Tensors, long Bytes, int MergedAdapters);

/// <summary>
/// Writes a Qwen3.5 text model (adapters merged in) as one GGUF file that llama.cpp's <c>qwen35</c> architecture
/// loads: the tensors of <see cref="Qwen35GgufTensors"/>, the metadata of <see cref="Metadata"/>, the tokenizer when a
/// tokenizer folder is given (else <c>tokenizer.ggml.model = none</c>: llama.cpp fills dummy tokens and takes token ids). Streamed: the header is
/// computed from the shapes, then each tensor is transformed, encoded and written on its own, through a temporary
/// file renamed into place at the end, so a failure leaves no partial file.
/// </summary>
public static class GgufModelExport
{
    /// <summary>Refuses (<see cref="UserInputException"/>) a configuration llama.cpp's qwen35 cannot hold. Cheap: run it
    /// before loading the weights. <paramref name="where"/> names the model in the message.</summary>
    public static void CheckSupported(Qwen35TextConfig c, string where)
    {
        if (c.LinearKeyHeadDim != c.LinearValueHeadDim)
            throw new UserInputException($"{where}: linear_key_head_dim {c.LinearKeyHeadDim} differs from linear_value_head_dim {c.LinearValueHeadDim}; llama.cpp's qwen35 requires them equal, so no GGUF can hold this model");
        if (c.LinearNumKeyHeads <= 0 || c.LinearNumValueHeads % c.LinearNumKeyHeads != 0)
            throw new UserInputException($"{where}: linear_num_value_heads {c.LinearNumValueHeads} is not a multiple of linear_num_key_heads {c.LinearNumKeyHeads}; llama.cpp's qwen35 cannot hold this model");
        FullAttentionInterval(c, where);
    }

    /// <summary>llama.cpp knows the layer types only as "every n-th layer is full attention": the pattern must be that.</summary>
    static int FullAttentionInterval(Qwen35TextConfig c, string where)
    {
        var first = Enumerable.Range(0, c.NumHiddenLayers).FirstOrDefault(c.IsFullAttention, -1);
        var n = first + 1;
        if (first < 0 || Enumerable.Range(0, c.NumHiddenLayers).Any(i => c.IsFullAttention(i) != ((i + 1) % n == 0)))
            throw new UserInputException($"{where}: layer_types [{string.Join(", ", c.LayerTypes)}] are not 'every n-th layer full attention'; llama.cpp's qwen35 (full_attention_interval) cannot express them");
        return n;
    }

    /// <summary>The model metadata of docs/gguf.md (architecture <c>qwen35</c>), types as llama.cpp's loader checks them.</summary>
    /// <param name="tokenizerDir">A folder with tokenizer.json: its tokenizer goes in (<see cref="GgufTokenizerMetadata"/>);
    /// null writes <c>tokenizer.ggml.model = none</c> (llama.cpp fills dummy tokens and takes token ids).</param>
    public static GgufMetadata Metadata(Qwen35TextConfig c, GgufType type, string name, string? tokenizerDir = null)
    {
        const string a = "qwen35.";
        var sections = c.MropeSection.Concat(Enumerable.Repeat(0, 4)).Take(4).ToArray();
        var m = new GgufMetadata()
            .String("general.architecture", "qwen35")
            .String("general.type", "model")
            .String("general.name", name)
            .U32("general.file_type", type.FileType())
            .U32("general.quantization_version", 2)
            .U32(a + "block_count", (uint)c.NumHiddenLayers)
            .U32(a + "context_length", (uint)c.MaxPositionEmbeddings)
            .U32(a + "embedding_length", (uint)c.HiddenSize)
            .U32(a + "feed_forward_length", (uint)c.IntermediateSize)
            .U32(a + "vocab_size", (uint)c.VocabSize)
            .U32(a + "full_attention_interval", (uint)FullAttentionInterval(c, name))
            .U32(a + "attention.head_count", (uint)c.NumAttentionHeads)
            .U32(a + "attention.head_count_kv", (uint)c.NumKeyValueHeads)
            .U32(a + "attention.key_length", (uint)c.HeadDim)
            .U32(a + "attention.value_length", (uint)c.HeadDim)
            .F32(a + "attention.layer_norm_rms_epsilon", (float)c.RmsNormEps)
            .F32(a + "rope.freq_base", (float)c.RopeTheta)
            .U32(a + "rope.dimension_count", (uint)c.RotaryDim)
            .I32Array(a + "rope.dimension_sections", sections)
            .U32(a + "ssm.conv_kernel", (uint)c.LinearConvKernelDim)
            .U32(a + "ssm.state_size", (uint)c.LinearKeyHeadDim)
            .U32(a + "ssm.group_count", (uint)c.LinearNumKeyHeads)
            .U32(a + "ssm.time_step_rank", (uint)c.LinearNumValueHeads)
            .U32(a + "ssm.inner_size", (uint)(c.LinearValueHeadDim * c.LinearNumValueHeads));
        // Without a tokenizer llama.cpp accepts token ids and fills dummy tokens (vocab_size above).
        return tokenizerDir is null ? m.String("tokenizer.ggml.model", "none") : GgufTokenizerMetadata.AddTo(m, tokenizerDir, c.VocabSize);
    }

    /// <summary>
    /// Merges the model's unmerged adapters, writes the GGUF to <paramref name="outPath"/>, then unmerges them so the
    /// in-memory model is left as it was.
    /// </summary>
    public static GgufExportResult Export(Qwen35ForCausalLM model, string outPath, GgufType type, string name, string? tokenizerDir = null)
    {
        var c = model.Config;
        CheckSupported(c, name);
        var merged = LoraInjector.Adapters(model).Where(a => !a.Merged).ToList();
        foreach (var a in merged) LoraMerge.Merge(a);
        try
        {
            var plans = Qwen35GgufTensors.Plan(model, type);
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
            var metadata = Metadata(c, type, name, tokenizerDir);
            var infos = plans.Select(p => p.Info).ToList();
            AtomicFile.Write(outPath, stream => GgufFileWriter.Write(stream, metadata, infos,
                (i, s) => Qwen35GgufTensors.Write(s, plans[i], parameters[plans[i].HfName], c)), durable: true);
            return new GgufExportResult(Path.GetFullPath(outPath), plans.Count, new FileInfo(outPath).Length, merged.Count);
        }
        finally
        {
            foreach (var a in merged) LoraMerge.Unmerge(a);
        }
    }
}
