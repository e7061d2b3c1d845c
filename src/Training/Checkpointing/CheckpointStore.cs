using Qwen35.Models.SafeTensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Qwen35.Models;
using Qwen35.Lora;
using Qwen35.Training.Loop;

namespace Qwen35.Training.Checkpointing;

/// <summary>
/// Resumable checkpoints under output_dir/checkpoints/step_000N/:
/// <list type="bullet">
/// <item><c>adapter/</c>: the LoRA adapter in PEFT format (usable on its own);</item>
/// <item><c>trainable.safetensors</c>: the trainable parameters under their model names (exact fp32, what resume loads);</item>
/// <item><c>optimizer.safetensors</c>: AdamW <c>NAME.exp_avg</c>, <c>NAME.exp_avg_sq</c>, <c>NAME.step</c> per parameter
/// (also with flat LoRA storage, whose one AdamW state is written slice by slice);</item>
/// <item><c>trainer_state.json</c>: step, scheduler step, data position, seed, RNG scheme, recipe hash (<see cref="TrainerState"/>).</item>
/// </list>
/// The random state needs no tensor: every micro-batch reseeds the generators from (seed, step, micro-batch), so
/// seed + step ARE the RNG state. (Restoring a saved libtorch CPU generator state was also tried: set_rng_state
/// aborted the process with "Invalid mt19937 state" on a state taken right after manual_seed.)
/// A checkpoint is written into a hidden temporary folder and renamed into place, so a crash mid-write never leaves a
/// half checkpoint that <c>--resume latest</c> would pick up.
/// </summary>
public sealed class CheckpointStore(string outputDir, int keepLast)
{
    public string Root { get; } = Path.Combine(outputDir, "checkpoints");

    public static string StepDirName(int step) => $"step_{step:D6}";

    /// <summary>Writes a checkpoint atomically and prunes all but the newest <c>keepLast</c>. Returns its folder.</summary>
    public string Save(TrainerState state, IReadOnlyList<(string Name, Parameter Param)> trainable, AdamW optimizer,
        Action<string> saveAdapter)
    {
        Directory.CreateDirectory(Root);
        var final = Path.Combine(Root, StepDirName(state.Step));
        var tmp = Path.Combine(Root, $".tmp-{StepDirName(state.Step)}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            using (var scope = NewDisposeScope())
            {
                saveAdapter(Path.Combine(tmp, "adapter"));
                SafeTensorsWriter.Write(Path.Combine(tmp, "trainable.safetensors"),
                    trainable.Select(p => (p.Name, p.Param.detach().cpu())));
                SafeTensorsWriter.Write(Path.Combine(tmp, "optimizer.safetensors"), OptimizerTensors(trainable, optimizer));
            }
            File.WriteAllText(Path.Combine(tmp, "trainer_state.json"), state.ToJson());
            if (Directory.Exists(final)) Directory.Delete(final, recursive: true);
            Directory.Move(tmp, final);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
        Prune();
        return final;
    }

    /// <summary>Completed checkpoints, oldest first.</summary>
    public IReadOnlyList<string> List() =>
        !Directory.Exists(Root) ? [] :
        Directory.GetDirectories(Root, "step_*").Where(d => File.Exists(Path.Combine(d, "trainer_state.json")))
            .OrderBy(d => d, StringComparer.Ordinal).ToList();

    /// <summary>A checkpoint folder from <c>--resume</c>: <c>latest</c> (or empty) = newest here, else a folder path.</summary>
    public string Resolve(string? resume)
    {
        if (string.IsNullOrEmpty(resume) || resume == "latest")
            return List().LastOrDefault() ?? throw new UserInputException($"--resume latest: no checkpoint in {Root}");
        if (!File.Exists(Path.Combine(resume, "trainer_state.json")))
            throw new UserInputException($"--resume {resume}: not a checkpoint folder (no trainer_state.json)");
        return resume;
    }

    /// <summary>Restores trainable parameters and AdamW state in place; returns the trainer state.</summary>
    public static TrainerState Load(string dir, IReadOnlyList<(string Name, Parameter Param)> trainable, AdamW optimizer)
    {
        var state = TrainerState.Load(Path.Combine(dir, "trainer_state.json"));
        using var scope = NewDisposeScope();
        using (no_grad())
        {
            using var weights = SafeTensorsFile.Open(Path.Combine(dir, "trainable.safetensors"));
            foreach (var (name, p) in trainable) p.copy_(Require(weights, name, p));

            using var opt = SafeTensorsFile.Open(Path.Combine(dir, "optimizer.safetensors"));
            var moments = Moments(trainable, optimizer);
            long? flatStep = null;
            for (var i = 0; i < trainable.Count; i++)
            {
                var (name, p) = trainable[i];
                var (expAvg, expAvgSq, _, setStep) = moments[i];
                expAvg.copy_(Require(opt, name + ".exp_avg", p));
                expAvgSq.copy_(Require(opt, name + ".exp_avg_sq", p));
                var step = Require(opt, name + ".step", null).ToInt64();
                // Flat AdamW has one step count for all slices; per-tensor files hold the same count for every
                // parameter (they were all stepped together), so any disagreement means a foreign file.
                if (flatStep is { } seen && seen != step && moments.Flat)
                    throw new UserInputException($"{Path.Combine(dir, "optimizer.safetensors")}: tensor '{name}.step' is {step}, other parameters have {seen}; the flat optimizer keeps one step count");
                flatStep = step;
                setStep(step);
            }
        }
        return state;
    }

    static IEnumerable<(string, Tensor)> OptimizerTensors(IReadOnlyList<(string Name, Parameter Param)> trainable, AdamW optimizer)
    {
        var moments = Moments(trainable, optimizer);
        for (var i = 0; i < trainable.Count; i++)
        {
            var (expAvg, expAvgSq, step, _) = moments[i];
            yield return (trainable[i].Name + ".exp_avg", expAvg.detach().cpu());
            yield return (trainable[i].Name + ".exp_avg_sq", expAvgSq.detach().cpu());
            yield return (trainable[i].Name + ".step", tensor(new[] { step }));
        }
    }

    /// <summary>Per trainable parameter (in <paramref name="trainable"/>'s order): its AdamW moments, step count and a
    /// setter for the step. With flat LoRA storage (<see cref="LoraAdamW"/>) the optimizer has one state for the
    /// whole buffer and the moments are views of its slices, so the file keeps the per-parameter layout either way
    /// (a checkpoint written before flat storage resumes into it, and back).</summary>
    sealed class MomentList(List<(Tensor ExpAvg, Tensor ExpAvgSq, long Step, Action<long> SetStep)> items, bool flat)
    {
        public bool Flat => flat;
        public (Tensor ExpAvg, Tensor ExpAvgSq, long Step, Action<long> SetStep) this[int i] => items[i];
    }

    static MomentList Moments(IReadOnlyList<(string Name, Parameter Param)> trainable, AdamW optimizer)
    {
        // state_dict().State lists the optimizer's states in parameter order.
        var states = optimizer.state_dict().State;
        if (LoraAdamW.Flat(optimizer) is { } flat)
        {
            var s = (AdamW.State)states[0];
            var byName = flat.Slices.ToDictionary(x => x.Name);
            return new MomentList(trainable.Select(t =>
            {
                if (!byName.TryGetValue(t.Name, out var slice))
                    throw new InvalidOperationException($"{t.Name} is not in the optimizer's flat LoRA buffer");
                return (FlatLoraParameters.SliceOf(s.exp_avg, slice), FlatLoraParameters.SliceOf(s.exp_avg_sq, slice), s.step,
                    (Action<long>)(v => s.step = v));
            }).ToList(), flat: true);
        }
        // Per-tensor AdamW: its states are in the order of `trainable`.
        return new MomentList(trainable.Select((t, i) =>
        {
            var s = (AdamW.State)states[i];
            return (s.exp_avg, s.exp_avg_sq, s.step, (Action<long>)(v => s.step = v));
        }).ToList(), flat: false);
    }

    static Tensor Require(SafeTensorsFile file, string name, Tensor? like)
    {
        if (!file.Tensors.TryGetValue(name, out var info))
            throw new UserInputException($"{file.Path}: tensor '{name}' missing (checkpoint from a different adapter layout?)");
        if (like is not null && !info.Shape.SequenceEqual(like.shape))
            throw new UserInputException($"{file.Path}: tensor '{name}' has shape {Shapes.Format(info.Shape)}, the run expects {Shapes.Format(like.shape)}");
        var t = file.Load(name);
        return like is null ? t : t.to(like.dtype, like.device);
    }

    void Prune()
    {
        var all = List();
        foreach (var old in all.Take(Math.Max(0, all.Count - keepLast))) Directory.Delete(old, recursive: true);
    }
}
