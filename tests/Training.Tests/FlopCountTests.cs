using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Training.Bench;

namespace Qwen35.Training.Tests;

public class FlopCountTests
{
    [Test]
    public void CountFromModulesEqualsCountFromConfig()
    {
        using var model = Qwen35ForCausalLM.CreateRandom(Qwen35TextConfig.Tiny(), 0);
        var fromModel = FlopCount.For(model, 256);
        Assert.That(fromModel, Is.EqualTo(FlopCount.FromConfig(Qwen35TextConfig.Tiny(), 256)));
        Assert.That(fromModel.MatmulParams, Is.GreaterThan(0));
    }

    // docs/training.md, "`bench`": N = 6.92 B / 24.35 B; LoRA model FLOPs at S = 4096 are
    // 32.9 / 105.8 GFLOP per token (those figures also count the small GDN core, hence the 2% tolerance).
    [TestCase("9b", 6.92e9, 32.9e9)]
    [TestCase("27b", 24.35e9, 105.8e9)]
    public void PublishedShapesMatchTheDerivedNumbers(string shape, double n, double perToken)
    {
        var f = FlopCount.FromConfig(PublishedShapes.Get(shape, null), 4096);
        Assert.That(f.MatmulParams, Is.EqualTo(n).Within(0.005 * n));
        Assert.That(f.PerToken, Is.EqualTo(perToken).Within(0.02 * perToken));
    }
}
