using TorchSharp;

namespace Qwen35.Training.Tests;

/// <summary>
/// One intra-op thread for the whole test assembly: the tiny model's ops are far too small to split, and on a shared
/// 2-core machine OpenMP spinning made a backward pass 20-50x slower with 2 threads than with 1.
/// </summary>
[SetUpFixture]
public class TorchThreads
{
    [OneTimeSetUp]
    public void SingleThread() => torch.set_num_threads(1);
}
