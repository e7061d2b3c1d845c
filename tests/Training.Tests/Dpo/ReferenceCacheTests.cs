using Qwen35.Tests;
using Qwen35.Training.Dpo;

namespace Qwen35.Training.Tests.Dpo;

public class ReferenceCacheTests
{
    [Test]
    public void CachedReferenceLogProbsEqualRecomputedOnesAndAChangeIsNamed()
    {
        var pairs = DpoFixtures.Pairs(5, (6, 4, 5), (3, 7, 2), (8, 3, 3));
        using var model = DpoFixtures.Model();
        var data = new DpoData(pairs.Take(2).ToList(), pairs.Skip(2).ToList(), 2, packing: true, rowLength: 32, padId: 0, seed: 1);
        var (chosen, rejected) = ReferenceLogps.Compute(model, data, baseModel: true);
        var path = Path.Combine(TestPaths.TempDir("ref-cache"), ReferenceLogps.FileName);
        const string fingerprint = "model=builtin:tiny@seed3;reference=base;precision=fp32;device=CPU";
        ReferenceLogps.Save(path, fingerprint, data.All, chosen, rejected);

        var again = ReferenceLogps.Compute(model, data, baseModel: true);
        var cached = ReferenceLogps.TryLoad(path, fingerprint, data.All, out var why);
        Assert.That(why, Is.Null);
        Assert.That(cached!.Value.Chosen, Is.EqualTo(again.Chosen), "bit for bit: the JSON keeps every double exactly");
        Assert.That(cached.Value.Rejected, Is.EqualTo(again.Rejected));

        // The base model (adapter off) is not the policy with its random LoRA B.
        var withAdapter = ReferenceLogps.Compute(model, data, baseModel: false);
        Assert.That(withAdapter.Chosen, Is.Not.EqualTo(chosen));

        Assert.That(ReferenceLogps.TryLoad(path, fingerprint.Replace("base", "adapter:x"), data.All, out why), Is.Null);
        Assert.That(why, Does.Contain("was computed for " + fingerprint));
        var changed = pairs.Select((p, i) => i == 1 ? p with { ChosenIds = [.. p.ChosenIds, 7] } : p).ToList();
        Assert.That(ReferenceLogps.TryLoad(path, fingerprint, changed, out why), Is.Null);
        Assert.That(why, Does.Contain("pair 1 (synthetic.jsonl line 2) differs from the cached one"));
        Assert.That(ReferenceLogps.TryLoad(path, fingerprint, changed.Take(2).ToList(), out why), Is.Null);
        Assert.That(why, Does.Contain("holds 3 pairs, the data has 2"));
    }
}
