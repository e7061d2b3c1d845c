namespace Qwen35.Lora;

/// <summary>Which LoRA matrix a PEFT key names.</summary>
public enum LoraMatrix { A, B }

/// <summary>
/// Maps between model module names (<c>model.language_model.layers.3.self_attn.q_proj</c>) and PEFT adapter keys
/// (<c>base_model.model.model.language_model.layers.3.self_attn.q_proj.lora_A.weight</c>). We write the
/// <c>model.language_model.</c> form (what vLLM, SGLang and llama.cpp agree on) and read it plus the text-only
/// <c>base_model.model.model.layers.</c> form that PEFT writes for Qwen3_5ForCausalLM.
/// </summary>
public static class AdapterKeys
{
    public const string PeftPrefix = "base_model.model.";
    public const string LanguageModelPrefix = "model.language_model.";
    const string TextOnlyPrefix = "model.layers.";

    /// <summary>The file key of one matrix of the adapter on <paramref name="moduleName"/>.</summary>
    public static string ToKey(string moduleName, LoraMatrix matrix) =>
        PeftPrefix + moduleName + (matrix == LoraMatrix.A ? ".lora_A.weight" : ".lora_B.weight");

    /// <summary>
    /// Parses a file key into the model module name (always in the <c>model.language_model.</c> form) and matrix.
    /// Throws <see cref="AdapterFormatException"/> naming the key for anything else (DoRA magnitudes, lora biases,
    /// embedding adapters, full weights of modules_to_save, vision-tower or lm_head modules).
    /// </summary>
    public static (string ModuleName, LoraMatrix Matrix) Parse(string key, string file)
    {
        if (!key.StartsWith(PeftPrefix, StringComparison.Ordinal))
            throw new AdapterFormatException($"{file}: key \"{key}\" does not start with \"{PeftPrefix}\" (not a PEFT adapter key)");
        var rest = key[PeftPrefix.Length..];
        LoraMatrix matrix;
        if (rest.EndsWith(".lora_A.weight", StringComparison.Ordinal)) matrix = LoraMatrix.A;
        else if (rest.EndsWith(".lora_B.weight", StringComparison.Ordinal)) matrix = LoraMatrix.B;
        else
            throw new AdapterFormatException($"{file}: key \"{key}\" is not a lora_A/lora_B weight " +
                                             "(DoRA magnitudes, LoRA biases, embedding adapters and modules_to_save weights are not supported)");
        var module = rest[..^".lora_A.weight".Length];
        if (module.StartsWith(LanguageModelPrefix, StringComparison.Ordinal)) { }
        else if (module.StartsWith(TextOnlyPrefix, StringComparison.Ordinal)) module = LanguageModelPrefix + module["model.".Length..];
        else
            throw new AdapterFormatException($"{file}: key \"{key}\" names module \"{module}\", which is not a text-decoder layer " +
                                             $"(expected \"{PeftPrefix}{LanguageModelPrefix}layers.N…\" or \"{PeftPrefix}{TextOnlyPrefix}N…\")");
        return (module, matrix);
    }
}
