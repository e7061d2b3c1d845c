using System.Text;

namespace Qwen35.Data;

/// <summary>
/// The built-in tokenizer of the embedded tiny model: ids 0..255 are the UTF-8 bytes, ids 256.. are Qwen's added
/// tokens in Qwen's order (<c>&lt;|endoftext|&gt;</c>, <c>&lt;|im_start|&gt;</c>, <c>&lt;|im_end|&gt;</c>, ...,
/// <c>&lt;think&gt;</c>, <c>&lt;/think&gt;</c>), matched whole before byte encoding. Needs no file or download, so the
/// whole pipeline (chat template, masks, training) runs anywhere; its vocabulary (282) fits the tiny config's 512.
/// </summary>
public sealed class ByteLevelTokenizer : ITokenizer
{
    /// <summary>Qwen's added tokens, in the order of Qwen's tokenizer.json (ids 256 + index here).</summary>
    public static readonly IReadOnlyList<string> QwenAddedTokens =
    [
        "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>", "<|box_start|>",
        "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>",
        "<|image_pad|>", "<|video_pad|>", "<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>",
        "<|fim_suffix|>", "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
        "<think>", "</think>",
    ];

    readonly Dictionary<string, int> _added;
    readonly AddedTokenMatcher _matcher;

    ByteLevelTokenizer()
    {
        _added = QwenAddedTokens.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => 256 + p.i, StringComparer.Ordinal);
        _matcher = new AddedTokenMatcher(_added);
    }

    /// <summary>The one built-in instance (immutable, thread-safe).</summary>
    public static ByteLevelTokenizer BuiltIn() => Instance;
    static readonly ByteLevelTokenizer Instance = new();

    public int VocabSize => 256 + QwenAddedTokens.Count;
    public int EndOfTurnId => _added["<|im_end|>"];
    public int PadId => _added["<|endoftext|>"];
    public IReadOnlyList<int> StopIds => [EndOfTurnId, PadId];

    public int[] Encode(string text) => EncodeWithOffsets(text).Ids;

    public (int[] Ids, (int Start, int End)[] Offsets) EncodeWithOffsets(string text)
    {
        var ids = new List<int>(text.Length * 2);
        var offsets = new List<(int, int)>(text.Length * 2);
        Span<byte> buffer = stackalloc byte[4];
        foreach (var seg in _matcher.Split(text))
        {
            if (seg.IsAdded) { ids.Add(seg.Id); offsets.Add((seg.Start, seg.End)); continue; }
            for (var c = seg.Start; c < seg.End;)
            {
                var width = char.IsHighSurrogate(text[c]) && c + 1 < seg.End && char.IsLowSurrogate(text[c + 1]) ? 2 : 1;
                var n = Encoding.UTF8.GetBytes(text.AsSpan(c, width), buffer);
                // Every byte of a character maps back to the whole character.
                for (var k = 0; k < n; k++) { ids.Add(buffer[k]); offsets.Add((c, c + width)); }
                c += width;
            }
        }
        return (ids.ToArray(), offsets.ToArray());
    }

    public string Decode(IEnumerable<int> ids)
    {
        var text = new DecodedText();
        foreach (var id in ids)
        {
            if (id is >= 0 and < 256) { text.AddBytes((byte)id); continue; }
            if (id < 256 || id >= VocabSize) throw new ArgumentOutOfRangeException(nameof(ids), $"token id {id} is outside the built-in vocabulary (size {VocabSize})");
            text.AddText(QwenAddedTokens[id - 256]);
        }
        return text.ToString();
    }

    public int? TokenToId(string token)
    {
        if (_added.TryGetValue(token, out var id)) return id;
        var bytes = Encoding.UTF8.GetBytes(token);
        return bytes.Length == 1 ? bytes[0] : null;
    }
}
