namespace Qwen35.Lora;

/// <summary>
/// Warnings about adapter options that other consumers (vLLM, llama.cpp) ignore or reject, each saying what to do.
/// Sources: docs/lora.md "Portability" (vLLM lora/peft_helper.py, llama.cpp convert_lora_to_gguf.py, issue #21125).
/// </summary>
public static class AdapterPortability
{
    /// <summary>vLLM's default <c>--max-lora-rank</c>.</summary>
    public const int VllmDefaultMaxRank = 16;

    /// <summary>The warnings for an adapter with these options on these modules (full names, ranks).</summary>
    public static IReadOnlyList<string> Check(LoraOptions options, IEnumerable<(string ModuleName, int Rank)> modules)
    {
        var list = modules.ToList();
        var warnings = new List<string>();
        if (options.UseRsLora)
            warnings.Add("use_rslora is true: llama.cpp ignores it and scales by lora_alpha/r instead of lora_alpha/sqrt(r). " +
                         "For llama.cpp, merge the adapter (trainer merge) or retrain without rsLoRA.");
        if (options.RankPattern.Count > 0 || options.AlphaPattern.Count > 0)
            warnings.Add("rank_pattern/alpha_pattern are set: vLLM uses the global r and lora_alpha for every module's scaling and " +
                         "llama.cpp reads only lora_alpha, so per-module scales are wrong there. Use uniform r/alpha, or merge the adapter.");
        var maxRank = list.Count == 0 ? options.Rank : list.Max(m => m.Rank);
        if (maxRank > VllmDefaultMaxRank)
            warnings.Add($"rank {maxRank} > {VllmDefaultMaxRank}: vLLM refuses it unless started with --max-lora-rank {NextVllmRank(maxRank)} (or higher).");
        var outProj = list.Where(m => m.ModuleName.EndsWith(".linear_attn.out_proj", StringComparison.Ordinal)).ToList();
        if (outProj.Count > 0)
            warnings.Add($"{outProj.Count} adapters target linear_attn.out_proj: llama.cpp's convert_lora_to_gguf.py crashes on Qwen3.5 adapters " +
                         "touching V-head-reordered DeltaNet tensors (issue #21125, fixes not merged). For GGUF, drop out_proj (and other linear_attn " +
                         "targets) from target_modules, or merge the adapter and convert the merged model.");
        var foreign = list.Where(m => !m.ModuleName.StartsWith(AdapterKeys.LanguageModelPrefix, StringComparison.Ordinal)).ToList();
        if (foreign.Count > 0)
            warnings.Add($"{foreign.Count} modules (e.g. {foreign[0].ModuleName}) are outside {AdapterKeys.LanguageModelPrefix}: vLLM binds Qwen3.5 adapters only " +
                         "through that prefix and silently ignores others (vLLM #48019). Re-export with model.language_model.* module names.");
        return warnings;
    }

    // vLLM accepts only certain --max-lora-rank values (8, 16, 32, 64, 128, 256, 320, 512).
    static int NextVllmRank(int r) => new[] { 8, 16, 32, 64, 128, 256, 320, 512 }.FirstOrDefault(v => v >= r, r);
}
