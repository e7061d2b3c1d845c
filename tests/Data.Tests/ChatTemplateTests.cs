using System.Text.Json.Nodes;
using Qwen35.Data;
using Qwen35.Tests;

namespace Qwen35.Data.Tests;

public class ChatTemplateTests
{
    static ChatRenderOptions Options(JsonObject render) => new(
        AddGenerationPrompt: (bool)render["add_generation_prompt"]!,
        EnableThinking: render["enable_thinking_passed"] is { } passed && (bool)passed! ? (bool?)render["enable_thinking"] : null);

    static IReadOnlyList<ChatMessage> Messages(JsonObject conversation, int count) =>
        ConversationJson.ParseMessages(new JsonArray(conversation["messages"]!.AsArray().Take(count).Select(m => m!.DeepClone()).ToArray()), "messages");

    [TestCaseSource(typeof(TokenizerFixtures), nameof(TokenizerFixtures.RenderIds))]
    public void Render_EqualsJinjaOutput(string renderId)
    {
        var (conv, render) = TokenizerFixtures.Render(renderId);
        var rendered = ChatTemplate.Render(Messages(conv, (int)render["messages_used"]!), Options(render));
        Assert.That(rendered.Text, Is.EqualTo((string)render["text"]!));
    }

    [TestCaseSource(typeof(TokenizerFixtures), nameof(TokenizerFixtures.RenderIds))]
    public void RenderThenEncode_EqualsReferenceIds(string renderId)
    {
        var (conv, render) = TokenizerFixtures.Render(renderId);
        var rendered = ChatTemplate.Render(Messages(conv, (int)render["messages_used"]!), Options(render));
        Assert.That(TokenizerFixtures.Qwen3.Encode(rendered.Text), Is.EqualTo(TokenizerFixtures.Ids(render["expected"]!)));
    }

    static JsonArray ExtraRenders => JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.Fixtures, "chat_extra", "chat_extra.json")))!["renders"]!.AsArray();

    public static IEnumerable<int> ExtraIndices => Enumerable.Range(0, ExtraRenders.Count);

    [TestCaseSource(nameof(ExtraIndices))]
    public void Render_ToolsReasoningAndErrors_EqualJinja(int index)
    {
        var r = ExtraRenders[index]!.AsObject();
        var options = new ChatRenderOptions((bool)r["add_generation_prompt"]!, (bool?)r["enable_thinking"], r["tools"] as JsonArray);
        var raw = r["messages"]!.AsArray();
        if (r["error"] is { } error)
        {
            // The template raises; so must we (parsing may already refuse an unknown role, with the field named).
            var e = Assert.Catch<UserInputException>(() =>
                ChatTemplate.Render(raw.Count == 0 ? [] : raw.Select(m => Lenient(m!.AsObject())).ToList(), options));
            Assert.That(e!.Message, Does.StartWith((string)error!), (string)r["id"]!);
            return;
        }
        var rendered = ChatTemplate.Render(ConversationJson.ParseMessages(raw.DeepClone(), "messages"), options);
        Assert.That(rendered.Text, Is.EqualTo((string)r["text"]!), (string)r["id"]!);
    }

    // Error fixtures include roles the parser refuses; build those messages directly so the template itself is tested.
    static ChatMessage Lenient(JsonObject m) => new((string)m["role"]!, (string?)m["content"]);

    [Test]
    public void Turns_LocateContentThinkBlockAndEndToken()
    {
        var messages = new List<ChatMessage>
        {
            new(Roles.System, "  sys "),
            new(Roles.User, "q1"),
            new(Roles.Assistant, "a1"),
            new(Roles.User, "q2"),
            new(Roles.Assistant, "<think>r</think>\n\n a2 "),
        };
        var r = ChatTemplate.Render(messages);
        var t = r.Text;
        Assert.That(r.Turns.Select(x => x.MessageIndex), Is.EqualTo(new[] { 0, 1, 2, 3, 4 }));
        foreach (var turn in r.Turns)
        {
            Assert.That(t.Substring(turn.EndTokenStart, ChatTemplate.ImEnd.Length), Is.EqualTo(ChatTemplate.ImEnd));
            Assert.That(t[turn.End - 1], Is.EqualTo('\n'));
            var raw = messages[turn.MessageIndex].Content!;
            // RawContentOffset maps the rendered content back into the message's own string.
            Assert.That(t[turn.ContentStart..turn.ContentEnd], Is.EqualTo(raw.Substring(turn.RawContentOffset, turn.ContentEnd - turn.ContentStart)));
        }
        Assert.That(r.LastQueryIndex, Is.EqualTo(3));
        Assert.That(r.Turns[2].ThinkStart, Is.EqualTo(-1), "assistant before the last query has no think block");
        var last = r.Turns[4];
        Assert.That(t[last.ThinkStart..last.ThinkEnd], Is.EqualTo("<think>\nr\n</think>\n\n"));
        // After </think> the template strips only '\n' (lstrip('\n')), so the space before a2 stays.
        Assert.That(t[last.ContentStart..last.ContentEnd], Is.EqualTo(" a2"));
        Assert.That(last.ContentStart, Is.EqualTo(last.ThinkEnd));
    }
}
