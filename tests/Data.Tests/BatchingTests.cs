using Qwen35.Data;

namespace Qwen35.Data.Tests;

public class BatchingTests
{
    static TokenizedExample Ex(int length, string category, int first = 1) =>
        new(Enumerable.Range(first, length).ToArray(), Enumerable.Range(first, length).Select(i => i % 2 == 0 ? i : -100).ToArray(), category, null);

    [Test]
    public void PaddingCollator_RightPads_LabelsIgnored_OneDocumentPerRow()
    {
        var b = PaddingCollator.Collate([Ex(3, "a"), Ex(5, "b", 10)], padId: 99);
        Assert.That((b.Rows, b.Length), Is.EqualTo((2, 5)));
        Assert.That(b.InputIds[..5], Is.EqualTo(new long[] { 1, 2, 3, 99, 99 }));
        Assert.That(b.InputIds[5..], Is.EqualTo(new long[] { 10, 11, 12, 13, 14 }));
        Assert.That(b.Labels[..5], Is.EqualTo(new long[] { -100, 2, -100, -100, -100 }));
        Assert.That(b.DocumentStarts, Is.EqualTo(new[] { new[] { 0 }, new[] { 0 } }));
        Assert.That(b.RealLengths, Is.EqualTo(new[] { 3, 5 }));
        Assert.That(b.Categories, Is.EqualTo(new[] { "a", "b" }));
        Assert.That(b.IsPacked, Is.False);
        Assert.That(b.HasPadding, Is.True);
    }

    [Test]
    public void Packer_RecordsDocumentStarts_AndMasksTheirLabels()
    {
        var docs = new[] { Ex(3, "a"), Ex(2, "b", 20), Ex(4, "c", 30) };
        var rows = Packer.PlanRows(docs.Select(d => d.Length).ToList(), [0, 1, 2], budget: 6);
        Assert.That(rows, Is.EqualTo(new[] { new List<int> { 0, 1 }, new List<int> { 2 } }));
        var b = Packer.Collate(rows.Select(r => (IReadOnlyList<TokenizedExample>)r.Select(i => docs[i]).ToList()).ToList(), 6, padId: 0);
        Assert.That(b.InputIds[..6], Is.EqualTo(new long[] { 1, 2, 3, 20, 21, 0 }));
        Assert.That(b.DocumentStarts, Is.EqualTo(new[] { new[] { 0, 3 }, new[] { 0 } }));
        Assert.That(b.RealLengths, Is.EqualTo(new[] { 5, 4 }));
        Assert.That(b.Labels[..6], Is.EqualTo(new long[] { -100, 2, -100, -100, -100, -100 }), "label of doc b's start (20) is masked");
        Assert.That(b.InputIds[6..], Is.EqualTo(new long[] { 30, 31, 32, 33, 0, 0 }));
        Assert.That(b.Categories, Is.EqualTo(new[] { "a", "b", "c" }));
        Assert.That(b.IsPacked, Is.True);
    }

    [Test]
    public void Packer_RefusesADocumentLongerThanTheBudget()
    {
        Assert.Throws<ArgumentException>(() => Packer.PlanRows([3, 9], [0, 1], 8));
    }

    [TestCase(false, false)]
    [TestCase(false, true)]
    [TestCase(true, false)]
    public void BatchPlan_IsDeterministic_AndUsesEveryExampleOnce(bool packing, bool groupByLength)
    {
        var rng = new DeterministicRandom(5);
        var examples = Enumerable.Range(0, 57).Select(i => Ex(1 + rng.Next(30), $"c{i % 3}", i * 100)).ToList();
        var options = new BatchingOptions(BatchSize: 4, MaxLength: 32, Packing: packing, GroupByLength: groupByLength);
        var a = BatchPlan.Create(examples, options, padId: 0, seed: 42);
        var b = BatchPlan.Create(examples, options, padId: 0, seed: 42);
        var c = BatchPlan.Create(examples, options, padId: 0, seed: 43);
        string Key(BatchPlan p) => string.Join("|", p.Batches.Select(x => string.Join(";", x.Select(r => string.Join(",", r)))));
        Assert.That(Key(a), Is.EqualTo(Key(b)));
        Assert.That(Key(a), Is.Not.EqualTo(Key(c)));
        Assert.That(a.Batches.SelectMany(x => x).SelectMany(r => r).Order(), Is.EqualTo(Enumerable.Range(0, 57)));
        var real = a.All().Sum(x => x.RealLengths.Sum());
        Assert.That(real, Is.EqualTo(examples.Sum(e => e.Length)), "no token lost or duplicated");
        if (packing) Assert.That(a.All().All(x => x.Length == 32), Is.True);
    }
}
