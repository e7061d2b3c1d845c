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

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var h = nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x);
        return down_proj.forward(h).MoveToOuterDisposeScope();
    }
}
