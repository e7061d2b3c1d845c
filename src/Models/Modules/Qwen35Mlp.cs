using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>SwiGLU MLP: down_proj(silu(gate_proj(x)) ⊙ up_proj(x)), no biases (HF <c>Qwen3_5MLP</c>).</summary>
public sealed class Qwen35Mlp : nn.Module<Tensor, Tensor>
{
    public Projection gate_proj;
    public Projection up_proj;
    public Projection down_proj;

    public Qwen35Mlp(int hidden, int intermediate, ScalarType dtype, Device? device) : base(nameof(Qwen35Mlp))
    {
        gate_proj = new Projection(hidden, intermediate, dtype, device);
        up_proj = new Projection(hidden, intermediate, dtype, device);
        down_proj = new Projection(intermediate, hidden, dtype, device);
        RegisterComponents();
    }

    /// <summary>On [..., hidden] rows: flattened once to 2-d for the three projections (see <see cref="Projection.forward"/>);
    /// gate and up share their adapters' input-side product (<see cref="Projection.ForwardShared"/>).</summary>
    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var rows = x.dim() == 2 ? x : x.reshape(-1, x.shape[^1]);
        var gateUp = Projection.ForwardShared(rows, gate_proj, up_proj);
        var h = nn.functional.silu(gateUp[0]) * gateUp[1];
        var y = down_proj.forward(h);
        return (x.dim() == 2 ? y : y.view(x.shape)).MoveToOuterDisposeScope();
    }
}
