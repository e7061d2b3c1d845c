using LLama;
using LLama.Common;
using LLama.Native;

namespace Qwen35.Export.LlamaCpp;

/// <summary>
/// Runs a GGUF file in the real llama.cpp (the CPU build LLamaSharp.Backend.Cpu 0.30.0 bundles) the way
/// ../shared/docs/gguf.md measured it: no GPU layers, an F32 KV cache and flash attention off (with llama.cpp's
/// defaults, an F16 cache and auto flash attention, the logits move by 2e-4 and the golden 1e-4 bound does not hold).
/// Token ids go in directly, so files without a tokenizer run too. Used by `trainer gguf --check` and the tests.
/// </summary>
public static class LlamaCppRunner
{
    /// <summary>Context (and batch) size: the longest sequence one call may take.</summary>
    public const uint ContextSize = 256;

    static readonly Lock Gate = new();
    static bool _available;

    /// <summary>Sends llama.cpp's warnings and errors to <paramref name="sink"/> and drops the rest (hundreds of lines per
    /// load). Only possible before the native library loads; afterwards the first sink stays.</summary>
    public static void QuietLog(Action<string> sink)
    {
        lock (Gate)
        {
            if (NativeLibraryConfig.LLama.LibraryHasLoaded) return;
            NativeLibraryConfig.All.WithLogCallback((level, message) =>
            {
                if (level is LLamaLogLevel.Warning or LLamaLogLevel.Error) sink("llama.cpp: " + message.TrimEnd('\n'));
            });
        }
    }

    /// <summary>Loads llama.cpp's native library now, so that a missing one is one clear error before any work.</summary>
    public static void EnsureAvailable()
    {
        lock (Gate)
        {
            if (_available) return;
            try
            {
                NativeApi.llama_empty_call();
            }
            catch (Exception e) when (e is TypeInitializationException or DllNotFoundException or LLama.Exceptions.RuntimeError or EntryPointNotFoundException)
            {
                var inner = e is TypeInitializationException { InnerException: { } i } ? i : e;
                throw new LlamaCppUnavailableException(
                    $"--check: llama.cpp's native library could not be loaded ({inner.Message.ReplaceLineEndings(" ").Trim()}); " +
                    "the GPU pack leaves it out on purpose: run the check where the full trainer build is", e);
            }
            _available = true;
        }
    }

    /// <summary>The parameters the runs use: CPU only, F32 KV cache, flash attention off.</summary>
    public static ModelParams Parameters(string gguf, int threads) => new(gguf)
    {
        GpuLayerCount = 0,
        ContextSize = ContextSize,
        BatchSize = ContextSize,
        UBatchSize = ContextSize,
        TypeK = GGMLType.GGML_TYPE_F32,
        TypeV = GGMLType.GGML_TYPE_F32,
        FlashAttention = false,
        Threads = threads,
        BatchThreads = threads,
    };

    /// <summary>Loads <paramref name="gguf"/>; a native library that cannot load is a <see cref="LlamaCppUnavailableException"/>.</summary>
    public static LLamaWeights Load(string gguf, out ModelParams p, int threads = 2)
    {
        EnsureAvailable();
        p = Parameters(gguf, threads);
        return LLamaWeights.LoadFromFile(p);
    }

    /// <summary>The logits of every position of <paramref name="ids"/> in one prefill: [T][vocab].</summary>
    public static float[][] Logits(string gguf, long[] ids) => Logits(gguf, null, [ids])[0];

    /// <summary>The logits of every position of <paramref name="ids"/> with the LoRA GGUF <paramref name="lora"/> applied to
    /// <paramref name="gguf"/> at <paramref name="scale"/>.</summary>
    public static float[][] LogitsWithLora(string gguf, string lora, float scale, long[] ids) => Logits(gguf, (lora, scale), [ids])[0];

    /// <summary>
    /// The logits [T][vocab] of each sequence, each in a fresh context of one model load; with <paramref name="lora"/>
    /// the LoRA GGUF applied at its scale (llama_adapter_lora_init + llama_set_adapter_lora through LLamaSharp's
    /// native handles; the adapter is freed with the model).
    /// </summary>
    public static float[][][] Logits(string gguf, (string Path, float Scale)? lora, IReadOnlyList<long[]> sequences, int threads = 2) =>
        Logits(gguf, lora, sequences, threads, out _);

    /// <summary>As above, also giving the model file's <c>general.file_type</c> (llama_ftype; null when absent).</summary>
    public static float[][][] Logits(string gguf, (string Path, float Scale)? lora, IReadOnlyList<long[]> sequences, int threads, out uint? fileType)
    {
        using var weights = Load(gguf, out var p, threads);
        fileType = weights.Metadata.TryGetValue("general.file_type", out var v) && uint.TryParse(v, out var t) ? t : null;
        var adapter = lora is { } l ? weights.NativeHandle.LoadLoraFromFile(l.Path) : null;
        var result = new float[sequences.Count][][];
        for (var s = 0; s < sequences.Count; s++)
        {
            using var context = weights.CreateContext(p);
            if (adapter is not null) context.NativeHandle.SetLoraAdapters([(adapter, lora!.Value.Scale)]);
            result[s] = Prefill(context, sequences[s], allLogits: true);
        }
        return result;
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
        if (ids.Length > ContextSize) throw new ArgumentException($"{ids.Length} tokens: the runner's context holds {ContextSize}");
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
        if (a.Length != b.Length) throw new ArgumentException($"{a.Length} rows against {b.Length}");
        double max = 0;
        for (var t = 0; t < a.Length; t++)
        {
            if (a[t].Length != b[t].Length) throw new ArgumentException($"row {t}: {a[t].Length} columns against {b[t].Length}");
            for (var v = 0; v < a[t].Length; v++) max = Math.Max(max, Math.Abs((double)a[t][v] - b[t][v]));
        }
        return max;
    }
}
