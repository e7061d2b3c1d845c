using Qwen35.Models.Modules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

/// <summary>
/// A stand-in with the module tree of Qwen35ForCausalLM (same names, same projection shapes as the golden tiny config:
/// hidden 64, q_proj 128, k/v 32, in_proj_qkv 128, in_proj_z 64, in_proj_a/b 4, MLP 128) and a cheap forward that runs
/// every projection, so targeting, freezing, merging and export can be tested without the real attention math.
/// </summary>
sealed class FakeDecoder : nn.Module<Tensor, Tensor>
{
    public FakeModel model;
    public Projection lm_head;

    public FakeDecoder(string[] layerTypes, ScalarType dtype = ScalarType.Float32, long seed = 1) : base(nameof(FakeDecoder))
    {
        model = new FakeModel(layerTypes, dtype);
        lm_head = new Projection(64, 512, dtype);
        RegisterComponents();
        using var g = new Generator((ulong)seed);
        using var noGrad = no_grad();
        foreach (var (_, p) in named_parameters())
            p.copy_(randn(p.shape, generator: g).mul(0.1));
    }

    /// <summary>The golden tiny layout: three linear-attention layers, then one full-attention layer.</summary>
    public static FakeDecoder Tiny(ScalarType dtype = ScalarType.Float32, long seed = 1) =>
        new(["linear_attention", "linear_attention", "linear_attention", "full_attention"], dtype, seed);

    public override Tensor forward(Tensor x)
    {
        foreach (var layer in model.language_model.layers) x = ((FakeLayer)layer).forward(x);
        return lm_head.forward(x);
    }
}

sealed class FakeModel : nn.Module
{
    public FakeTextModel language_model;

    public FakeModel(string[] layerTypes, ScalarType dtype) : base(nameof(FakeModel))
    {
        language_model = new FakeTextModel(layerTypes, dtype);
        RegisterComponents();
    }
}

sealed class FakeTextModel : nn.Module
{
    public ModuleList<nn.Module> layers;

    public FakeTextModel(string[] layerTypes, ScalarType dtype) : base(nameof(FakeTextModel))
    {
        layers = new ModuleList<nn.Module>(layerTypes.Select(t => (nn.Module)new FakeLayer(t == "linear_attention", dtype)).ToArray());
        RegisterComponents();
    }
}

sealed class FakeLayer : nn.Module<Tensor, Tensor>
{
    public FakeLinearAttention? linear_attn;
    public FakeSelfAttention? self_attn;
    public FakeMlp mlp;

    public FakeLayer(bool linear, ScalarType dtype) : base(nameof(FakeLayer))
    {
        if (linear) linear_attn = new FakeLinearAttention(dtype);
        else self_attn = new FakeSelfAttention(dtype);
        mlp = new FakeMlp(dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        x = x + (linear_attn != null ? linear_attn.forward(x) : self_attn!.forward(x));
        return x + mlp.forward(x);
    }
}

sealed class FakeLinearAttention : nn.Module<Tensor, Tensor>
{
    public Projection in_proj_qkv, in_proj_z, in_proj_b, in_proj_a, out_proj;

    public FakeLinearAttention(ScalarType dtype) : base(nameof(FakeLinearAttention))
    {
        in_proj_qkv = new Projection(64, 128, dtype);
        in_proj_z = new Projection(64, 64, dtype);
        in_proj_b = new Projection(64, 4, dtype);
        in_proj_a = new Projection(64, 4, dtype);
        out_proj = new Projection(64, 64, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var qkv = in_proj_qkv.forward(x);
        var gate = in_proj_b.forward(x).sigmoid().mean([-1], keepdim: true) + in_proj_a.forward(x).tanh().mean([-1], keepdim: true);
        var mixed = qkv.narrow(-1, 0, 64).tanh() * nn.functional.silu(in_proj_z.forward(x)) * gate;
        return out_proj.forward(mixed);
    }
}

sealed class FakeSelfAttention : nn.Module<Tensor, Tensor>
{
    public Projection q_proj, k_proj, v_proj, o_proj;

    public FakeSelfAttention(ScalarType dtype) : base(nameof(FakeSelfAttention))
    {
        q_proj = new Projection(64, 128, dtype);
        k_proj = new Projection(64, 32, dtype);
        v_proj = new Projection(64, 32, dtype);
        o_proj = new Projection(64, 64, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var q = q_proj.forward(x).narrow(-1, 0, 64);
        var kv = cat([k_proj.forward(x), v_proj.forward(x)], -1);
        return o_proj.forward((q * kv).tanh());
    }
}

sealed class FakeMlp : nn.Module<Tensor, Tensor>
{
    public Projection gate_proj, up_proj, down_proj;

    public FakeMlp(ScalarType dtype) : base(nameof(FakeMlp))
    {
        gate_proj = new Projection(64, 128, dtype);
        up_proj = new Projection(64, 128, dtype);
        down_proj = new Projection(128, 64, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => down_proj.forward(nn.functional.silu(gate_proj.forward(x)) * up_proj.forward(x));
}
