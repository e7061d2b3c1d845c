using Qwen35.Models;
using Qwen35.Tests;

namespace Qwen35.Training.Tests;

/// <summary>The one resolver of model, adapter, tokenizer, dtype and device: what it accepts and how it refuses.</summary>
public class SessionTests
{
    [Test]
    public void RelativeModelAndAdapterResolveAgainstTheBaseFolder()
    {
        var fixtures = Path.Combine(TestPaths.RepoRoot, "tests", "fixtures");
        var session = Session.Open(new SessionOptions { Model = "qwen35-tiny-a", Adapter = Path.Combine("qwen35-tiny-a", "adapter") }, fixtures);
        Assert.That(session.ModelDir, Is.EqualTo(TestPaths.GoldenTiny));
        Assert.That(session.AdapterDir, Is.EqualTo(Path.Combine(TestPaths.GoldenTiny, "adapter")));
        Assert.That(session.Config, Is.EqualTo(Models.Config.Qwen35TextConfig.Load(Path.Combine(TestPaths.GoldenTiny, "config.json"))));
    }

    [Test]
    public void BuiltinTinyHasTheBuiltinTokenizerAndTheTinyConfig()
    {
        var session = Session.Open(new SessionOptions { Precision = Precision.Bf16 });
        Assert.That(session.ModelDir, Is.Null);
        Assert.That(session.Config, Is.EqualTo(Session.BuiltinTinyConfig()));
        Assert.That(session.Tokenizer.VocabSize, Is.LessThanOrEqualTo(session.Config.VocabSize));
        Assert.That(session.Dtype, Is.EqualTo(TorchSharp.torch.ScalarType.BFloat16));
    }

    [TestCase("builtin:huge", "model: 'builtin:huge' is not a built-in model")]
    [TestCase("/no/such/folder", "model: '/no/such/folder' not found")]
    public void UnknownModelsAreBadInputNamingTheKey(string model, string expected)
    {
        var e = Assert.Throws<UserInputException>(() => Session.Open(new SessionOptions { Model = model }))!;
        Assert.That(e.Message, Does.StartWith(expected));
    }

    [Test]
    public void AModelPathThatIsAFileIsNamedAsSuch()
    {
        var file = Path.Combine(TestPaths.GoldenTiny, "config.json");
        var e = Assert.Throws<UserInputException>(() => Session.Open(new SessionOptions { Model = file }))!;
        Assert.That(e.Message, Does.StartWith($"model: '{file}' is a file, not a folder"));
    }

    [Test]
    public void AMissingAdapterIsBadInputBeforeAnyModelLoads()
    {
        var e = Assert.Throws<UserInputException>(() => Session.Open(new SessionOptions { Adapter = "/no/adapter" }))!;
        Assert.That(e.Message, Does.StartWith("adapter: '/no/adapter' not found"));
    }

    [TestCase("gpu")]
    [TestCase("cuda:x")]
    public void DeviceNamesOutsideTheVocabularyAreRefused(string device)
    {
        var e = Assert.Throws<UserInputException>(() => Session.Open(new SessionOptions { Device = device }))!;
        Assert.That(e.Message, Does.Contain("device").And.Contain(device).And.Contain("cpu, cuda, cuda:N"));
    }

    [Test]
    public void ATokenizerLargerThanTheModelVocabularyIsRefused()
    {
        // The golden tiny model has a 512-token vocabulary; the real Qwen tokenizer has about 151K tokens.
        var tokenizer = TestPaths.RequireShared("fixtures", "tokenizer", "qwen3");
        var session = Session.Open(new SessionOptions { Model = TestPaths.GoldenTiny, Tokenizer = tokenizer });
        var e = Assert.Throws<UserInputException>(() => _ = session.Tokenizer)!;
        Assert.That(e.Message, Does.StartWith("tokenizer: ").And.Contain("vocab_size"));
    }
}
