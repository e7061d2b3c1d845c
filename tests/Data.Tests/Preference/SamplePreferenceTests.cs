using Qwen35.Data.Preference;
using Qwen35.Tests;

namespace Qwen35.Data.Tests.Preference;

/// <summary>The shipped Japanese preference sample (data/sample/ja_preference_sample.jsonl) and its card.</summary>
public class SamplePreferenceTests
{
    public static string SamplePath => Path.Combine(TestPaths.RepoRoot, "data", "sample", "ja_preference_sample.jsonl");

    static readonly string[] Categories = ["anti_hallucination", "mid_refusal", "overrefusal_prevention", "safety_refusal"];

    [Test]
    public void Sample_Validates_AtLeast60Pairs_AllFourCategories_BothFormats()
    {
        var read = PreferenceReader.Read(SamplePath); // fail-fast: any bad row throws
        Assert.That(read.ErrorCount, Is.Zero);
        Assert.That(read.Count, Is.GreaterThanOrEqualTo(60));
        var counts = CategoryTools.Counts(read.Select(e => e.Category));
        Assert.That(counts.Keys, Is.EqualTo(Categories));
        Assert.That(counts.Values, Is.All.GreaterThanOrEqualTo(15));
        Assert.That(read.Formats[PreferenceFormat.Standard], Is.GreaterThanOrEqualTo(4));
        Assert.That(read.Formats[PreferenceFormat.Conversational], Is.GreaterThanOrEqualTo(40));
        Assert.That(read.Select(e => e.Id).Distinct().Count(), Is.EqualTo(read.Count), "ids are unique");
    }

    [Test]
    public void Card_StatesTheCountsOfTheFile()
    {
        var read = PreferenceReader.Read(SamplePath);
        var card = File.ReadAllText(Path.Combine(TestPaths.RepoRoot, "data", "sample", "ja_preference_sample.md"));
        foreach (var (category, count) in CategoryTools.Counts(read.Select(e => e.Category)))
            Assert.That(card, Does.Contain($"| `{category}` | {count} |"), category);
        Assert.That(card, Does.Contain($"| **total** | **{read.Count}** |"));
    }

    [Test]
    public void Sample_Tokenizes_ForTheTinyModel_WithNothingDropped()
    {
        // The tiny recipes use the byte-level tokenizer and max_length 1024: every pair must fit whole.
        var pairs = PreferenceTokenizer.Tokenize(PreferenceReader.Read(SamplePath), new SftEncoder(ByteLevelTokenizer.BuiltIn()), maxLength: 1024);
        Assert.That(pairs.Report.Dropped, Is.Zero);
        Assert.That(pairs.Report.Truncated, Is.Zero);
        Assert.That(pairs.Report.LongestSequence, Is.LessThanOrEqualTo(1024));
        Assert.That(pairs.Report.KeptPerCategory.Keys, Is.EqualTo(Categories));
    }
}
