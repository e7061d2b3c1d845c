using TorchSharp;

namespace Qwen35.Cli.Tests;

/// <summary>One intra-op thread: the tiny model's ops are too small to split, and on a shared 2-core machine OpenMP
/// spinning made backward passes 20-50x slower with 2 threads.</summary>
[SetUpFixture]
public class TorchThreadsCli
{
    [OneTimeSetUp]
    public void SingleThread() => torch.set_num_threads(1);
}
