using LLama;
using LLama.Common;
using LLama.Native;

namespace Qwen35.Export.Tests;

/// <summary>
/// Runs a GGUF file in the real llama.cpp (the CPU build LLamaSharp.Backend.Cpu 0.30.0 bundles) the way
/// ../shared/docs/gguf.md measured it: no GPU layers, an F32 KV cache and flash attention off (with llama.cpp's
/// defaults, an F16 cache and auto flash attention, the logits move by 2e-4 and the 1e-4 bound does not hold).
/// Token ids go in directly (the golden and builtin files carry no tokenizer; GgufTokenizerTests tokenizes text).
/// </summary>
static class LlamaCpp
{
    const uint ContextSize = 256;

    /// <summary>Loads <paramref name="gguf"/>; a native library that cannot load is an exception, hence a failed test.</summary>
    public static LLamaWeights Load(string gguf, out ModelParams p)
    {
        p = new ModelParams(gguf)
        {
            GpuLayerCount = 0,
            ContextSize = ContextSize,
            BatchSize = ContextSize,
            UBatchSize = ContextSize,
            TypeK = GGMLType.GGML_TYPE_F32,
            TypeV = GGMLType.GGML_TYPE_F32,
            FlashAttention = false,
            Threads = 2,
            BatchThreads = 2,
        };
        return LLamaWeights.LoadFromFile(p);
    }

    /// <summary>The logits of every position of <paramref name="ids"/> in one prefill: [T][vocab].</summary>
    public static float[][] Logits(string gguf, long[] ids)
    {
        using var weights = Load(gguf, out var p);
        using var context = weights.CreateContext(p);
        return Prefill(context, ids, allLogits: true);
    }

    /// <summary>The logits of every position of <paramref name="ids"/> with the LoRA GGUF <paramref name="lora"/> applied to
    /// <paramref name="gguf"/> at <paramref name="scale"/> (llama_adapter_lora_init + llama_set_adapter_lora through
    /// LLamaSharp's native handles). The adapter is freed with the model.</summary>
    public static float[][] LogitsWithLora(string gguf, string lora, float scale, long[] ids)
    {
        using var weights = Load(gguf, out var p);
        var adapter = weights.NativeHandle.LoadLoraFromFile(lora);
        using var context = weights.CreateContext(p);
        context.NativeHandle.SetLoraAdapters([(adapter, scale)]);
        return Prefill(context, ids, allLogits: true);
    }

    /// <summary>Greedy decoding with llama.cpp's cache: the prompt in one batch, then <paramref name="steps"/> single-token
    /// decodes. Returns the chosen tokens and the logits of each decode step (row k: after feeding token k).</summary>
    public static (long[] Tokens, float[][] DecodeLogits) Greedy(string gguf, long[] prompt, int steps)
    {
        using var weights = Load(gguf, out var p);
        using var context = weights.CreateContext(p);
        var last = Prefill(context, prompt, allLogits: false)[^1];
        var tokens = new long[steps];
        var decode = new float[steps][];
        for (var k = 0; k < steps; k++)
        {
            tokens[k] = ArgMax(last);
            var batch = new LLamaBatch();
            batch.Add((int)tokens[k], prompt.Length + k, LLamaSeqId.Zero, true);
            Check(context.Decode(batch), "decode step " + k);
            last = decode[k] = context.NativeHandle.GetLogitsIth(0).ToArray();
        }
        return (tokens, decode);
    }

    static float[][] Prefill(LLamaContext context, long[] ids, bool allLogits)
    {
        var batch = new LLamaBatch();
        for (var i = 0; i < ids.Length; i++) batch.Add((int)ids[i], i, LLamaSeqId.Zero, allLogits || i == ids.Length - 1);
        Check(context.Decode(batch), "prefill");
        return allLogits
            ? Enumerable.Range(0, ids.Length).Select(i => context.NativeHandle.GetLogitsIth(i).ToArray()).ToArray()
            : [context.NativeHandle.GetLogitsIth(ids.Length - 1).ToArray()];
    }

    static void Check(DecodeResult r, string what)
    {
        if (r != DecodeResult.Ok) throw new InvalidOperationException($"llama.cpp {what}: {r}");
    }

    public static int ArgMax(float[] row)
    {
        var best = 0;
        for (var i = 1; i < row.Length; i++) if (row[i] > row[best]) best = i;
        return best;
    }

    /// <summary>Max |a − b| over two [T][V] arrays of equal shape.</summary>
    public static double MaxAbsDiff(float[][] a, float[][] b)
    {
        Assert.That(a.Length, Is.EqualTo(b.Length), "rows");
        double max = 0;
        for (var t = 0; t < a.Length; t++)
        {
            Assert.That(a[t].Length, Is.EqualTo(b[t].Length), "columns");
            for (var v = 0; v < a[t].Length; v++) max = Math.Max(max, Math.Abs((double)a[t][v] - b[t][v]));
        }
        return max;
    }
}
