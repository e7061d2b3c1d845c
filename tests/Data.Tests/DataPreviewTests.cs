using Qwen35.Data;

namespace Qwen35.Data.Tests;

public class DataPreviewTests
{
    [Test]
    public void Format_MarksTrainedAndRtoRuns_AndKeepsTheRenderedText()
    {
        var tok = ByteLevelTokenizer.BuiltIn();
        var enc = new SftEncoder(tok, new MaskOptions(RtoRefusal: "S"));
        var e = enc.EncodeDetailed(new Conversation(
        [
            new ChatMessage(Roles.User, "q"),
            ChatMessage.FromParts(Roles.Assistant, [new("lead ", false), new("bad", Rto: true), new(" no")]),
        ]));
        var shown = DataPreview.Format(e, enc.RefusalIdOrNull(), ansi: false);
        Assert.That(shown, Does.EndWith("</think>\n\nlead {{rto:bad}}[[ no<|im_end|>]]\n"));
        Assert.That(shown.Replace("[[", "").Replace("]]", "").Replace("{{rto:", "").Replace("}}", ""), Is.EqualTo(e.Text));
    }
}
