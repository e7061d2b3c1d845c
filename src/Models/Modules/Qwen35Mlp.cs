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

    /// <summary>On the decoder layer's 2-d token rows [rows, hidden]; gate and up share their adapters' input-side
    /// product (<see cref="Projection.ForwardShared"/>, which refuses any other shape).</summary>
    public override Tensor forward(Tensor rows)
    {
        using var scope = NewDisposeScope();
        var gateUp = Projection.ForwardShared(rows, gate_proj, up_proj);
        var h = nn.functional.silu(gateUp[0]) * gateUp[1];
        return down_proj.forward(h).MoveToOuterDisposeScope();
    }
}
