using System.Text;

namespace Qwen35.Data;

/// <summary>
/// Text decoded from a run of token ids: byte pieces are collected and turned into UTF-8 together (a character may be
/// cut between ids), whole-text pieces (added tokens) end the run. Invalid UTF-8 becomes U+FFFD, like the Rust
/// tokenizers' lossy decode.
/// </summary>
sealed class DecodedText
{
    readonly StringBuilder _text = new();
    readonly List<byte> _bytes = [];

    public void AddBytes(params ReadOnlySpan<byte> bytes) => _bytes.AddRange(bytes);

    public void AddText(string text)
    {
        Flush();
        _text.Append(text);
    }

    public override string ToString()
    {
        Flush();
        return _text.ToString();
    }

    void Flush()
    {
        if (_bytes.Count == 0) return;
        _text.Append(Encoding.UTF8.GetString(_bytes.ToArray()));
        _bytes.Clear();
    }
}
