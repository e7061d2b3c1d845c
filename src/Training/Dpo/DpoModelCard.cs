using System.Globalization;
using System.Text;
using Qwen35.Training.Loop;
using Qwen35.Training.Recipes;

namespace Qwen35.Training.Dpo;

/// <summary>The adapter's README.md after a DPO run: what it was trained on, how, and the preference metrics.</summary>
public static class DpoModelCard
{
    public static string Write(Recipe r, DpoRun run, TrainResult result, int totalSteps, double? first, double? last)
    {
        var ci = CultureInfo.InvariantCulture;
        var o = r.Dpo;
        var sb = new StringBuilder();
        sb.AppendLine("---");
        sb.AppendLine(ci, $"base_model: {r.Model}");
        sb.AppendLine("library_name: peft");
        sb.AppendLine("tags: [lora, dpo, qwen3.5]");
        sb.AppendLine("---");
        sb.AppendLine();
        sb.AppendLine(ci, $"# LoRA adapter for {r.Model}, preference-tuned ({OptionNames.Name(o.LossType)})");
        sb.AppendLine();
        sb.AppendLine("Trained with the C#/TorchSharp Qwen3.5 LoRA trainer (`trainer train`, `objective: dpo`). Load with PEFT:");
        sb.AppendLine("`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), \"adapter\")`.");
        sb.AppendLine();
        sb.AppendLine("## Data");
        sb.AppendLine(ci, $"- train: {string.Join(", ", r.Data.Train)} ({run.Data.Train.Count} pairs); eval: {run.Data.Eval.Count} pairs");
        sb.AppendLine(ci, $"- categories: {string.Join(", ", run.Data.Categories)}");
        sb.AppendLine();
        sb.AppendLine("## Objective");
        sb.AppendLine(ci, $"- loss {OptionNames.Name(o.LossType)}, beta {o.Beta}, label_smoothing {o.LabelSmoothing}, rpo_alpha {(o.RpoAlpha is { } a ? a.ToString(ci) : "none")}");
        sb.AppendLine(ci, $"- reference: {o.ReferenceAdapter ?? "the base model (adapter off)"}");
        sb.AppendLine(ci, $"- optimizer: AdamW lr {r.Schedule.LearningRate}, {totalSteps} steps, {r.Schedule.MicroBatchSize} pairs x grad_accum {r.Schedule.GradAccum}, seed {r.Schedule.Seed}");
        sb.AppendLine();
        sb.AppendLine("## Results");
        sb.AppendLine(ci, $"- train loss: {first:F4} (first step) -> {last:F4} (last step)");
        if (result.FinalEval is { } e)
        {
            sb.AppendLine(ci, $"- eval loss: {e.Loss:F4}");
            foreach (var (k, v) in e.Metrics ?? new Dictionary<string, double>()) sb.AppendLine(ci, $"- eval {k}: {v:F4}");
        }
        return sb.ToString();
    }
}
