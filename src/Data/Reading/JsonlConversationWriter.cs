namespace Qwen35.Data;

/// <summary>Writes conversations as JSON lines in the trainer's canonical messages schema (temp file, then renamed).</summary>
public static class JsonlConversationWriter
{
    public static void Write(IEnumerable<Conversation> conversations, string path)
    {
        AtomicFile.WriteText(path, w =>
        {
            foreach (var c in conversations)
                w.Write(ConversationJson.ToJson(c).ToJsonString(JsonOptions) + "\n");
        });
    }

    // Keep Japanese readable in the output instead of \uXXXX escapes.
    static readonly System.Text.Json.JsonSerializerOptions JsonOptions = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
