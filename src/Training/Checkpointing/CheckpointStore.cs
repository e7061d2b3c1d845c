using Qwen35.Models.SafeTensors;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using Qwen35.Models;

namespace Qwen35.Training.Checkpointing;

/// <summary>
/// Resumable checkpoints under output_dir/checkpoints/step_000N/:
/// <list type="bullet">
/// <item><c>adapter/</c>: the LoRA adapter in PEFT format (usable on its own);</item>
/// <item><c>trainable.safetensors</c>: the trainable parameters under their model names (exact fp32, what resume loads);</item>
/// <item><c>optimizer.safetensors</c>: AdamW <c>NAME.exp_avg</c>, <c>NAME.exp_avg_sq</c>, <c>NAME.step</c> per parameter;</item>
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
            var states = optimizer.state_dict().State;
            for (var i = 0; i < trainable.Count; i++)
            {
                var (name, p) = trainable[i];
                var s = (AdamW.State)states[i];
                s.exp_avg.copy_(Require(opt, name + ".exp_avg", p));
                s.exp_avg_sq.copy_(Require(opt, name + ".exp_avg_sq", p));
                s.step = Require(opt, name + ".step", null).ToInt64();
            }
        }
        return state;
    }

    static IEnumerable<(string, Tensor)> OptimizerTensors(IReadOnlyList<(string Name, Parameter Param)> trainable, AdamW optimizer)
    {
        // state_dict().State lists the optimizer's states in parameter order, which is the order of `trainable`.
        var states = optimizer.state_dict().State;
        for (var i = 0; i < trainable.Count; i++)
        {
            var s = (AdamW.State)states[i];
            yield return (trainable[i].Name + ".exp_avg", s.exp_avg.detach().cpu());
            yield return (trainable[i].Name + ".exp_avg_sq", s.exp_avg_sq.detach().cpu());
            yield return (trainable[i].Name + ".step", tensor(new[] { s.step }));
        }
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
