using Qwen35.Safety.Judging;

namespace Qwen35.Safety.Tests;

/// <summary>Python 3's repr of str and of a one-element list; each expectation is what CPython 3.12 prints.</summary>
public class PythonReprTests
{
    [TestCase("質問", "'質問'")]
    [TestCase("a\nb\tc\rd", @"'a\nb\tc\rd'")]
    [TestCase("it's", "\"it's\"")]                       // a ' and no " : double quotes
    [TestCase("it's \"x\"", @"'it\'s ""x""'")]           // both: single quotes, the ' escaped
    [TestCase("back\\slash", @"'back\\slash'")]
    [TestCase("全角\u3000空白", @"'全角\u3000空白'")]      // U+3000 is a separator: not printable for Python
    [TestCase("nbsp\u00a0", @"'nbsp\xa0'")]
    [TestCase("bell\u0007del\u007f", @"'bell\x07del\x7f'")]
    [TestCase("bom\ufeff", @"'bom\ufeff'")]
    [TestCase("emoji😀", "'emoji😀'")]                    // printable outside the BMP: as it is
    [TestCase("pua\U000F0000", @"'pua\U000f0000'")]       // private use outside the BMP: \U and 8 digits
    public void Str_matches_cpython(string value, string expected) =>
        Assert.That(PythonRepr.Str(value), Is.EqualTo(expected));

    [Test]
    public void List_of_one_string_and_of_none()
    {
        Assert.That(PythonRepr.List("回答です。"), Is.EqualTo("['回答です。']"));
        Assert.That(PythonRepr.List(null), Is.EqualTo("[None]"));
    }

    [Test]
    public void Lone_surrogate_is_escaped() =>
        Assert.That(PythonRepr.Str("x\ud800y"), Is.EqualTo(@"'x\ud800y'"));
}
