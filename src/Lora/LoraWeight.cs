using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Lora;

/// <summary>
/// One LoRA matrix as a module with a single parameter <c>weight</c>, like PEFT's bias-free <c>nn.Linear</c>, so
/// model parameter names read <c>…q_proj.lora_A.weight</c> and match the PEFT file keys after the prefix.
/// </summary>
public sealed class LoraWeight : nn.Module
{
    // Field name = state-dict name; keep it "weight".
    public Parameter weight;

    public LoraWeight(Tensor value) : base(nameof(LoraWeight))
    {
        weight = new Parameter(value, requires_grad: true);
        RegisterComponents();
    }
}
