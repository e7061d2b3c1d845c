using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace Qwen35.Data;

/// <summary>
/// A byte-level BPE tokenizer loaded from a Hugging Face <c>tokenizer.json</c> (Qwen2/Qwen3/Qwen3.5 layout):
/// added tokens matched whole in the raw text, the normaliser and Split regex read from the file, GPT-2 byte-level
/// alphabet, BPE merges by Microsoft.ML.Tokenizers.
/// </summary>
/// <remarks>
/// Pipeline for <see cref="Encode"/>: (1) split the raw text at added tokens (leftmost-longest, before any
/// normalisation, so <c>&lt;|im_end|&gt;</c> in user text is the special id like in transformers); (2) normalise each
/// remaining piece (NFC for Qwen3; whatever the file says, possibly nothing); (3) split it into words with the
/// file's regex; (4) BPE each word. Offsets are computed from the UTF-8 byte lengths of the vocabulary strings, so
/// they are exact even when one character's bytes are spread over two tokens.
/// </remarks>
public sealed class QwenTokenizer : ITokenizer
{
    readonly BpeTokenizer _bpe;
    readonly TextNormalizer _normalizer;
    readonly SplitPreTokenizer _preTokenizer;
    readonly AddedTokenMatcher _matcher;
    readonly Dictionary<string, int> _vocab;
    readonly Dictionary<string, int> _added;
    readonly byte[]?[] _idBytes;      // raw bytes of every base-vocabulary id
    readonly string?[] _addedContent; // literal content of every added-token id

    QwenTokenizer(BpeTokenizer bpe, TextNormalizer normalizer, SplitPreTokenizer preTokenizer,
        Dictionary<string, int> vocab, Dictionary<string, int> added, int endOfTurnId, int padId,
        IReadOnlyList<int> stopIds, string source)
    {
        _bpe = bpe;
        _normalizer = normalizer;
        _preTokenizer = preTokenizer;
        _vocab = vocab;
        _added = added;
        _matcher = new AddedTokenMatcher(added);
        VocabSize = Math.Max(vocab.Count == 0 ? 0 : vocab.Values.Max() + 1, added.Count == 0 ? 0 : added.Values.Max() + 1);
        _idBytes = new byte[]?[VocabSize];
        foreach (var (token, id) in vocab)
            _idBytes[id] = ByteLevelAlphabet.ToBytes(token)
                ?? throw new UserInputException($"{source}: vocabulary token '{token}' (id {id}) is not a byte-level string");
        _addedContent = new string?[VocabSize];
        foreach (var (content, id) in added) _addedContent[id] = content;
        EndOfTurnId = endOfTurnId;
        PadId = padId;
        StopIds = stopIds;
        Source = source;
    }

    /// <summary>The tokenizer.json this was loaded from.</summary>
    public string Source { get; }

    /// <summary>Whether the file's normaliser changes text (NFC for Qwen3).</summary>
    public bool Normalizes => !_normalizer.IsIdentity;

    public int VocabSize { get; }
    public int EndOfTurnId { get; }
    public int PadId { get; }
    public IReadOnlyList<int> StopIds { get; }

    /// <summary>
    /// Loads <c>tokenizer.json</c> from <paramref name="dir"/> and merges the <c>added_tokens_decoder</c> of
    /// <c>tokenizer_config.json</c> when that file exists (some Qwen3.5 checkpoints list <c>&lt;think&gt;</c> only there).
    /// </summary>
    public static QwenTokenizer FromFolder(string dir)
    {
        var jsonPath = Path.Combine(dir, "tokenizer.json");
        if (!File.Exists(jsonPath)) throw new UserInputException($"{jsonPath} not found (a tokenizer folder needs tokenizer.json)");
        var configPath = Path.Combine(dir, "tokenizer_config.json");
        return FromFiles(jsonPath, File.Exists(configPath) ? configPath : null);
    }

    /// <summary>Loads a tokenizer.json and an optional tokenizer_config.json.</summary>
    public static QwenTokenizer FromFiles(string tokenizerJsonPath, string? tokenizerConfigPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(tokenizerJsonPath), new JsonDocumentOptions { MaxDepth = 256 });
        var root = doc.RootElement;
        var src = tokenizerJsonPath;

        var model = Required(root, "model", src);
        var modelType = model.TryGetProperty("type", out var mt) ? mt.GetString() : "BPE";
        if (modelType != "BPE") throw new UserInputException($"{src}: model.type '{modelType}' is not supported (only BPE)");
        if (model.TryGetProperty("byte_fallback", out var bf) && bf.ValueKind == JsonValueKind.True)
            throw new UserInputException($"{src}: model.byte_fallback=true is not supported (byte-level BPE expected)");

        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in Required(model, "vocab", src).EnumerateObject()) vocab[p.Name] = p.Value.GetInt32();

        var merges = new List<string>();
        foreach (var m in Required(model, "merges", src).EnumerateArray())
        {
            // Newer files store merges as ["a","b"], older ones as "a b"; byte-level tokens never hold a space.
            merges.Add(m.ValueKind == JsonValueKind.Array ? m[0].GetString() + " " + m[1].GetString() : m.GetString()!);
        }

        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out var at) && at.ValueKind == JsonValueKind.Array)
            foreach (var t in at.EnumerateArray()) AddToken(t, t.GetProperty("id").GetInt32(), added, src);

        string? eosToken = null, padToken = null;
        if (tokenizerConfigPath != null)
        {
            using var cfg = JsonDocument.Parse(File.ReadAllBytes(tokenizerConfigPath));
            if (cfg.RootElement.TryGetProperty("added_tokens_decoder", out var dec) && dec.ValueKind == JsonValueKind.Object)
                foreach (var p in dec.EnumerateObject())
                {
                    if (!int.TryParse(p.Name, out var id))
                        throw new UserInputException($"{tokenizerConfigPath}: added_tokens_decoder key '{p.Name}' is not an integer id");
                    AddToken(p.Value, id, added, tokenizerConfigPath);
                }
            eosToken = TokenString(cfg.RootElement, "eos_token");
            padToken = TokenString(cfg.RootElement, "pad_token");
        }

        var normalizer = TextNormalizer.FromJson(root.TryGetProperty("normalizer", out var n) ? n : null, src);
        var pre = ReadPreTokenizer(root, src);

        var options = new BpeOptions(vocab)
        {
            Merges = merges,
            ByteLevel = true,
            // Words arrive already split by our own Split pre-tokenizer; BPE must see each word whole.
            PreTokenizer = new WholeTextPreTokenizer(),
        };
        var bpe = BpeTokenizer.Create(options);

        int Need(string token) => added.TryGetValue(token, out var id) ? id
            : throw new UserInputException($"{src}: the added token {token} is missing (needed as end-of-turn/pad token)");
        var endOfTurn = eosToken != null && added.ContainsKey(eosToken) ? added[eosToken] : Need("<|im_end|>");
        var pad = padToken != null && added.ContainsKey(padToken) ? added[padToken] : Need("<|endoftext|>");
        var stops = new List<int> { endOfTurn };
        if (added.TryGetValue("<|im_end|>", out var imEnd) && !stops.Contains(imEnd)) stops.Add(imEnd);
        if (added.TryGetValue("<|endoftext|>", out var eot) && !stops.Contains(eot)) stops.Add(eot);

        return new QwenTokenizer(bpe, normalizer, pre, vocab, added, endOfTurn, pad, stops, src);
    }

    /// <summary>A special-token entry of tokenizer_config.json (<c>eos_token</c>, <c>pad_token</c>, …): a string, or an
    /// object with <c>content</c>; null when absent. Shared with the GGUF exporter, which reads the same file.</summary>
    public static string? TokenString(JsonElement cfg, string key)
    {
        if (!cfg.TryGetProperty(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.String => v.GetString(),
            JsonValueKind.Object when v.TryGetProperty("content", out var c) => c.GetString(),
            _ => null,
        };
    }

    static void AddToken(JsonElement t, int id, Dictionary<string, int> added, string src)
    {
        var content = t.GetProperty("content").GetString() ?? throw new UserInputException($"{src}: added token {id} has no content");
        foreach (var flag in new[] { "lstrip", "rstrip", "single_word" })
            if (t.TryGetProperty(flag, out var f) && f.ValueKind == JsonValueKind.True)
                throw new UserInputException($"{src}: added token '{content}' (id {id}) sets {flag}=true, which this loader does not implement");
        if (added.TryGetValue(content, out var existing) && existing != id)
            throw new UserInputException($"{src}: added token '{content}' has id {id} but was already declared with id {existing}");
        added[content] = id;
    }

    static SplitPreTokenizer ReadPreTokenizer(JsonElement root, string src)
    {
        if (!root.TryGetProperty("pre_tokenizer", out var pre) || pre.ValueKind != JsonValueKind.Object)
            throw new UserInputException($"{src}: pre_tokenizer is missing (expected Sequence[Split, ByteLevel])");
        var steps = pre.GetProperty("type").GetString() == "Sequence"
            ? pre.GetProperty("pretokenizers").EnumerateArray().ToList()
            : [pre];
        SplitPreTokenizer? split = null;
        var sawByteLevel = false;
        foreach (var step in steps)
        {
            var type = step.GetProperty("type").GetString();
            if (type == "Split" && split == null)
            {
                var behavior = step.TryGetProperty("behavior", out var b) ? b.GetString() : null;
                var invert = step.TryGetProperty("invert", out var inv) && inv.ValueKind == JsonValueKind.True;
                if (behavior != "Isolated" || invert)
                    throw new UserInputException($"{src}: pre_tokenizer Split behavior '{behavior}' invert={invert} is not supported (Isolated, invert=false)");
                var pattern = step.GetProperty("pattern");
                var regex = pattern.TryGetProperty("Regex", out var r) ? r.GetString()
                    : throw new UserInputException($"{src}: pre_tokenizer Split pattern has no Regex");
                split = new SplitPreTokenizer(regex!, src);
            }
            else if (type == "ByteLevel")
            {
                if (step.TryGetProperty("use_regex", out var ur) && ur.ValueKind == JsonValueKind.True)
                    throw new UserInputException($"{src}: pre_tokenizer ByteLevel use_regex=true is not supported (Qwen uses Split + ByteLevel(use_regex=false))");
                if (step.TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True)
                    throw new UserInputException($"{src}: pre_tokenizer ByteLevel add_prefix_space=true is not supported");
                sawByteLevel = true;
            }
            else throw new UserInputException($"{src}: pre_tokenizer step '{type}' is not supported (expected Sequence[Split, ByteLevel])");
        }
        if (split == null || !sawByteLevel)
            throw new UserInputException($"{src}: pre_tokenizer must contain a Split(regex) and a ByteLevel step");
        return split;
    }

    static JsonElement Required(JsonElement e, string key, string src) =>
        e.TryGetProperty(key, out var v) ? v : throw new UserInputException($"{src}: missing '{key}'");

    public int[] Encode(string text)
    {
        var ids = new List<int>(text.Length / 2 + 4);
        EncodeCore(text, ids, null);
        return ids.ToArray();
    }

    public (int[] Ids, (int Start, int End)[] Offsets) EncodeWithOffsets(string text)
    {
        var ids = new List<int>(text.Length / 2 + 4);
        var offsets = new List<(int, int)>(text.Length / 2 + 4);
        EncodeCore(text, ids, offsets);
        return (ids.ToArray(), offsets.ToArray());
    }

    void EncodeCore(string text, List<int> ids, List<(int, int)>? offsets)
    {
        var words = new List<(int Start, int Length)>();
        foreach (var seg in _matcher.Split(text))
        {
            if (seg.IsAdded)
            {
                ids.Add(seg.Id);
                offsets?.Add((seg.Start, seg.End));
                continue;
            }
            var piece = text.Substring(seg.Start, seg.End - seg.Start);
            var normalized = _normalizer.Normalize(piece, out var startMap, out var endMap);
            words.Clear();
            _preTokenizer.Split(normalized, words);
            foreach (var (ws, wl) in words)
            {
                var word = normalized.Substring(ws, wl);
                var before = ids.Count;
                ids.AddRange(_bpe.EncodeToIds(word, considerPreTokenization: true, considerNormalization: false));
                if (offsets == null) continue;
                AddWordOffsets(word, ids, before, offsets, (s, e) =>
                {
                    // Word-relative normalised [s, e) -> original text [start, end).
                    var ns = ws + s;
                    var ne = ws + e;
                    if (startMap == null) return (seg.Start + ns, seg.Start + ne);
                    return (seg.Start + startMap[ns], seg.Start + endMap![ne - 1]);
                });
            }
        }
    }

    /// <summary>Offsets of the tokens ids[first..] of one word, from the byte lengths of their vocabulary strings.</summary>
    void AddWordOffsets(string word, List<int> ids, int first, List<(int, int)> offsets, Func<int, int, (int, int)> map)
    {
        // byteToChar[b] = index of the char whose UTF-8 encoding holds byte b; charEnd[b] = index after that code point.
        var byteCount = Encoding.UTF8.GetByteCount(word);
        var byteStart = new int[byteCount];
        var byteEnd = new int[byteCount];
        var b = 0;
        for (var c = 0; c < word.Length;)
        {
            var width = char.IsHighSurrogate(word[c]) && c + 1 < word.Length && char.IsLowSurrogate(word[c + 1]) ? 2 : 1;
            var n = Encoding.UTF8.GetByteCount(word.AsSpan(c, width));
            for (var k = 0; k < n; k++) { byteStart[b + k] = c; byteEnd[b + k] = c + width; }
            b += n;
            c += width;
        }
        var pos = 0;
        for (var i = first; i < ids.Count; i++)
        {
            var len = _idBytes[ids[i]]?.Length ?? throw new InvalidOperationException($"BPE produced id {ids[i]}, which has no byte-level string");
            if (len == 0 || pos + len > byteCount) throw new InvalidOperationException($"token byte lengths do not add up for word '{word}'");
            offsets.Add(map(byteStart[pos], byteEnd[pos + len - 1]));
            pos += len;
        }
        if (pos != byteCount) throw new InvalidOperationException($"token byte lengths do not add up for word '{word}'");
    }

    public string Decode(IEnumerable<int> ids)
    {
        var text = new DecodedText();
        foreach (var id in ids)
        {
            if (id < 0 || id >= VocabSize) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is outside the vocabulary (size {VocabSize})");
            if (_addedContent[id] is { } content) text.AddText(content);
            else if (_idBytes[id] is { } raw) text.AddBytes(raw);
            else throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is not assigned in {Source}");
        }
        return text.ToString();
    }

    public int? TokenToId(string token)
    {
        if (_added.TryGetValue(token, out var id)) return id;
        var byteLevel = new string(Encoding.UTF8.GetBytes(token).Select(x => ByteLevelAlphabet.ByteToChar[x]).ToArray());
        if (_vocab.TryGetValue(byteLevel, out id)) return id;
        return _vocab.TryGetValue(token, out id) ? id : null;
    }

    /// <summary>Hands each word to BPE unsplit: the Split regex has already run.</summary>
    sealed class WholeTextPreTokenizer : PreTokenizer
    {
        public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) =>
            string.IsNullOrEmpty(text) ? [] : [(0, text.Length)];

        public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) =>
            text.IsEmpty ? [] : [(0, text.Length)];
    }
}
