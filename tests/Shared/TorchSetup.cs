using System.Runtime.CompilerServices;

namespace Qwen35.Tests;

static class TorchSetup
{
    /// <summary>Patches TorchSharp's native shim before any test touches <c>torch</c> (see TorchSharpNativePatch).</summary>
    [ModuleInitializer]
    internal static void Init() => Qwen35.Models.Runtime.TorchSharpNativePatch.EnsureApplied();
}
