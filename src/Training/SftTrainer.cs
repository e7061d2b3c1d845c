using System.Diagnostics;
using System.Globalization;
using System.Text;
using Qwen35.Data;
using Qwen35.Distributed;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Training.Checkpointing;
using Qwen35.Training.Datasets;
using Qwen35.Training.Dpo;
using Qwen35.Training.Loop;
using Qwen35.Training.Observability;
using Qwen35.Training.Recipes;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Training;

/// <summary>What a finished (or interrupted) training run produced.</summary>
public sealed record TrainRunResult(TrainResult Loop, string? AdapterDir, double? FirstLoss, double? LastLoss, double WallSeconds);

/// <summary>
/// LoRA supervised fine-tuning of a Qwen3.5 model from a <see cref="Recipe"/>: the torchtune recipe shape (setup in
/// dependency order, then the loop), with the loop itself in <see cref="TrainLoop"/>. With <c>objective: dpo</c> the
/// same run trains on preference pairs (<see cref="DpoRun"/> sets up the data and the reference; the loop runs
/// <see cref="DpoObjective"/> instead of the SFT loss, docs/dpo.md).
/// </summary>
public sealed class SftTrainer : IDisposable
{
    readonly Recipe _recipe;
    readonly string _baseDir;
    readonly ILogger _log;
    Qwen35.Export.GgufRunExport? _gguf;

    Qwen35ForCausalLM? _model;
    SftData? _data;
    ITokenizer? _tokenizer;
    AdamW? _optimizer;
    List<(string Name, Parameter Param)> _trainable = [];
    OutputDirectory? _output;
    OutputMode _mode;
    ICommunicator _comm = SingleProcess.Instance;
    DpoRun? _dpo;
    LoraOptions? _loraOptions;

    /// <param name="recipe">A validated recipe.</param>
    /// <param name="baseDir">Folder that relative input paths of the recipe resolve against.</param>
    /// <param name="log">Where progress goes (the CLI logs to stderr and output_dir/train.log.jsonl).</param>
    public SftTrainer(Recipe recipe, string baseDir, ILogger log)
    {
        _recipe = recipe;
        _baseDir = baseDir;
        _log = log;
    }

    /// <summary>train.log.jsonl of the run, opened once output_dir exists (null: the logger handles files itself).</summary>
    public RunLogFile? LogFile { get; init; }

    /// <summary>This process's place in a multi-process job (<c>mpirun</c>, <c>srun</c>), or null for a single process.
    /// Each rank takes cuda:LOCAL_RANK for a recipe's <c>cuda</c>, and grad_accum is per process (docs/distributed.md).</summary>
    public LaunchInfo? Launch { get; init; }

    int WorldSize => Launch?.WorldSize ?? 1;

    /// <summary>The device the model was placed on (known after <see cref="Setup"/>).</summary>
    public string? Device => _model?.LmHeadWeight.device.ToString();

    /// <summary>Called after every optimizer step (progress bars).</summary>
    public Action<StepReport>? OnStep { get; set; }

    /// <summary>Evaluations run during training (<see cref="IPeriodicEvaluator"/>), e.g. the safety evaluation that
    /// <c>trainer train</c> builds from the recipe's <c>eval.safety</c> section.</summary>
    public IReadOnlyList<IPeriodicEvaluator> PeriodicEvaluators { get; init; } = [];

    /// <summary>Optimizer steps the run will take (known after <see cref="Setup"/>).</summary>
    public int TotalSteps { get; private set; }

    public SftData Data => _data ?? throw new InvalidOperationException(_dpo is null ? "call Setup first" : "a DPO run has preference data: see Dpo");

    /// <summary>The DPO part of the run (pairs, reference, objective); null for SFT or before <see cref="Setup"/>.</summary>
    public DpoRun? Dpo => _dpo;

    /// <summary>Builds everything, in dependency order. Each step states what it needs from the previous ones.
    /// <paramref name="mode"/>: a new run (refused if output_dir holds an earlier one), a new run that first deletes the
    /// earlier run's files, or a resumed run (<see cref="OutputMode"/>).</summary>
    public void Setup(OutputMode mode = OutputMode.Fresh)
    {
        var r = _recipe;
        // 1. Output folder: checked before anything is loaded, but neither created nor cleaned until Run starts, so a
        // setup that fails (model, data) leaves no folder behind and an earlier run untouched (OutputDirectory).
        _mode = mode;
        _output = OutputDirectory.Check(r.OutputDir, mode);

        // 2. Session: model folder or builtin, tokenizer, dtype, device, threads, resolved once (see Session).
        // Seeding before the model makes random weights and LoRA init repeatable.
        var session = Session.Open(r.SessionOptions with { Device = Launch?.DeviceFor(r.Device) ?? r.Device }, _baseDir);
        if (Launch is { } launch)
            _log.Information("rank {Rank} of {World} ({Launcher}): device {Device}", launch.Rank, launch.WorldSize, launch.Launcher, session.Device);
        torch.manual_seed(r.Schedule.Seed);
        if (session.Device.type == DeviceType.CUDA) torch.backends.cuda.matmul.allow_tf32 = true;

        // 3. Model, then the LoRA adapter on top: every base weight frozen, adapter parameters fp32 and trainable.
        _model = session.LoadModel(_log, r.Schedule.Seed);
        // (DPO with a reference adapter trains a copy of it, with that adapter's own LoRA options.)
        _loraOptions = DpoRun.AttachAdapter(r, _baseDir, _model, _log);
        _trainable = Session.Trainable(_model);
        _model.train();

        // 4. Tokenizer: the recipe's, else the model folder's; its ids must fit the model's vocabulary.
        var tokenizer = _tokenizer = session.Tokenizer;
        // The recipe's GGUF files: a model llama.cpp cannot hold is refused now, not after training.
        _gguf = Qwen35.Export.GgufRunExport.Prepare(r.Export, session.Config, session.ModelDir is { } md ? Path.Combine(md, "config.json") : r.Model,
            session.ModelDir is { } d ? Path.GetFileName(Path.TrimEndingDirectorySeparator(d)) : "builtin-tiny",
            tokenizer is QwenTokenizer q ? Path.GetDirectoryName(q.Source) : null);

        // 5. Data: needs the tokenizer (encoding, pad id) and the schedule's micro-batch size and seed.
        // DPO: preference pairs instead, and the reference log-probs, before the optimizer or a checkpoint touches
        // the adapter (DpoRun).
        if (r.Objective == TrainingObjectiveKind.Dpo) _dpo = DpoRun.Prepare(r, _baseDir, _model, tokenizer, mode, _log);
        else _data = SftData.Load(r.Data, r.Schedule.MicroBatchSize, r.Schedule.Seed, _baseDir, tokenizer, _log);
        var source = (IMicroBatchSource?)_dpo?.Data ?? _data!;

        // 6. Optimizer: AdamW over the LoRA parameters only, stored as one flat fp32 buffer (LoraAdamW).
        var s = r.Schedule;
        _optimizer = LoraAdamW.Create(_trainable, lr: s.LearningRate, beta1: s.Beta1, beta2: s.Beta2,
            eps: s.Eps, weightDecay: s.WeightDecay);

        // 7. Schedule: total steps from max_steps or epochs × steps per epoch; warm-up from steps or ratio.
        TotalSteps = s.MaxSteps ?? TrainLoop.StepsFor(source, s.Epochs, s.GradAccum * WorldSize);
        var stepsPerEpoch = TrainLoop.StepsPerEpoch(source.Count(0), s.GradAccum * WorldSize);
        _log.Information("schedule: {Steps} optimizer steps ({PerEpoch} per epoch), {Micro} micro-batches of {Rows} {What} x grad_accum {GA}, lr {Lr} {Kind}, warmup {Warmup}",
            TotalSteps, stepsPerEpoch, source.Count(0), s.MicroBatchSize, _dpo is null ? "rows" : "pairs", s.GradAccum, s.LearningRate, OptionNames.Name(s.LrScheduler),
            s.WarmupFor(TotalSteps));
    }

    /// <summary>
    /// Trains (from scratch, or continuing the checkpoint named by <paramref name="resume"/>: a folder or
    /// <c>latest</c>), then writes output_dir/adapter (PEFT format + model card) and output_dir/loss.png.
    /// <paramref name="stopAfterStep"/> interrupts the run after that many steps (no final adapter); so does cancelling
    /// <paramref name="stop"/> (Ctrl-C), which also checkpoints the last completed step.
    /// </summary>
    public TrainRunResult Run(string? resume = null, int? stopAfterStep = null, CancellationToken stop = default)
    {
        if (_model is null) Setup(resume is null ? OutputMode.Fresh : OutputMode.Resume);
        if (resume is not null && _mode != OutputMode.Resume)
            throw new InvalidOperationException("resuming needs Setup(OutputMode.Resume)");
        var r = _recipe;
        var s = r.Schedule;
        var wall = Stopwatch.StartNew();
        var schedule = s.LrScheduleFor(TotalSteps);
        var hash = RecipeLoader.Hash(r);
        var options = new TrainLoopOptions
        {
            TotalSteps = TotalSteps, GradAccum = s.GradAccum, Schedule = schedule, OutputDir = r.OutputDir,
            MaxGradNorm = s.MaxGradNorm, MaxNonfiniteSteps = s.MaxNonfiniteSteps, Seed = s.Seed,
            EvalEvery = r.EvalEvery, SaveEvery = r.SaveEvery, KeepLast = r.KeepLast, LogEvery = r.LogEvery,
            ActivationCheckpointing = r.ActivationCheckpointing, RecipeHash = hash,
        };

        // 8. Resume state: adapter weights, AdamW moments and step counts, data position. Loaded last, on top of
        // the freshly built objects, exactly as they were at the checkpoint.
        TrainerState? state = null;
        if (resume is not null)
        {
            var dir = new CheckpointStore(r.OutputDir, r.KeepLast).Resolve(resume);
            state = CheckpointStore.Load(dir, _trainable, _optimizer!);
            if (state.RecipeHash != hash)
                _log.Warning("resume: checkpoint {Dir} was written by a different recipe (hash {Old}, now {New}); continuing with the current recipe", dir, state.RecipeHash, hash);
            _log.Information("resume: {Dir} at step {Step}/{Total} (epoch {Epoch}, micro-batch {Pos})", dir, state.Step, TotalSteps, state.Epoch, state.MicroBatchInEpoch);
        }

        // Several processes: join the job now that every rank's setup succeeded (bad input stops each rank alike before
        // this point), and wait until every rank has checked output_dir before rank 0 starts writing into it.
        _comm = Communicators.Create(Launch, _model!.LmHeadWeight.device, note => _log.Warning("{Note}", note));
        _comm.Barrier();
        if (_comm.WorldSize > 1) _log.Information("data parallel: {World} processes, collectives over {Backend}", _comm.WorldSize, _comm.Backend);

        // Setup (resume state included) succeeded: now output_dir is cleaned (--overwrite), created, and receives the
        // log and the exact recipe. Rank 0 is the one writer.
        if (_comm.IsWriter)
        {
            _output!.Begin();
            LogFile?.Open(Path.Combine(r.OutputDir, "train.log.jsonl"));
            AtomicFile.WriteAllText(Path.Combine(r.OutputDir, "recipe.yaml"), RecipeLoader.ToYaml(r));
            _dpo?.SaveCache(r.OutputDir);
        }

        // SFT trains on the SFT batches with the cross-entropy; DPO on the preference pairs with its objective.
        var source = (IMicroBatchSource?)_dpo?.Data ?? _data!;
        var (evalBatches, categories) = _dpo is { } dpo ? (dpo.Data.EvalBatches, dpo.Data.Categories) : (_data!.EvalBatches, _data.Categories);
        var loop = new TrainLoop(_model!, _trainable, _optimizer!, source, evalBatches, categories, options, _log, SaveAdapter, _comm)
        {
            OnStep = OnStep,
            Objective = (ITrainingObjective?)_dpo?.Objective ?? SftObjective.Instance,
            PeriodicEvaluators = PeriodicEvaluators,
            Tokenizer = _tokenizer,
        };
        if (r.Eval.Safety is not null && PeriodicEvaluators.Count == 0 && _comm.IsWriter)
            _log.Warning("eval.safety is set but this trainer was given no periodic evaluator (trainer train builds it; a program using SftTrainer passes one in PeriodicEvaluators); no safety evaluation will run");
        TrainResult result;
        try
        {
            result = loop.Run(state, stopAfterStep, stop);
        }
        catch (Exception e) when (_comm.WorldSize > 1)
        {
            // The other ranks would wait for this one in their next collective: say which rank failed and why, then end
            // the whole job (MPI_Abort; mpirun reports the exit code).
            _log.Fatal("rank {Rank} of {World} failed: {Error}; ending the job", _comm.Rank, _comm.WorldSize, e.Message);
            _comm.Abort(e is UserInputException ? 2 : 3);
            throw;
        }
        if (!_comm.IsWriter) return new TrainRunResult(result, null, null, null, wall.Elapsed.TotalSeconds);

        var losses = result.History.Where(h => h.Loss is not null).Select(h => h.Loss!.Value).ToList();
        double? first = losses.Count > 0 ? losses[0] : null, last = losses.Count > 0 ? losses[^1] : null;
        LossPlot.Save(Path.Combine(r.OutputDir, "loss.png"), result.History, $"LoRA {(_dpo is null ? "SFT" : r.Dpo.LossType == DpoLossType.Ipo ? "IPO" : "DPO")} {Path.GetFileName(r.Model.TrimEnd('/'))}");
        string? adapterDir = null;
        if (result.Completed)
        {
            adapterDir = Path.Combine(r.OutputDir, "adapter");
            foreach (var warning in PeftAdapter.Save(adapterDir, _model!, _loraOptions!, r.Model))
                _log.Warning("adapter portability: {Warning}", warning);
            AtomicFile.WriteAllText(Path.Combine(adapterDir, "README.md"), _dpo is null ? ModelCard(result, first, last) : DpoModelCard.Write(r, _dpo, result, TotalSteps, first, last));
            _log.Information("adapter written to {Dir}", adapterDir);
            foreach (var line in _gguf?.Write(_model!, adapterDir, r.OutputDir) ?? []) _log.Information("gguf: wrote {File}", line);
        }
        _log.Information("done: {Steps} steps, loss {First:F4} -> {Last:F4}, eval {Eval}, {Seconds:F1} s",
            result.State.Step, first ?? double.NaN, last ?? double.NaN, result.FinalEval?.Loss ?? double.NaN, wall.Elapsed.TotalSeconds);
        return new TrainRunResult(result, adapterDir, first, last, wall.Elapsed.TotalSeconds);
    }

    void SaveAdapter(string dir) => PeftAdapter.Save(dir, _model!, _loraOptions!, _recipe.Model);

    /// <summary>A Hugging Face style model card: what was trained on what, how, and how well.</summary>
    string ModelCard(TrainResult result, double? first, double? last)
    {
        var r = _recipe;
        var ci = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.AppendLine("---");
        sb.AppendLine(ci, $"base_model: {r.Model}");
        sb.AppendLine("library_name: peft");
        sb.AppendLine("tags: [lora, sft, qwen3.5]");
        sb.AppendLine("---");
        sb.AppendLine();
        sb.AppendLine(ci, $"# LoRA adapter for {r.Model}");
        sb.AppendLine();
        sb.AppendLine("Trained with the C#/TorchSharp Qwen3.5 LoRA trainer (`trainer train`). Load with PEFT:");
        sb.AppendLine("`PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(BASE), \"adapter\")`.");
        sb.AppendLine();
        sb.AppendLine("## Data");
        sb.AppendLine(ci, $"- train: {string.Join(", ", r.Data.Train)} ({_data!.TrainExamples} examples, {_data.TrainTokens} tokens)");
        sb.AppendLine(ci, $"- eval: {(r.Data.Eval ?? $"{r.Data.EvalSplit:P0} stratified split of train")} ({_data.EvalExamples} examples)");
        sb.AppendLine(ci, $"- categories: {string.Join(", ", _data.TrainReport.KeptPerCategory.Select(kv => $"{kv.Key} ({kv.Value})"))}");
        sb.AppendLine(ci, $"- max_length {r.Data.MaxLength} ({OptionNames.Name(r.Data.Truncation)}), packing {(r.Data.Packing ? $"on, rows of {r.Data.RowLength()}" : "off")}, train_think_block {r.Data.TrainThinkBlock.ToString().ToLowerInvariant()}, assistant_turns {OptionNames.Name(r.Data.AssistantTurns)}");
        sb.AppendLine();
        sb.AppendLine("## Hyperparameters");
        sb.AppendLine(ci, $"- LoRA: r {r.Lora.Rank}, alpha {r.Lora.Alpha}, dropout {r.Lora.Dropout}, targets {r.Lora.TargetModules}{(r.Lora.UseRsLora ? ", rsLoRA" : "")}");
        sb.AppendLine(ci, $"- optimizer: AdamW lr {r.Schedule.LearningRate}, betas ({r.Schedule.Beta1}, {r.Schedule.Beta2}), weight decay {r.Schedule.WeightDecay}, max grad norm {r.Schedule.MaxGradNorm}");
        sb.AppendLine(ci, $"- schedule: {OptionNames.Name(r.Schedule.LrScheduler)}, {TotalSteps} steps, warmup {r.Schedule.WarmupFor(TotalSteps)}, micro-batch {r.Schedule.MicroBatchSize} x grad_accum {r.Schedule.GradAccum}, seed {r.Schedule.Seed}");
        sb.AppendLine(ci, $"- precision {OptionNames.Name(r.Precision)} on {r.Device}, activation checkpointing {r.ActivationCheckpointing.ToString().ToLowerInvariant()}");
        sb.AppendLine();
        sb.AppendLine("## Results");
        sb.AppendLine(ci, $"- train loss: {first:F4} (first step) -> {last:F4} (last step)");
        if (result.FinalEval is { } e)
        {
            sb.AppendLine(ci, $"- eval loss: {e.Loss:F4} over {e.Tokens} tokens");
            foreach (var (c, v) in e.ByCategory) sb.AppendLine(ci, $"  - {c}: {v:F4}");
        }
        sb.AppendLine(ci, $"- trained tokens: {result.State.TrainedTokens}, skipped non-finite steps: {result.State.SkippedNonfinite}, training time {result.State.ElapsedSeconds:F0} s");
        return sb.ToString();
    }

    public void Dispose()
    {
        _comm.Dispose();
        _optimizer?.Dispose();
        _model?.Dispose();
    }
}
