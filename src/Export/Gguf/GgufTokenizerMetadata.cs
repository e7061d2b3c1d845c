using System.Text.Json;
using Qwen35.Data;

namespace Qwen35.Export.Gguf;

/// <summary>
/// The tokenizer metadata llama.cpp needs to tokenize text (../shared/docs/gguf.md section 4), read from a Hugging Face
/// tokenizer folder: <c>tokenizer.json</c>, plus <c>tokenizer_config.json</c> and <c>chat_template.jinja</c> when present.
/// Only what the files hold: tokens in id order (ids with no token become <c>[PAD&lt;id&gt;]</c> up to the model's
/// vocab_size), merges in file order, token types from the added tokens' <c>special</c> flag, eos/pad ids, the chat
/// template.
/// </summary>
/// <remarks>Re-reads the JSON rather than going through the trainer's QwenTokenizer: the exporter needs the raw vocabulary
/// strings and merge list in file order, which the tokenizer keeps inside Microsoft.ML.Tokenizers.</remarks>
public static class GgufTokenizerMetadata
{
    /// <summary>The Split regexes llama.cpp implements, by its pre-tokenizer name: Qwen2/Qwen3's, and Qwen3.5's (combining
    /// marks grouped with letters; ../shared/docs/qwen35-architecture.md). Any other regex is refused: llama.cpp would
    /// split the text differently from the trainer.</summary>
    static readonly Dictionary<string, string> PreByRegex = new(StringComparer.Ordinal)
    {
        [@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"] = "qwen2",
        [@"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"] = "qwen35",
    };

    // llama.cpp's llama_token_type values.
    const int Normal = 1, Control = 3, UserDefined = 4, Unused = 5;

    /// <summary>Appends the tokenizer keys for the folder <paramref name="dir"/> to <paramref name="m"/>. A vocabulary
    /// larger than <paramref name="vocabSize"/> is refused (the session already checks this; the message names the file).</summary>
    public static GgufMetadata AddTo(GgufMetadata m, string dir, int vocabSize)
    {
        var jsonPath = Path.Combine(dir, "tokenizer.json");
        using var doc = JsonDocument.Parse(File.ReadAllBytes(jsonPath), new JsonDocumentOptions { MaxDepth = 256 });
        var root = doc.RootElement;
        var model = Get(root, "model", jsonPath);

        var tokens = new string?[vocabSize];
        var types = new int[vocabSize];
        void Put(string token, int id, int type, string what)
        {
            if (id < 0 || id >= vocabSize)
                throw new UserInputException($"{jsonPath}: {what} '{token}' has id {id}, outside the model's vocab_size {vocabSize}");
            tokens[id] = token;
            types[id] = type;
        }
        foreach (var p in Get(model, "vocab", jsonPath).EnumerateObject()) Put(p.Name, p.Value.GetInt32(), Normal, "token");
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
            foreach (var t in added.EnumerateArray())
            {
                var special = t.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                Put(t.GetProperty("content").GetString()!, t.GetProperty("id").GetInt32(), special ? Control : UserDefined, "added token");
            }

        // tokenizer_config.json's added_tokens_decoder may list tokens tokenizer.json lacks (<think> in some Qwen3.5 files).
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        using var cfg = File.Exists(configPath) ? JsonDocument.Parse(File.ReadAllBytes(configPath)) : null;
        if (cfg != null && cfg.RootElement.TryGetProperty("added_tokens_decoder", out var dec) && dec.ValueKind == JsonValueKind.Object)
            foreach (var p in dec.EnumerateObject())
            {
                if (!int.TryParse(p.Name, out var id))
                    throw new UserInputException($"{configPath}: added_tokens_decoder key '{p.Name}' is not an integer id");
                var special = p.Value.TryGetProperty("special", out var s) && s.ValueKind == JsonValueKind.True;
                Put(p.Value.GetProperty("content").GetString()!, id, special ? Control : UserDefined, "added token");
            }

        var merges = new List<string>();
        foreach (var e in Get(model, "merges", jsonPath).EnumerateArray())
            merges.Add(e.ValueKind == JsonValueKind.Array ? e[0].GetString() + " " + e[1].GetString() : e.GetString()!);
        if (merges.Count == 0) throw new UserInputException($"{jsonPath}: model.merges is empty; llama.cpp's gpt2 tokenizer needs merges");

        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < vocabSize; i++)
        {
            if (tokens[i] is null) { tokens[i] = $"[PAD{i}]"; types[i] = Unused; }
            else ids.TryAdd(tokens[i]!, i);
        }

        m.String("tokenizer.ggml.model", "gpt2")
         .String("tokenizer.ggml.pre", PreByRegex.TryGetValue(SplitRegex(root) ?? "", out var pre) ? pre
             : throw new UserInputException($"{jsonPath}: pre_tokenizer Split regex '{SplitRegex(root)}' is neither Qwen3's nor Qwen3.5's; llama.cpp has no matching pre-tokenizer, so no GGUF tokenizer can be written"))
         .StringArray("tokenizer.ggml.tokens", tokens!)
         .I32Array("tokenizer.ggml.token_type", types)
         .StringArray("tokenizer.ggml.merges", merges);

        string? template = null;
        if (cfg != null)
        {
            foreach (var (key, ggufKey) in new[] { ("eos_token", "tokenizer.ggml.eos_token_id"), ("pad_token", "tokenizer.ggml.padding_token_id"), ("bos_token", "tokenizer.ggml.bos_token_id") })
                if (QwenTokenizer.TokenString(cfg.RootElement, key) is { } t)
                    m.U32(ggufKey, ids.TryGetValue(t, out var id) ? (uint)id
                        : throw new UserInputException($"{configPath}: {key} '{t}' is not a token of {jsonPath}"));
            if (cfg.RootElement.TryGetProperty("chat_template", out var ct) && ct.ValueKind == JsonValueKind.String)
                template = ct.GetString();
        }
        // Newer checkpoints keep the template in its own file, which transformers prefers over the config's.
        var jinja = Path.Combine(dir, "chat_template.jinja");
        if (File.Exists(jinja)) template = File.ReadAllText(jinja);
        m.Bool("tokenizer.ggml.add_bos_token", false);
        if (template != null) m.String("tokenizer.chat_template", template);
        return m;
    }

    static string? SplitRegex(JsonElement root)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object) return null;
        var list = pre.TryGetProperty("pretokenizers", out var l) && l.ValueKind == JsonValueKind.Array ? l.EnumerateArray().ToList() : [pre];
        foreach (var p in list)
            if (p.TryGetProperty("type", out var t) && t.GetString() == "Split"
                && p.TryGetProperty("pattern", out var pat) && pat.TryGetProperty("Regex", out var r))
                return r.GetString();
        return null;
    }

    static JsonElement Get(JsonElement e, string key, string src) =>
        e.TryGetProperty(key, out var v) ? v : throw new UserInputException($"{src}: '{key}' is missing");
}
