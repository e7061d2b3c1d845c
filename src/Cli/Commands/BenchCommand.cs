using System.CommandLine;
using System.Globalization;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Training;
using Qwen35.Training.Bench;
using Qwen35.Training.Observability;
using Qwen35.Training.Recipes;
using Serilog.Events;
using TorchSharp;

namespace Qwen35.Cli.Commands;

/// <summary>
/// `trainer bench --shape 9b|27b|tiny --layers 4 --seq 4096 --steps 3 [--device cpu|cuda] [--dtype bf16|fp32]
/// [--checkpointing] [--profile N] [--loss-head N]` or `trainer bench --recipe NAME`: times LoRA training steps with
/// random weights and prints step time, tokens/s, peak memory and an MFU estimate with the FLOP count used; with
/// --profile, time and ATen operator calls per phase (docs/performance.md).
/// </summary>
public static class BenchCommand
{
    public static Command Build()
    {
        var recipe = new Option<string?>("--recipe") { Description = "Take shape (builtin:tiny or the model folder's config.json, random weights), LoRA, device, precision, checkpointing and row length from a recipe" };
        var set = new Option<string[]>("--set") { Description = "Recipe override key.sub=value (repeatable)" };
        var shape = new Option<string?>("--shape") { Description = "Published shape: tiny, 9b, 27b" };
        var layers = new Option<int?>("--layers") { Description = "Keep only the first N decoder layers (default: all for tiny, 4 for 9b/27b)" };
        var seq = new Option<int?>("--seq") { Description = "Tokens per row (default 4096; with --recipe its pack_length/max_length)" };
        var batch = new Option<int?>("--batch") { Description = "Rows per step (default 1; with --recipe its micro_batch_size)" };
        var steps = new Option<int>("--steps") { Description = "Training steps to time (the first is excluded from the mean when there are 2 or more)", DefaultValueFactory = _ => 3 };
        var device = new Option<string?>("--device") { Description = "cpu or cuda (default cpu)" };
        var dtype = new Option<string?>("--dtype") { Description = "bf16 or fp32 base weights (default: bf16 on cuda, fp32 on cpu)" };
        var ckpt = new Option<bool>("--checkpointing") { Description = "Per-layer activation checkpointing" };
        var rank = new Option<int>("--rank") { Description = "LoRA rank for --shape (alpha = 2r)", DefaultValueFactory = _ => 16 };
        var peak = new Option<double?>("--peak-tflops") { Description = "Peak dense TFLOP/s for MFU (default 989 = H100 bf16 on cuda; none on cpu)" };
        var targets = new Option<string>("--targets")
        {
            Description = "LoRA targets for --shape: all-linear (every projection of the text decoder, as bench/hf_peft_bench.py) or a comma list such as q_proj,v_proj",
            DefaultValueFactory = _ => "all-linear",
        };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (the fields bench/hf_peft_bench.py prints) instead of text" };
        var documents = new Option<int>("--documents")
        {
            Description = "Documents packed into each row (1 = one sequence per row): times the packed path (per-document attention, chunk-aligned delta rule)",
            DefaultValueFactory = _ => 1,
        };
        var loraCompute = new Option<string?>("--lora-compute")
        {
            Description = "Dtype of the LoRA matmuls: fp32 (default for --shape) or model (bf16 with a bf16 base); with --recipe, overrides lora.compute_dtype",
        };
        var profile = new Option<int>("--profile")
        {
            Description = "After the timed steps, profile N more with a device sync around each phase (embed, each layer type's forward, recompute and backward, loss, clip, read-back, AdamW) and print where the step goes: time and ATen operator calls per phase, and TorchSharp's host cost per op",
            DefaultValueFactory = _ => 0,
        };
        var threads = new Option<int>("--threads")
        {
            Description = "CPU intra-op threads (0 = libtorch's default; with --recipe, its cpu_threads applies unless this is given); bench/hf_peft_bench.py --threads is the same",
            DefaultValueFactory = _ => 0,
        };
        var lossHead = new Option<int>("--loss-head")
        {
            Description = "Instead of training steps: time the loss head alone (seq-1 rows x hidden x vocab of the shape, one chunk, forward + backward) N times in each form, the composed logsumexp - gather, libtorch's fused cross_entropy and the training's written-out gradient, alternately; print the medians",
            DefaultValueFactory = _ => 0,
        };
        var cmd = new Command("bench", "Time LoRA training steps on random weights: step time, tokens/s, peak memory, MFU")
        {
            recipe, set, shape, layers, seq, batch, steps, device, dtype, ckpt, rank, peak, targets, json, profile, loraCompute, documents, lossHead, threads,
        };
        cmd.SetAction(pr => CliErrors.Run("bench", pr.InvocationConfiguration.Error, () =>
        {
            {
                using var log = TrainLogging.Create(null, LogEventLevel.Information);
                BenchOptions options;
                if (pr.GetValue(recipe) is { } name)
                {
                    var resolved = RecipeResolver.Resolve(name);
                    var r = RecipeLoader.Parse(resolved.Text, resolved.Source, pr.GetValue(set) ?? []);
                    // The recipe's model as training resolves it (only its config is used: the weights are random).
                    var session = Session.Open(r.SessionOptions with { Device = pr.GetValue(device) ?? r.Device }, resolved.BaseDir);
                    var config = Truncated(session.Config, pr.GetValue(layers));
                    options = new BenchOptions
                    {
                        Config = config, ShapeName = r.Model, Sequence = pr.GetValue(seq) ?? r.Data.RowLength(),
                        Batch = pr.GetValue(batch) ?? r.Schedule.MicroBatchSize, Steps = pr.GetValue(steps),
                        Device = pr.GetValue(device) ?? r.Device,
                        Precision = pr.GetValue(dtype) is { } d ? OptionNames.Parse<Precision>(d, "--dtype") : r.Precision,
                        Checkpointing = pr.GetValue(ckpt) || r.ActivationCheckpointing, Lora = r.Lora,
                        PeakTflops = pr.GetValue(peak), Seed = r.Schedule.Seed,
                    };
                }
                else if (pr.GetValue(shape) is { } s)
                {
                    var dev = pr.GetValue(device) ?? "cpu";
                    var r = pr.GetValue(rank);
                    options = new BenchOptions
                    {
                        Config = PublishedShapes.Get(s, pr.GetValue(layers) ?? (s == "tiny" ? null : 4)), ShapeName = s,
                        Sequence = pr.GetValue(seq) ?? 4096, Batch = pr.GetValue(batch) ?? 1, Steps = pr.GetValue(steps),
                        Device = dev,
                        Precision = pr.GetValue(dtype) is { } d ? OptionNames.Parse<Precision>(d, "--dtype") : dev.StartsWith("cuda", StringComparison.Ordinal) ? Precision.Bf16 : Precision.Fp32,
                        Checkpointing = pr.GetValue(ckpt), PeakTflops = pr.GetValue(peak),
                        Lora = BenchOptions.DefaultLora(r) with { TargetModules = ParseTargets(pr.GetValue(targets)!) },
                    };
                }
                else
                {
                    Console.Error.WriteLine("bench: give --shape tiny|9b|27b or --recipe NAME");
                    return 1;
                }
                options = options with { ProfileSteps = pr.GetValue(profile), Documents = pr.GetValue(documents) };
                if (pr.GetValue(threads) is > 0 and var n) torch.set_num_threads(n);
                if (pr.GetValue(loraCompute) is { } compute)
                    options = options with { Lora = options.Lora with { ComputeDtype = OptionNames.Parse<LoraComputeDtype>(compute, "--lora-compute") } };
                if (options.Steps < 1 || options.Sequence < 2 || options.Batch < 1 || options.ProfileSteps < 0
                    || options.Documents < 1 || options.Sequence / options.Documents < 2)
                {
                    Console.Error.WriteLine("bench: --steps >= 1, --seq >= 2, --batch >= 1, --profile >= 0 and 1 <= --documents <= seq/2 are required");
                    return 1;
                }
                if (pr.GetValue(lossHead) is > 0 and var reps)
                {
                    var r = LossHeadBench.Run(options.Sequence - 1, options.Config.HiddenSize, options.Config.VocabSize, reps);
                    static double Median(IReadOnlyList<double> x) => x.Order().ElementAt(x.Count / 2);
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"loss head {r.Rows} x {r.Hidden} x {r.Vocab}, forward + backward, {reps} alternating runs each: composed logsumexp - gather median {Median(r.Seconds[LossHeadBench.Form.Composed]):F3} s, fused cross_entropy median {Median(r.Seconds[LossHeadBench.Form.Fused]):F3} s, written-out gradient (training's) median {Median(r.Seconds[LossHeadBench.Form.WrittenOut]):F3} s (max |grad diff| against fused: composed {r.MaxGradDiffComposed:E1}, written out {r.MaxGradDiffWrittenOut:E1})"));
                    return 0;
                }
                var report = Benchmark.Run(options, log);
                if (pr.GetValue(json)) PrintJson(report); else Print(report);
                return 0;
            }
        }));
        return cmd;
    }

    static Qwen35.Models.Config.Qwen35TextConfig Truncated(Qwen35.Models.Config.Qwen35TextConfig c, int? layers)
    {
        if (layers is not { } n) return c;
        if (n < 1 || n > c.NumHiddenLayers) throw new UserInputException($"--layers must be in [1, {c.NumHiddenLayers}], got {n}");
        return c with { NumHiddenLayers = n, LayerTypes = c.LayerTypes.Take(n).ToArray() };
    }

    static Qwen35.Lora.LoraTargets ParseTargets(string value) => value == "all-linear"
        ? Qwen35.Lora.LoraTargets.AllLinear
        : Qwen35.Lora.LoraTargets.Names(value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>Same field names as bench/hf_peft_bench.py, so scripts/gpu/compare.sh can put both side by side.</summary>
    static void PrintJson(BenchReport b)
    {
        var o = b.Options;
        var result = new Dictionary<string, object?>
        {
            ["side"] = "qwen35-trainer (TorchSharp)",
            ["shape"] = o.ShapeName, ["layers"] = o.Config.NumHiddenLayers, ["seq"] = o.Sequence, ["documents"] = o.Documents, ["batch"] = o.Batch,
            ["steps"] = o.Steps, ["device"] = o.Device, ["dtype"] = OptionNames.Name(o.Precision), ["checkpointing"] = o.Checkpointing,
            ["lora_r"] = o.Lora.Rank, ["lora_alpha"] = o.Lora.Alpha, ["lora_compute"] = OptionNames.Name(o.Lora.ComputeDtype), ["trainable_params"] = b.LoraParameters,
            ["matmul_params_N"] = b.Flops.MatmulParams, ["flops_per_token"] = b.Flops.PerToken,
            ["trained_tokens_per_step"] = b.TrainedTokens, ["step_times_s"] = b.StepSeconds, ["step_time_s"] = b.MeanStepSeconds, ["tokens_per_s"] = b.TokensPerSecond,
            ["peak_memory"] = b.PeakMemory, ["peak_memory_gib"] = b.PeakMemoryMib / 1024, ["mfu"] = b.Mfu, ["peak_tflops"] = b.PeakTflops,
        };
        if (b.Profile is { } profile)
            result["profile"] = profile.Select(p => new Dictionary<string, object>
            {
                ["phase"] = p.Phase, ["seconds_per_step"] = p.SecondsPerStep, ["calls_per_step"] = p.CallsPerStep, ["share"] = p.Share,
                ["aten_ops_per_step"] = p.TopLevelOpsPerStep, ["aten_ops_nested_per_step"] = p.AllOpsPerStep,
                ["aten_ops_by_name"] = (p.ByName ?? []).ToDictionary(x => x.Name, x => x.PerStep),
            }).ToList();
        if (b.Ops is { } ops)
        {
            result["aten_ops_per_step"] = ops.TopLevelOpsPerStep;
            result["aten_ops_nested_per_step"] = ops.AllOpsPerStep;
            result["host_us_per_op"] = ops.HostMicrosPerOp;
            result["host_us_per_inplace_op"] = ops.HostMicrosPerInPlaceOp;
            if (ops.ByName is { } byName) result["aten_ops_by_name"] = byName.ToDictionary(x => x.Name, x => (object)x.PerStep);
        }
        Console.WriteLine(System.Text.Json.JsonSerializer.Serialize(result, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    static string TopNames(IReadOnlyList<OpCalls> names, int count) =>
        string.Join(", ", names.Take(count).Select(x => string.Create(CultureInfo.InvariantCulture, $"{x.Name} {x.PerStep:G4}")))
        + (names.Count > count ? ", …" : "");

    static void Print(BenchReport b)
    {
        var ci = CultureInfo.InvariantCulture;
        var o = b.Options;
        Console.WriteLine(string.Create(ci, $"shape: {o.ShapeName}, {o.Config.NumHiddenLayers} layers, hidden {o.Config.HiddenSize}, vocab {o.Config.VocabSize}"));
        Console.WriteLine(string.Create(ci, $"setup: {o.Device} {OptionNames.Name(o.Precision)}, batch {o.Batch} x seq {o.Sequence}{(o.Documents > 1 ? $" ({o.Documents} documents per row)" : "")}, checkpointing {o.Checkpointing.ToString().ToLowerInvariant()}, LoRA r{o.Lora.Rank} ({b.LoraParameters:N0} params, {(o.Lora.ComputeDtype == LoraComputeDtype.Model ? "model-dtype" : "fp32")} matmuls)"));
        Console.WriteLine(string.Create(ci, $"step_s: {string.Join(" ", b.StepSeconds.Select(s => s.ToString("F3", ci)))} (mean {b.MeanStepSeconds:F3}{(b.StepSeconds.Count >= 2 ? ", first excluded" : "")})"));
        Console.WriteLine(string.Create(ci, $"tokens_per_s: {b.TokensPerSecond:F1}"));
        Console.WriteLine($"peak_memory: {b.PeakMemory}");
        Console.WriteLine($"flops: {b.Flops.Formula}");
        Console.WriteLine(b.Mfu is { } mfu
            ? string.Create(ci, $"mfu: {mfu * 100:F1}% of {b.PeakTflops} TFLOP/s")
            : "mfu: n/a (give --peak-tflops for this device)");
        if (b.Profile is not { } profile) return;
        Console.WriteLine(string.Create(ci, $"profile ({o.ProfileSteps} extra steps, device synced around every phase: {profile.Sum(p => p.SecondsPerStep):F3} s per step):"));
        Console.WriteLine(string.Create(ci, $"  {"phase",-48} {"s/step",11} {"share",6}  {"ATen ops",9} {"(nested)",9}  calls"));
        foreach (var p in profile)
        {
            Console.WriteLine(string.Create(ci, $"  {p.Phase,-48} {p.SecondsPerStep,9:F4} s  {p.Share * 100,5:F1}%  {p.TopLevelOpsPerStep,9:F0} {p.AllOpsPerStep,9:F0}  ({p.CallsPerStep:G4} calls)"));
            if (p.ByName is { Count: > 0 } names) Console.WriteLine("      " + TopNames(names, 10));
        }
        if (b.Ops is { } ops)
        {
            Console.WriteLine(string.Create(ci, $"aten_ops_per_step: {ops.TopLevelOpsPerStep:F0} top-level ({ops.AllOpsPerStep:F0} with nested calls; libtorch RecordFunction, docs/performance.md)"));
            Console.WriteLine(string.Create(ci, $"host_cost_per_op: {ops.HostMicrosPerOp:F2} us (1-element add, new tensor), {ops.HostMicrosPerInPlaceOp:F2} us in place; x ops = {ops.TopLevelOpsPerStep * ops.HostMicrosPerOp / 1e6:F3} s of host time per step"));
            if (ops.ByName is { Count: > 0 } byName)
                Console.WriteLine("top-level ops per step by name: " + TopNames(byName, 24));
        }
    }
}
