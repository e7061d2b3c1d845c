namespace Qwen35.Data;

/// <summary>
/// The tokenizer surface the trainer uses. Implementations: <see cref="QwenTokenizer"/> (a Hugging Face
/// tokenizer.json) and <see cref="ByteLevelTokenizer"/> (the built-in byte tokenizer of the embedded tiny model).
/// </summary>
public interface ITokenizer
{
    /// <summary>Token ids of <paramref name="text"/>; added tokens (<c>&lt;|im_end|&gt;</c>, ...) are matched whole.</summary>
    int[] Encode(string text);

    /// <summary>
    /// Token ids plus, for each token, the half-open UTF-16 range [Start, End) of the ORIGINAL (un-normalised) input
    /// that the token came from. A character whose UTF-8 bytes are split over several tokens gives each of those
    /// tokens the whole character's range (ranges may then overlap). When the normaliser (NFC) rewrites a piece, a
    /// token maps to the original text elements (grapheme clusters) its normalised characters came from.
    /// </summary>
    (int[] Ids, (int Start, int End)[] Offsets) EncodeWithOffsets(string text);

    /// <summary>Text of the ids; added tokens decode to their literal content (nothing is skipped).</summary>
    string Decode(IEnumerable<int> ids);

    /// <summary>Id of a vocabulary or added token given as its literal string, or null.</summary>
    int? TokenToId(string token);

    /// <summary>Number of ids (largest id + 1), base vocabulary and added tokens together.</summary>
    int VocabSize { get; }

    /// <summary>The end-of-turn id <c>&lt;|im_end|&gt;</c>.</summary>
    int EndOfTurnId { get; }

    /// <summary>The padding id <c>&lt;|endoftext|&gt;</c>.</summary>
    int PadId { get; }

    /// <summary>Ids that end generation (<c>&lt;|im_end|&gt;</c>, <c>&lt;|endoftext|&gt;</c>).</summary>
    IReadOnlyList<int> StopIds { get; }
}
