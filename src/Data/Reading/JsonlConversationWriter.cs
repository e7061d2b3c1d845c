using System.Text;

namespace Qwen35.Data;

/// <summary>Writes conversations as JSON lines in the trainer's canonical messages schema (temp file, then renamed).</summary>
public static class JsonlConversationWriter
{
    public static void Write(IEnumerable<Conversation> conversations, string path)
    {
        var full = Path.GetFullPath(path);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var temp = full + $".{Guid.NewGuid():N}.tmp";
        try
        {
            using (var w = new StreamWriter(temp, false, new UTF8Encoding(false)))
                foreach (var c in conversations)
                    w.Write(ConversationJson.ToJson(c).ToJsonString(JsonOptions) + "\n");
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    // Keep Japanese readable in the output instead of \uXXXX escapes.
    static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
