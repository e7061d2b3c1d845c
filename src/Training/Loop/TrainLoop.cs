using System.Diagnostics;
using Qwen35.Distributed;
using Qwen35.Models;
using Qwen35.Training.Checkpointing;
using Qwen35.Training.Observability;
using Serilog;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Training.Loop;

/// <summary>Settings of the optimisation loop (derived from a recipe by <see cref="SftTrainer"/>).</summary>
public sealed record TrainLoopOptions
{
    public required int TotalSteps { get; init; }
    public required int GradAccum { get; init; }
    public required LrSchedule Schedule { get; init; }
    public required string OutputDir { get; init; }
    public double MaxGradNorm { get; init; } = 1.0;
    public int MaxNonfiniteSteps { get; init; } = 5;
    public long Seed { get; init; } = 42;
    public int EvalEvery { get; init; }
    public int SaveEvery { get; init; }
    public int KeepLast { get; init; } = 2;
    public int LogEvery { get; init; } = 1;
    public bool ActivationCheckpointing { get; init; }
    public int ChunkRows { get; init; } = ChunkedCrossEntropy.AutoChunkRows;
    public string RecipeHash { get; init; } = "";
}

/// <summary>
/// The training data as the loop reads it: per epoch a deterministic sequence of micro-batches (its order derived from
/// the seed and the epoch number only, so a resumed run finds the same batch at the same position).
/// </summary>
public interface IMicroBatchSource
{
    /// <summary>Micro-batches in epoch <paramref name="epoch"/> (packing can make epochs differ slightly).</summary>
    int Count(int epoch);

    /// <summary>Micro-batch <paramref name="index"/> of epoch <paramref name="epoch"/>.</summary>
    MicroBatch Get(int epoch, int index);
}

/// <summary>Evaluation result: token-mean loss overall and per category. An objective with more metrics than the loss
/// (DPO) adds them overall and per category, under TRL's names.</summary>
public sealed record EvalResult(double Loss, IReadOnlyDictionary<string, double> ByCategory, long Tokens,
    IReadOnlyDictionary<string, double>? Metrics = null,
    IReadOnlyDictionary<string, IReadOnlyDictionary<string, double>>? MetricsByCategory = null);

/// <summary>What one optimizer step did (for progress displays).</summary>
public sealed record StepReport(int Step, int TotalSteps, double Loss, double Lr, double GradNorm, bool Skipped, double ElapsedSeconds,
    IReadOnlyDictionary<string, double>? Metrics = null);

/// <summary>The outcome of <see cref="TrainLoop.Run"/>. <paramref name="Interrupted"/>: a stop was requested (Ctrl-C);
/// <paramref name="Checkpoint"/> is then the checkpoint that holds the last completed step (null when no step ran).</summary>
public sealed record TrainResult(TrainerState State, IReadOnlyList<MetricsRecord> History, EvalResult? FinalEval, bool Completed,
    bool Interrupted = false, string? Checkpoint = null);

/// <summary>
/// The optimisation loop, nanoGPT-shaped: take the micro-batches of one optimizer step, count their trained targets
/// FIRST, then per micro-batch forward + chunked loss (sum / step's total count) + backward in its own dispose
/// scope; clip; skip the update on NaN/inf; set the scheduled LR; AdamW step; zero grads; log, eval, checkpoint.
/// </summary>
public sealed class TrainLoop(
    Qwen35ForCausalLM model,
    IReadOnlyList<(string Name, Parameter Param)> trainable,
    AdamW optimizer,
    IMicroBatchSource data,
    IReadOnlyList<MicroBatch> evalBatches,
    IReadOnlyList<string> categories,
    TrainLoopOptions options,
    ILogger log,
    Action<string> saveAdapter,
    ICommunicator? communicator = null)
{
    // Data parallelism (docs/distributed.md): every rank runs this same loop on its share of each optimizer step's
    // micro-batches; one process is the world of one, where every collective is the identity.
    readonly ICommunicator comm = communicator ?? SingleProcess.Instance;

    /// <summary>Called after every optimizer step (e.g. to advance a progress bar).</summary>
    public Action<StepReport>? OnStep { get; set; }

    /// <summary>Evaluations run every N steps and at the last step (<see cref="IPeriodicEvaluator"/>); their numbers
    /// land in metrics.jsonl under <c>evals</c>. Needs <see cref="Tokenizer"/>.</summary>
    public IReadOnlyList<IPeriodicEvaluator> PeriodicEvaluators { get; init; } = [];

    /// <summary>The run's tokenizer, handed to <see cref="PeriodicEvaluators"/>.</summary>
    public Qwen35.Data.ITokenizer? Tokenizer { get; init; }

    /// <summary>What a micro-batch's loss is (SFT's cross-entropy unless set).</summary>
    public ITrainingObjective Objective { get; init; } = SftObjective.Instance;

    /// <summary>Steps per epoch: the micro-batches of an epoch grouped by grad_accum (a partial last group is dropped;
    /// an epoch smaller than grad_accum makes one step of all its micro-batches).</summary>
    public static int StepsPerEpoch(int microBatches, int gradAccum) =>
        microBatches == 0 ? 0 : microBatches / GroupSize(microBatches, gradAccum);

    static int GroupSize(int microBatches, int gradAccum) => Math.Max(1, Math.Min(gradAccum, microBatches));

    /// <summary>Optimizer steps of <paramref name="epochs"/> full passes.</summary>
    public static int StepsFor(IMicroBatchSource data, int epochs, int gradAccum) =>
        Enumerable.Range(0, epochs).Sum(e => StepsPerEpoch(data.Count(e), gradAccum));

    /// <summary>
    /// Trains from <paramref name="resumeFrom"/> (or from scratch) until TotalSteps, or until
    /// <paramref name="stopAfterStep"/> steps are done (used to simulate an interruption), or until <paramref name="stop"/>
    /// is cancelled: checked between optimizer steps, so the step under way finishes, is checkpointed, and the run returns
    /// <see cref="TrainResult.Interrupted"/>.
    /// </summary>
    public TrainResult Run(TrainerState? resumeFrom = null, int? stopAfterStep = null, CancellationToken stop = default)
    {
        var device = model.LmHeadWeight.device;
        var store = new CheckpointStore(options.OutputDir, options.KeepLast);
        var state = resumeFrom ?? new TrainerState { Seed = options.Seed, RecipeHash = options.RecipeHash };
        // Rank 0 is the one writer; the other ranks keep the history in memory only.
        using var metrics = new MetricsWriter(comm.IsWriter ? Path.Combine(options.OutputDir, "metrics.jsonl") : null, resumeFrom?.Step);
        var clock = Stopwatch.StartNew();
        if (data.Count(0) == 0) throw new InvalidOperationException("no training micro-batches");
        if (data.Count(0) < comm.WorldSize)
            throw new UserInputException($"the training data makes {data.Count(0)} micro-batches per epoch, fewer than the {comm.WorldSize} processes of this job; use fewer processes or more data");
        // grad_accum is per process (as in Hugging Face and torchrun): a step takes grad_accum x world size micro-batches.
        var accum = options.GradAccum * comm.WorldSize;
        // What the optimizer updates: with flat LoRA storage (LoraAdamW) the one flat buffer, so clipping, the NaN
        // check and zeroing below are a few ops on its one gradient instead of several per LoRA tensor.
        var parameters = LoraAdamW.Parameters(optimizer);
        long windowTokens = 0;
        var windowClock = Stopwatch.StartNew();
        EvalResult? lastEval = null;
        string? savedAt = null;

        while (state.Step < options.TotalSteps && (stopAfterStep is null || state.Step < stopAfterStep))
        {
            if (StopRequested(stop))
            {
                // Between optimizer steps: the last one is complete, so a checkpoint here resumes exactly. A run that
                // has not finished a step since it started (or resumed) has nothing new to save.
                if (savedAt is null && state.Step > (resumeFrom?.Step ?? 0) && comm.IsWriter)
                {
                    savedAt = store.Save(state, trainable, optimizer, saveAdapter);
                    log.Information("checkpoint {Dir}", savedAt);
                }
                return new TrainResult(state, metrics.History, lastEval, false, Interrupted: true, Checkpoint: savedAt);
            }
            savedAt = null;

            // Data position: whole groups of grad_accum micro-batches; a new epoch starts when the current one has
            // no full group left (its order is re-derived from the epoch number, so resume needs only the position).
            var epoch = state.Epoch;
            var pos = state.MicroBatchInEpoch;
            var groupSize = GroupSize(data.Count(epoch), accum);
            if (pos / groupSize >= StepsPerEpoch(data.Count(epoch), accum))
            {
                epoch++;
                pos = 0;
                groupSize = GroupSize(data.Count(epoch), accum);
            }
            var stepsPerEpoch = StepsPerEpoch(data.Count(epoch), accum);
            var group = Enumerable.Range(pos, groupSize).Select(i => data.Get(epoch, i)).ToList();

            var (loss, gradNorm, skipped, empty, stepMetrics) = Step(state.Step, group, parameters, device);
            var targets = group.Sum(b => b.TargetCount);
            windowTokens += group.Sum(b => b.RealTokens);
            state = state with
            {
                Step = state.Step + 1,
                Epoch = epoch,
                MicroBatchInEpoch = pos + groupSize,
                TrainedTokens = state.TrainedTokens + targets,
                SkippedNonfinite = state.SkippedNonfinite + (skipped && !empty ? 1 : 0),
                ElapsedSeconds = (resumeFrom?.ElapsedSeconds ?? 0) + clock.Elapsed.TotalSeconds,
                LastLoss = skipped ? state.LastLoss : loss,
            };
            if (empty)
                log.Warning("step {Step}: no trained target (all labels -100 or category weight 0); nothing to update", state.Step);
            else if (skipped)
            {
                log.Warning("step {Step}: non-finite loss {Loss} or grad norm {GradNorm}; update skipped ({Count}/{Max})",
                    state.Step, loss, gradNorm, state.SkippedNonfinite, options.MaxNonfiniteSteps);
                if (state.SkippedNonfinite >= options.MaxNonfiniteSteps)
                    throw new TrainingDivergedException(
                        $"stopped after {state.SkippedNonfinite} optimizer steps with a non-finite loss or gradient (schedule.max_nonfinite_steps); last at step {state.Step}");
            }

            var isLast = state.Step == options.TotalSteps;
            var doEval = evalBatches.Count > 0 && (isLast || (options.EvalEvery > 0 && state.Step % options.EvalEvery == 0));
            EvalResult? eval = doEval ? Objective.Evaluate(model, evalBatches, categories, options.ChunkRows, comm) : null;
            if (eval != null) lastEval = eval;
            var evals = RunPeriodicEvaluators(state.Step, isLast);
            if (doEval || isLast || evals is not null || state.Step % options.LogEvery == 0)
            {
                var seconds = windowClock.Elapsed.TotalSeconds;
                var record = new MetricsRecord
                {
                    Step = state.Step,
                    Epoch = epoch + (double)(pos + groupSize) / (stepsPerEpoch * groupSize),
                    Loss = skipped ? null : loss,
                    EvalLoss = eval?.Loss,
                    EvalLossByCategory = eval?.ByCategory,
                    Lr = options.Schedule.At(state.Step - 1),
                    GradNorm = double.IsFinite(gradNorm) ? gradNorm : null,
                    TrainedTokens = state.TrainedTokens,
                    TokensPerSecond = seconds > 0 ? windowTokens / seconds : null,
                    ElapsedSeconds = Math.Round(state.ElapsedSeconds, 3),
                    // CPU: this process's RSS; CUDA: device-wide used memory from NVML when available.
                    MemoryMb = device.type == DeviceType.CUDA ? Nvml.UsedMb() is { } mb ? Math.Round(mb, 1) : null
                        : Math.Round(ProcessMemory.RssMb(), 1),
                    SkippedNonfinite = state.SkippedNonfinite,
                    Evals = evals,
                    Extra = ObjectiveMetrics.ForRecord(skipped ? null : stepMetrics, eval),
                };
                metrics.Write(record);
                log.Information("step {Step}/{Total} loss {Loss:F4} lr {Lr:E2} grad_norm {GradNorm:F3} tok/s {TokPerS:F0}{Metrics}{Eval}",
                    state.Step, options.TotalSteps, loss, record.Lr, gradNorm, record.TokensPerSecond ?? 0, ObjectiveMetrics.Format(stepMetrics),
                    eval is null ? "" : $" eval_loss {eval.Loss:F4} ({string.Join(", ", eval.ByCategory.Select(kv => $"{kv.Key} {kv.Value:F4}"))})");
                windowTokens = 0;
                windowClock.Restart();
            }
            // A non-finite eval loss means the adapter is broken even when the training steps were skipped or finite;
            // finishing "successfully" would hand out a NaN adapter. Checkpoints written so far stay.
            if (eval is not null && !double.IsFinite(eval.Loss))
                throw new TrainingDivergedException(
                    $"eval loss is {eval.Loss} at step {state.Step} (the run diverged; lower schedule.learning_rate or check the data)");
            OnStep?.Invoke(new StepReport(state.Step, options.TotalSteps, loss, options.Schedule.At(state.Step - 1), gradNorm, skipped, state.ElapsedSeconds,
                stepMetrics));

            if (options.SaveEvery > 0 && state.Step % options.SaveEvery == 0 && comm.IsWriter)
            {
                savedAt = store.Save(state, trainable, optimizer, saveAdapter);
                log.Information("checkpoint {Dir}", savedAt);
            }
        }
        return new TrainResult(state, metrics.History, lastEval, state.Step >= options.TotalSteps);
    }

    /// <summary>
    /// Runs the periodic evaluators due at <paramref name="step"/> (its multiples of Every, and the last step) with the
    /// model in eval mode and no gradients, then restores training mode. Returns their numbers merged (null when none
    /// ran or none returned any); an evaluator that throws is logged and skipped. On several processes rank 0 alone runs
    /// them (they generate and write files; the other ranks wait for it in the next step's collective).
    /// </summary>
    SortedDictionary<string, double>? RunPeriodicEvaluators(int step, bool isLast)
    {
        if (!comm.IsWriter) return null;
        var due = PeriodicEvaluators.Where(e => isLast || (e.Every > 0 && step % e.Every == 0)).ToList();
        if (due.Count == 0) return null;
        if (Tokenizer is null) throw new InvalidOperationException("periodic evaluators need TrainLoop.Tokenizer");
        SortedDictionary<string, double>? merged = null;
        var wasTraining = model.training;
        model.eval();
        try
        {
            using var noGrad = no_grad();
            foreach (var evaluator in due)
            {
                var clock = Stopwatch.StartNew();
                try
                {
                    var numbers = evaluator.Evaluate(new PeriodicEvalContext(model, Tokenizer, step, options.TotalSteps, log));
                    foreach (var (key, value) in numbers) (merged ??= new(StringComparer.Ordinal))[key] = value;
                    log.Information("{Name} evaluation at step {Step} ({Seconds:F1} s): {Numbers}", evaluator.Name, step, clock.Elapsed.TotalSeconds,
                        string.Join(", ", numbers.Select(kv => $"{kv.Key} {kv.Value:G4}")));
                }
                catch (Exception e) when (e is not OperationCanceledException)
                {
                    log.Warning("{Name} evaluation at step {Step} failed, training continues: {Message}", evaluator.Name, step, e.Message);
                }
            }
        }
        finally
        {
            model.train(wasTraining);
        }
        return merged;
    }

    /// <summary>One optimizer step over a group of micro-batches. Returns (mean loss, grad norm before clipping,
    /// update skipped, nothing to train on, the objective's other metrics as step means).</summary>
    (double Loss, double GradNorm, bool Skipped, bool Empty, IReadOnlyDictionary<string, double>? Metrics) Step(int step, IReadOnlyList<MicroBatch> group, List<Parameter> parameters, Device device)
    {
        // Count the trained targets of the WHOLE step before any forward: each micro-batch's loss sum is divided by
        // this total, so two micro-batches of unequal length give exactly the gradient of one batch holding both
        // (the late-2024 gradient-accumulation fix; transformers #34191, torchtune #1875).
        var total = group.Sum(Objective.Weight);
        if (total <= 0) return (double.NaN, double.NaN, true, true, null);
        double loss, gradNorm;
        var metricNames = Objective.MetricNames;
        Dictionary<string, double>? metrics = null;
        using (var stepScope = NewDisposeScope())
        {
            // The micro-batch loss sums stay on the device: the host waits for the device once per optimizer step
            // (below), not once per micro-batch or per loss chunk.
            // [loss sum, the objective's metric sums...] (SFT: the loss sum alone).
            var lossSum = zeros(1 + metricNames.Count, dtype: ScalarType.Float64, device: device);
            // This rank's share: micro-batches rank, rank + world, ... of the step (all of them on one process). The
            // dropout seed follows the micro-batch's place in the whole step, so the share does not change it.
            var mine = Enumerable.Range(0, group.Count).Where(i => i % comm.WorldSize == comm.Rank).ToList();
            // Upload every micro-batch of the share first: a copy from pageable host memory waits for the device
            // (cudaMemcpy semantics), so uploading between micro-batches would stall after each backward. Here the
            // device is idle anyway (the previous step ended with its read-back). The tensors are a few KB per row.
            var uploaded = mine.Select(i => group[i].ToTensors(device)).ToList();
            for (var k = 0; k < mine.Count; k++)
            {
                using var scope = NewDisposeScope();   // everything a micro-batch allocates dies here
                var tensors = uploaded[k];
                var dropoutSeed = unchecked(options.Seed * 7_919 + step * 131L + mine[k]);
                using var sum = Objective.ForwardBackward(model, group[mine[k]], tensors, 1.0 / total,
                    new TrainingForward(options.ActivationCheckpointing, dropoutSeed), options.ChunkRows);
                lossSum.add_(sum);
            }
            // The sums over all ranks: the gradient buffer once per optimizer step, then the loss and metric sums.
            GradientSync.AllReduce(parameters, comm);
            comm.AllReduceSum(lossSum);
            // Clip on the device (the norm before clipping is returned); max_norm 0 means "measure only".
            var maxNorm = options.MaxGradNorm > 0 ? options.MaxGradNorm : double.MaxValue;
            var norm = GradientClipping.ClipOnDevice(parameters, maxNorm)?.to(ScalarType.Float64)
                       ?? zeros(1, dtype: ScalarType.Float64, device: device).squeeze(0);
            // The one host sync of the step: loss and grad norm in a single transfer (the NaN guard and the log need them).
            var host = cat([lossSum, norm.reshape(1)]).cpu().data<double>().ToArray();
            loss = host[0] / total;
            gradNorm = host[^1];
            if (metricNames.Count > 0) metrics = metricNames.Select((n, k) => (n, host[1 + k] / total)).ToDictionary(x => x.n, x => x.Item2);
        }
        var skipped = !double.IsFinite(loss) || !double.IsFinite(gradNorm);
        if (!skipped)
        {
            var lr = options.Schedule.At(step);
            foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
            optimizer.step();
        }
        ZeroGrads(parameters);
        return (loss, gradNorm, skipped, false, metrics);
    }

    /// <summary>Ctrl-C on any rank stops every rank after the same step (mpirun forwards the signal, but each process
    /// could see it between different steps; a rank that left the loop alone would stall the others' collectives).</summary>
    bool StopRequested(CancellationToken stop)
    {
        if (comm.WorldSize == 1) return stop.IsCancellationRequested;
        using var scope = NewDisposeScope();
        var flag = tensor(new long[] { stop.IsCancellationRequested ? 1 : 0 });
        comm.AllReduceSum(flag);
        return flag.data<long>()[0] > 0;
    }

    /// <summary>Zeroes gradients in place. (AdamW.zero_grad leaves one tensor wrapper per parameter alive per call,
    /// which the flat-memory test catches; a dispose scope around our own loop releases them.)</summary>
    static void ZeroGrads(List<Parameter> parameters)
    {
        using var scope = NewDisposeScope();
        foreach (var p in parameters) p.grad?.zero_();
    }

    /// <summary>Token-mean loss over the evaluation batches, overall and per category (no gradients, no dropout).
    /// <paramref name="comm"/>: on several processes each rank evaluates batches rank, rank + world, ... and the sums
    /// are all-reduced, so every rank returns the result of the whole set.</summary>
    public static EvalResult Evaluate(Qwen35ForCausalLM model, IReadOnlyList<MicroBatch> batches, IReadOnlyList<string> categories,
        int chunkRows = ChunkedCrossEntropy.AutoChunkRows, ICommunicator? comm = null)
    {
        comm ??= SingleProcess.Instance;
        var wasTraining = model.training;
        model.eval();
        var device = model.LmHeadWeight.device;
        var sums = new double[categories.Count + 1];     // last slot: documents without a category
        var counts = new long[categories.Count + 1];
        try
        {
            using var noGrad = no_grad();
            foreach (var batch in batches.Where((_, i) => i % comm.WorldSize == comm.Rank))
            {
                using var scope = NewDisposeScope();
                var t = batch.ToTensors(device);
                var hidden = model.Forward(t.Inputs);
                using var sel = ChunkedCrossEntropy.Select(hidden, t.Labels, t.TargetIndex, null, t.CategoryIds);
                if (sel.Count == 0) continue;
                var losses = ChunkedCrossEntropy.TokenLosses(sel, model.LmHeadWeight, chunkRows).cpu().to(ScalarType.Float64);
                var groups = sel.Groups?.cpu().data<long>().ToArray();
                var values = losses.data<double>().ToArray();
                for (var i = 0; i < values.Length; i++)
                {
                    var g = groups is null || groups[i] < 0 || groups[i] >= categories.Count ? categories.Count : (int)groups[i];
                    sums[g] += values[i];
                    counts[g]++;
                }
            }
        }
        finally
        {
            model.train(wasTraining);
        }
        if (comm.WorldSize > 1)
        {
            using var scope = NewDisposeScope();
            var s = tensor(sums);
            var c = tensor(counts);
            comm.AllReduceSum(s);
            comm.AllReduceSum(c);
            s.data<double>().CopyTo(sums);
            c.data<long>().CopyTo(counts);
        }
        var byCategory = new SortedDictionary<string, double>(StringComparer.Ordinal);
        for (var c = 0; c < categories.Count; c++)
            if (counts[c] > 0) byCategory[categories[c]] = sums[c] / counts[c];
        var n = counts.Sum();
        return new EvalResult(n > 0 ? sums.Sum() / n : double.NaN, byCategory, n);
    }
}

/// <summary>Training stopped because too many steps produced a non-finite loss or gradient.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
