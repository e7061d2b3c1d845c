using static TorchSharp.torch;

namespace Qwen35.Models;

/// <summary>
/// Casts that cost nothing when the dtype already matches. <c>x.to(dtype)</c> on a tensor of that dtype returns an
/// alias, but it is still a call through libtorch's dispatcher and a new managed handle: in an fp32 model the fp32
/// casts of the norms and the delta rule were ~80 such calls per step (docs/performance.md).
/// </summary>
public static class DtypeCasts
{
    /// <summary><paramref name="x"/> itself when it already has <paramref name="dtype"/>, else <c>x.to(dtype)</c>.</summary>
    public static Tensor InDtype(this Tensor x, ScalarType dtype) => x.dtype == dtype ? x : x.to(dtype);
}
