using System.Globalization;
using System.Text;

namespace Qwen35.Lora;

/// <summary>One adapted projection in a <see cref="LoraReport"/>.</summary>
public sealed record LoraModuleInfo(
    string Name, string ShortName, int LayerIndex, string LayerType, int Rank, double Alpha, double Scaling,
    int InFeatures, int OutFeatures)
{
    /// <summary>r·(in + out): the trainable parameters of this adapter.</summary>
    public long ParameterCount => (long)Rank * (InFeatures + OutFeatures);
}

/// <summary>What LoRA injection did: the adapted modules and how many parameters are trainable.</summary>
/// <param name="TotalParameters">all parameters of the model including the adapters, or 0 when unknown (adapter inspected without its model).</param>
public sealed record LoraReport(IReadOnlyList<LoraModuleInfo> Modules, long TrainableParameters, long TotalParameters)
{
    /// <summary>Trainable / total parameters (total includes the adapters; 0 when the total is unknown).</summary>
    public double TrainableShare => TotalParameters == 0 ? 0 : (double)TrainableParameters / TotalParameters;

    /// <summary>Trainable parameters per projection name (q_proj, down_proj, …).</summary>
    public IReadOnlyDictionary<string, long> ByModuleType =>
        Modules.GroupBy(m => m.ShortName).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Sum(m => m.ParameterCount));

    /// <summary>Trainable parameters per layer type (linear_attention / full_attention).</summary>
    public IReadOnlyDictionary<string, long> ByLayerType =>
        Modules.GroupBy(m => m.LayerType).OrderBy(g => g.Key, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Sum(m => m.ParameterCount));

    /// <summary>A multi-line summary for logs and `trainer inspect`.</summary>
    public string Format()
    {
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine(TotalParameters == 0
            ? string.Create(ci, $"LoRA: {Modules.Count} modules, {TrainableParameters:N0} adapter parameters (total unknown without the model)")
            : string.Create(ci, $"LoRA: {Modules.Count} modules, trainable {TrainableParameters:N0} of {TotalParameters:N0} parameters ({TrainableShare * 100:0.####}%)"));
        var ranks = Modules.Select(m => m.Rank).Distinct().Order().ToList();
        var scales = Modules.Select(m => m.Scaling).Distinct().Order().ToList();
        sb.AppendLine(ci, $"  rank {string.Join("/", ranks)}, scaling {string.Join("/", scales.Select(s => s.ToString("0.######", ci)))}");
        sb.AppendLine("  per module type:");
        foreach (var (k, v) in ByModuleType)
            sb.AppendLine(ci, $"    {k,-12} {Modules.Count(m => m.ShortName == k),4} modules {v,14:N0} params");
        sb.AppendLine("  per layer type:");
        foreach (var (k, v) in ByLayerType)
            sb.AppendLine(ci, $"    {k,-16} {Modules.Where(m => m.LayerType == k).Select(m => m.LayerIndex).Distinct().Count(),4} layers {v,14:N0} params");
        return sb.ToString().TrimEnd();
    }
}
