using Qwen35.Models.Modules;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Lora.Tests;

/// <summary>
/// `lora.compute_dtype: model`: the branch runs in the input's dtype with the fp32 weights cast per call. With an fp32
/// base nothing changes (bitwise); with a bf16 base the output and the fp32 gradients of A and B stay within bf16
/// rounding of the fp32 branch, measured against an fp64 reference of the same math.
/// </summary>
public class LoraComputeDtypeTests
{
    const string Name = "model.language_model.layers.0.mlp.up_proj";

    static (Projection Proj, LoraAdapter Adapter) Make(ScalarType dtype, bool inModelDtype)
    {
        var proj = new Projection(64, 96, dtype);
        using var g = new Generator(11);
        using (no_grad()) proj.weight.copy_(randn(96, 64, generator: g).mul(0.1));
        var a = randn(8, 64, generator: g).mul(0.2);
        var b = randn(96, 8, generator: g).mul(0.2);
        var adapter = LoraInjector.Attach(new DecoderProjection(Name, proj, 0, "linear_attention"), a, b, 16, 2, 0);
        adapter.ComputeInInputDtype = inModelDtype;
        return (proj, adapter);
    }

    static (Tensor Y, Tensor GradA, Tensor GradB) Run(Projection proj, LoraAdapter adapter, Tensor x, Tensor upstream)
    {
        adapter.LoraA.weight.grad = null;
        adapter.LoraB.weight.grad = null;
        var y = proj.forward(x);
        (y.to(ScalarType.Float32) * upstream).sum().backward();
        return (y.detach(), adapter.LoraA.weight.grad!.clone(), adapter.LoraB.weight.grad!.clone());
    }

    [Test]
    public void Fp32BaseIsUnchanged()
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(5);
        var x = randn(3, 10, 64, generator: g);
        var up = randn(3, 10, 96, generator: g);
        var (p1, a1) = Make(ScalarType.Float32, false);
        var (p2, a2) = Make(ScalarType.Float32, true);
        var r1 = Run(p1, a1, x, up);
        var r2 = Run(p2, a2, x, up);
        Assert.That(r1.Y.equal(r2.Y).all().item<bool>() && r1.GradA.equal(r2.GradA).all().item<bool>()
                    && r1.GradB.equal(r2.GradB).all().item<bool>(), Is.True);
    }

    [Test]
    public void Bf16BaseStaysWithinBf16RoundingOfTheFp32Branch()
    {
        using var scope = NewDisposeScope();
        using var g = new Generator(5);
        var x = randn(3, 10, 64, generator: g).to(ScalarType.BFloat16);
        var up = randn(3, 10, 96, generator: g);
        var (pf, af) = Make(ScalarType.BFloat16, false);
        var (pm, am) = Make(ScalarType.BFloat16, true);
        var fp32Branch = Run(pf, af, x, up);
        var modelBranch = Run(pm, am, x, up);

        // fp64 reference of the LoRA delta and of the gradients, from the same (bf16) input.
        var xd = x.to(ScalarType.Float64);
        var a = af.LoraA.weight.detach().to(ScalarType.Float64);
        var b = af.LoraB.weight.detach().to(ScalarType.Float64);
        var hd = xd.matmul(a.t()) * 2;                       // scaling 2
        var delta = hd.matmul(b.t());
        var upd = up.to(ScalarType.Float64);
        var gradB = upd.reshape(-1, 96).t().matmul(hd.reshape(-1, 8));
        var gradA = (upd.matmul(b) * 2).reshape(-1, 8).t().matmul(xd.reshape(-1, 64));
        var baseWeight = pf.weight.detach().to(ScalarType.Float64);   // both paths share the frozen base

        double Rel(Tensor ours, Tensor reference) =>
            ((ours.to(ScalarType.Float64) - reference).norm() / reference.norm()).item<double>();
        var deltaModel = modelBranch.Y.to(ScalarType.Float64) - xd.matmul(baseWeight.t());
        var deltaFp32 = fp32Branch.Y.to(ScalarType.Float64) - xd.matmul(baseWeight.t());
        TestContext.Out.WriteLine($"delta rel err: fp32 branch {Rel(deltaFp32, delta):E2}, model dtype {Rel(deltaModel, delta):E2}; " +
                                  $"grad A {Rel(fp32Branch.GradA, gradA):E2} vs {Rel(modelBranch.GradA, gradA):E2}; " +
                                  $"grad B {Rel(fp32Branch.GradB, gradB):E2} vs {Rel(modelBranch.GradB, gradB):E2}");
        Assert.That(modelBranch.Y.dtype, Is.EqualTo(ScalarType.BFloat16));
        Assert.That(am.LoraA.weight.grad!.dtype, Is.EqualTo(ScalarType.Float32), "master weights and their gradients stay fp32");
        // bf16 keeps 8 significant bits (relative step 2^-8 = 0.39%); a few roundings inside the branch stay within
        // ~1%, while a wrong scale, a missing branch or a transposed matrix is off by 30-100%.
        Assert.That(Rel(deltaModel, delta), Is.LessThan(0.02));
        Assert.That(Rel(modelBranch.GradA, gradA), Is.LessThan(0.02));
        Assert.That(Rel(modelBranch.GradB, gradB), Is.LessThan(0.02));
        // The fp32 branch is not exact either: its delta is rounded to bf16 when added to the base output, and the
        // gradient arriving at a bf16 output is bf16 (measured 1.6-2.7e-3). Computing in bf16 may add a few roundings,
        // not change the order of magnitude (measured 3.2-3.9e-3).
        foreach (var (model, fp32, what) in new[] { (deltaModel, deltaFp32, "delta"), (modelBranch.GradA, fp32Branch.GradA, "grad A"), (modelBranch.GradB, fp32Branch.GradB, "grad B") })
        {
            var reference = what == "delta" ? delta : what == "grad A" ? gradA : gradB;
            Assert.That(Rel(model, reference), Is.LessThan(3 * Rel(fp32, reference)), what);
        }
    }
}
