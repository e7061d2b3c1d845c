using System.Text;
using System.Text.Json.Nodes;

namespace Qwen35.Data;

/// <summary>Options of one render (the variables the Jinja template reads besides <c>messages</c>).</summary>
/// <param name="AddGenerationPrompt">Append <c>&lt;|im_start|&gt;assistant\n</c> and the thinking opener.</param>
/// <param name="EnableThinking">null = not passed (the template's default: thinking on); false = the empty think block.</param>
/// <param name="Tools">Tool schemas (JSON objects) rendered into the system turn.</param>
public sealed record ChatRenderOptions(bool AddGenerationPrompt = false, bool? EnableThinking = null, JsonArray? Tools = null);

/// <summary>
/// Where one message landed in the rendered text (UTF-16 indices into <see cref="RenderedChat.Text"/>).
/// </summary>
/// <param name="MessageIndex">Index into the messages.</param>
/// <param name="Role">The message role.</param>
/// <param name="Start">Start of the turn (its <c>&lt;|im_start|&gt;</c>, or its <c>\n&lt;tool_response&gt;</c>).</param>
/// <param name="ContentStart">Start of the rendered (trimmed) content.</param>
/// <param name="ContentEnd">End of the rendered content.</param>
/// <param name="RawContentOffset">Index in the message's own content where the rendered content starts (what the
/// template trimmed or split off before it), so content offsets map to text offsets by adding ContentStart - RawContentOffset.</param>
/// <param name="ThinkStart">Start of <c>&lt;think&gt;\n...\n&lt;/think&gt;\n\n</c> (-1: this turn has none).</param>
/// <param name="ThinkEnd">End of the think block (-1: none).</param>
/// <param name="BodyEnd">End of content plus tool calls (where <c>&lt;|im_end|&gt;</c> follows).</param>
/// <param name="EndTokenStart">Index of this turn's <c>&lt;|im_end|&gt;</c> (-1: a tool result inside a group has none).</param>
/// <param name="End">End of the turn including the newline after <c>&lt;|im_end|&gt;</c>.</param>
public sealed record RenderedTurn(int MessageIndex, string Role, int Start, int ContentStart, int ContentEnd,
    int RawContentOffset, int ThinkStart, int ThinkEnd, int BodyEnd, int EndTokenStart, int End);

/// <summary>A rendered conversation: the exact string of the Jinja template and where every message is in it.</summary>
public sealed record RenderedChat(string Text, IReadOnlyList<RenderedTurn> Turns, int LastQueryIndex);

/// <summary>An error the Jinja template would raise (<c>raise_exception</c>), with the message index when known.</summary>
public sealed class ChatTemplateException(string message) : UserInputException(message);

/// <summary>
/// The Qwen3.5 chat template (tests/fixtures/tokenizer/qwen3.5_chat_template.jinja) re-implemented in C#, so that
/// the rendered string equals transformers' <c>apply_chat_template</c> output character for character and the
/// position of every message is known for loss masks.
/// </summary>
/// <remarks>
/// Behaviour mirrored from the Jinja source: a system message only first; every content is trimmed with Python's
/// <c>str.strip()</c>; an assistant turn after the last real user query (a user turn that is not only a
/// <c>&lt;tool_response&gt;</c>) is rendered with <c>&lt;think&gt;\n{reasoning}\n&lt;/think&gt;\n\n</c>, earlier ones
/// without; the reasoning comes from <c>reasoning_content</c> or, failing that, from an inline
/// <c>&lt;think&gt;...&lt;/think&gt;</c> split exactly like the template (<c>split('&lt;/think&gt;')</c>, then
/// <c>lstrip('\n')</c> only); consecutive tool messages share one user turn; the generation prompt opens a think
/// block unless enable_thinking is false.
/// </remarks>
public static class ChatTemplate
{
    public const string ImStart = "<|im_start|>";
    public const string ImEnd = "<|im_end|>";
    const string ThinkOpen = "<think>";
    const string ThinkClose = "</think>";

    const string ToolsHeader = "# Tools\n\nYou have access to the following functions:\n\n<tools>";
    const string ToolsInstructions = "\n\nIf you choose to call a function ONLY reply in the following format with NO suffix:\n\n<tool_call>\n<function=example_function_name>\n<parameter=example_parameter_1>\nvalue_1\n</parameter>\n<parameter=example_parameter_2>\nThis is the value for the second parameter\nthat can span\nmultiple lines\n</parameter>\n</function>\n</tool_call>\n\n<IMPORTANT>\nReminder:\n- Function calls MUST follow the specified format: an inner <function=...></function> block must be nested within <tool_call></tool_call> XML tags\n- Required parameters MUST be specified\n- You may provide optional reasoning for your function call in natural language BEFORE the function call, but NOT after\n- If there is no function call available, answer the question like normal with your current knowledge and do not tell the user about function calls\n</IMPORTANT>";

    public static RenderedChat Render(IReadOnlyList<ChatMessage> messages, ChatRenderOptions? options = null)
    {
        options ??= new ChatRenderOptions();
        if (messages.Count == 0) throw new ChatTemplateException("No messages provided.");
        var sb = new StringBuilder();
        var turns = new List<RenderedTurn>();

        var tools = options.Tools is { Count: > 0 } ? options.Tools : null;
        if (tools != null)
        {
            sb.Append(ImStart).Append("system\n").Append(ToolsHeader);
            foreach (var tool in tools) sb.Append('\n').Append(PythonJson.Dumps(tool, ensureAscii: false));
            sb.Append("\n</tools>").Append(ToolsInstructions);
            if (messages[0].Role == Roles.System)
            {
                var (content, raw) = Trimmed(messages[0]);
                if (content.Length > 0) sb.Append("\n\n");
                var cs = sb.Length;
                sb.Append(content);
                AppendEnd(sb, turns, 0, Roles.System, 0, cs, raw, -1, -1, sb.Length);
            }
            else sb.Append(ImEnd).Append('\n');
        }
        else if (messages[0].Role == Roles.System)
        {
            var (content, raw) = Trimmed(messages[0]);
            sb.Append(ImStart).Append("system\n");
            var cs = sb.Length;
            sb.Append(content);
            AppendEnd(sb, turns, 0, Roles.System, 0, cs, raw, -1, -1, sb.Length);
        }

        var lastQuery = LastQueryIndex(messages);

        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            var (content, raw) = Trimmed(m);
            switch (m.Role)
            {
                case Roles.System:
                    if (i != 0) throw new ChatTemplateException($"System message must be at the beginning. (message {i})");
                    break;
                case Roles.User:
                {
                    var start = sb.Length;
                    sb.Append(ImStart).Append("user\n");
                    var cs = sb.Length;
                    sb.Append(content);
                    AppendEnd(sb, turns, i, m.Role, start, cs, raw, -1, -1, sb.Length);
                    break;
                }
                case Roles.Assistant:
                {
                    var reasoning = "";
                    if (m.ReasoningContent != null) reasoning = m.ReasoningContent;
                    else if (content.Contains(ThinkClose, StringComparison.Ordinal))
                    {
                        var before = content[..content.IndexOf(ThinkClose, StringComparison.Ordinal)].TrimEnd('\n');
                        var open = before.LastIndexOf(ThinkOpen, StringComparison.Ordinal);
                        reasoning = (open >= 0 ? before[(open + ThinkOpen.Length)..] : before).TrimStart('\n');
                        var after = content.LastIndexOf(ThinkClose, StringComparison.Ordinal) + ThinkClose.Length;
                        var lead = 0;
                        while (after + lead < content.Length && content[after + lead] == '\n') lead++;
                        raw += after + lead;
                        content = content[(after + lead)..];
                    }
                    reasoning = PyText.Strip(reasoning);

                    var start = sb.Length;
                    sb.Append(ImStart).Append("assistant\n");
                    int thinkStart = -1, thinkEnd = -1;
                    if (i > lastQuery)
                    {
                        thinkStart = sb.Length;
                        sb.Append(ThinkOpen).Append('\n').Append(reasoning).Append('\n').Append(ThinkClose).Append("\n\n");
                        thinkEnd = sb.Length;
                    }
                    var cs = sb.Length;
                    sb.Append(content);
                    var ce = sb.Length;
                    AppendToolCalls(sb, m, content);
                    AppendEnd(sb, turns, i, m.Role, start, cs, raw, thinkStart, thinkEnd, ce);
                    break;
                }
                case Roles.Tool:
                {
                    var start = sb.Length;
                    if (i > 0 && messages[i - 1].Role != Roles.Tool) sb.Append(ImStart).Append("user");
                    sb.Append("\n<tool_response>\n");
                    var cs = sb.Length;
                    sb.Append(content);
                    var ce = sb.Length;
                    sb.Append("\n</tool_response>");
                    var last = i == messages.Count - 1;
                    if (last || messages[i + 1].Role != Roles.Tool)
                        AppendEnd(sb, turns, i, m.Role, start, cs, raw, -1, -1, ce);
                    else
                        turns.Add(new RenderedTurn(i, m.Role, start, cs, ce, raw, -1, -1, sb.Length, -1, sb.Length));
                    break;
                }
                default:
                    throw new ChatTemplateException($"Unexpected message role. (message {i} has role '{m.Role}')");
            }
        }

        if (options.AddGenerationPrompt)
        {
            sb.Append(ImStart).Append("assistant\n");
            sb.Append(options.EnableThinking == false ? "<think>\n\n</think>\n\n" : "<think>\n");
        }
        return new RenderedChat(sb.ToString(), turns, lastQuery);
    }

    /// <summary>
    /// Index of the last user message that is a real query (not only a tool response); throws like the template
    /// when there is none.
    /// </summary>
    public static int LastQueryIndex(IReadOnlyList<ChatMessage> messages)
    {
        for (var i = messages.Count - 1; i >= 0; i--)
        {
            if (messages[i].Role != Roles.User) continue;
            var (content, _) = Trimmed(messages[i]);
            if (!(content.StartsWith("<tool_response>", StringComparison.Ordinal) && content.EndsWith("</tool_response>", StringComparison.Ordinal)))
                return i;
        }
        throw new ChatTemplateException("No user query found in messages.");
    }

    static (string Content, int RawOffset) Trimmed(ChatMessage m)
    {
        var raw = m.Content ?? "";
        var (a, n) = PyText.StripRange(raw, 0, raw.Length);
        return (raw.Substring(a, n), a);
    }

    static void AppendEnd(StringBuilder sb, List<RenderedTurn> turns, int index, string role, int start, int cs, int raw,
        int thinkStart, int thinkEnd, int contentEnd)
    {
        var bodyEnd = sb.Length;
        var endToken = sb.Length;
        sb.Append(ImEnd).Append('\n');
        turns.Add(new RenderedTurn(index, role, start, cs, contentEnd, raw, thinkStart, thinkEnd, bodyEnd, endToken, sb.Length));
    }

    static void AppendToolCalls(StringBuilder sb, ChatMessage m, string content)
    {
        if (m.ToolCalls is not { Count: > 0 }) return;
        for (var k = 0; k < m.ToolCalls.Count; k++)
        {
            var call = m.ToolCalls[k];
            if (k == 0) sb.Append(PyText.Strip(content).Length > 0 ? "\n\n<tool_call>\n<function=" : "<tool_call>\n<function=");
            else sb.Append("\n<tool_call>\n<function=");
            sb.Append(call.Name).Append(">\n");
            if (call.Arguments != null)
                foreach (var (name, value) in call.Arguments)
                {
                    sb.Append("<parameter=").Append(name).Append(">\n");
                    sb.Append(value is JsonObject or JsonArray ? PythonJson.Dumps(value, ensureAscii: false) : PythonJson.Str(value));
                    sb.Append("\n</parameter>\n");
                }
            sb.Append("</function>\n</tool_call>");
        }
    }
}
