using Qwen35.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// Holder matching the published wrapper layout (HF <c>Qwen3_5Model</c>): the text decoder lives at
/// <c>model.language_model</c>, so checkpoint keys load by name with no mapping table. The vision tower is not built.
/// </summary>
public sealed class Qwen35Model : nn.Module
{
    public Qwen35TextModel language_model;

    public Qwen35Model(Qwen35TextConfig c, ScalarType dtype, Device? device) : base(nameof(Qwen35Model))
    {
        language_model = new Qwen35TextModel(c, dtype, device);
        RegisterComponents();
    }
}
