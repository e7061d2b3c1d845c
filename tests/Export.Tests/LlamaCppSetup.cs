using Qwen35.Export.LlamaCpp;

namespace Qwen35.Export.Tests;

/// <summary>Routes llama.cpp's log (hundreds of lines per load) away from the test output, keeping warnings and
/// errors, before the native library loads. A library that cannot load still throws in the tests that use it.</summary>
[SetUpFixture]
public sealed class LlamaCppSetup
{
    [OneTimeSetUp]
    public void QuietLog() => LlamaCppRunner.QuietLog(TestContext.Progress.WriteLine);
}
