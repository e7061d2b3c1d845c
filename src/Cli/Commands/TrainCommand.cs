using System.CommandLine;
using Qwen35.Data;
using Qwen35.Distributed;
using Qwen35.Lora;
using Qwen35.Safety;
using Qwen35.Training;
using Qwen35.Training.Loop;
using Qwen35.Training.Observability;
using Qwen35.Training.Recipes;
using Serilog.Events;
using Spectre.Console;

namespace Qwen35.Cli.Commands;

/// <summary>
/// `trainer train --recipe NAME|FILE [--set key.sub=value]... [--resume [DIR|latest] | --overwrite]`. Train is also the
/// default verb: the root command takes the same options, so `trainer --recipe tiny` trains. Ctrl-C once: finish the
/// step, checkpoint, print the resume command, exit 130; twice: stop at once (exit 130).
/// </summary>
public static class TrainCommand
{
    sealed record TrainOptions(Option<string> Recipe, Option<string[]> Set, Option<string?> Resume, Option<bool> NoProgress, Option<bool> Overwrite);

    /// <summary>Exit code of a run stopped by Ctrl-C (128 + SIGINT, what a shell reports for an interrupted command).</summary>


    static TrainOptions MakeOptions(bool recipeRequired) => new(
        new Option<string>("--recipe", "-r")
        {
            Description = "Recipe file, or a bare name resolved as recipes/NAME.yaml (walking up from the current and the program's folder): tiny, 9b, 9b-base, 27b",
            Required = recipeRequired,
        },
        new Option<string[]>("--set")
        {
            Description = "Override a recipe key, typed like YAML: --set schedule.learning_rate=1e-4 --set lora.target_modules=[q_proj,v_proj] (repeatable)",
            AllowMultipleArgumentsPerToken = false,
        },
        new Option<string?>("--resume")
        {
            Description = "Continue from a checkpoint: a checkpoint folder, or 'latest' (default when the flag has no value) = newest under output_dir/checkpoints",
            Arity = ArgumentArity.ZeroOrOne,
        },
        new Option<bool>("--no-progress") { Description = "Log lines instead of a progress bar even on a terminal" },
        new Option<bool>("--overwrite")
        {
            Description = "Start a new run in an output_dir that holds an earlier run, deleting that run's files first (checkpoints, adapter, metrics, logs, plot, recipe.yaml; never other files)",
        });

    public static Command Build()
    {
        var o = MakeOptions(recipeRequired: true);
        var cmd = new Command("train", "Fine-tune a Qwen3.5 model with LoRA from a recipe (the default verb: `trainer --recipe tiny` works too)")
        {
            o.Recipe, o.Set, o.Resume, o.NoProgress, o.Overwrite,
        };
        cmd.SetAction(pr => Run(pr, o));
        return cmd;
    }

    /// <summary>Makes the root command train when given --recipe (and print help otherwise).</summary>
    public static void AttachToRoot(RootCommand root)
    {
        var o = MakeOptions(recipeRequired: false);
        root.Options.Add(o.Recipe);
        root.Options.Add(o.Set);
        root.Options.Add(o.Resume);
        root.Options.Add(o.NoProgress);
        root.Options.Add(o.Overwrite);
        root.SetAction(pr =>
        {
            if (pr.GetValue(o.Recipe) is null)
            {
                Console.Error.WriteLine("trainer: give --recipe NAME|FILE to train, or a verb; see --help");
                return 1;
            }
            return Run(pr, o);
        });
    }

    static int Run(ParseResult pr, TrainOptions o)
    {
        string? outputDir = null;
        // Under mpirun/srun: rank 0 speaks for the job; the other ranks only report failures of their own (bad input is
        // the same on every rank, so rank 0's line says it once).
        var launch = LaunchInfo.FromEnvironment();
        var errors = launch is { Rank: > 0 } ? new RankErrorWriter(pr.InvocationConfiguration.Error, launch.Rank) : pr.InvocationConfiguration.Error;
        return CliErrors.Run("train", errors, () =>
        {
            var resolved = RecipeResolver.Resolve(pr.GetValue(o.Recipe)!);
            var recipe = RecipeLoader.Parse(resolved.Text, resolved.Source, pr.GetValue(o.Set) ?? []);
            outputDir = recipe.OutputDir;
            string? resume = pr.GetResult(o.Resume) is null ? null : pr.GetValue(o.Resume) ?? "latest";
            var overwrite = pr.GetValue(o.Overwrite);
            if (overwrite && resume is not null)
                throw new UserInputException("--overwrite and --resume exclude each other: --resume continues the run in output_dir, --overwrite deletes it");
            var mode = resume is not null ? OutputMode.Resume : overwrite ? OutputMode.Overwrite : OutputMode.Fresh;

            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            // Spectre draws nothing when stderr is not a terminal; then the periodic log lines are the progress.
            var bar = !pr.GetValue(o.NoProgress) && !Console.IsErrorRedirected && console.Profile.Capabilities.Interactive && launch is not { Rank: > 0 };
            // train.log.jsonl waits in memory until output_dir exists (created only once setup succeeded).
            using var logFile = new RunLogFile();
            using var log = TrainLogging.CreateDeferred(logFile, bar || launch is { Rank: > 0 } ? LogEventLevel.Warning : LogEventLevel.Information);
            using var interrupt = new TrainInterrupt();
            // Ctrl-C wiring, and the cursor shown again on every way out of here (Spectre hides it while drawing).
            using var ctrlC = new CtrlC(interrupt, bar ? console : null);
            log.Information("recipe {Source} (hash {Hash}) -> {Output}", resolved.Source, RecipeLoader.Hash(recipe), recipe.OutputDir);
            // eval.safety: built before setup, so a missing prompt file or judge is refused before any training; rank 0
            // alone evaluates (docs/distributed.md).
            using var safety = launch is { Rank: > 0 } ? null : SafetyDuringTraining(recipe, resolved.BaseDir, log);
            using var trainer = new SftTrainer(recipe, resolved.BaseDir, log)
            {
                LogFile = logFile, Launch = launch, PeriodicEvaluators = safety is null ? [] : [safety],
            };
            trainer.Setup(mode);
            // Every rank says where it runs (rank 0 in its log; the others through their `rank N:` stderr).
            if (launch is { Rank: > 0 }) errors.WriteLine($"device {trainer.Device}");

            TrainRunResult result;
            if (bar)
            {
                result = null!;
                console.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask("training", maxValue: trainer.TotalSteps);
                        trainer.OnStep = r =>
                        {
                            task.Value = r.Step;
                            task.Description = $"step {r.Step}/{r.TotalSteps} loss {r.Loss:F4} lr {r.Lr:E1}" +
                                (r.Metrics?.GetValueOrDefault("rewards/accuracies") is { } acc ? $" acc {acc:F2} margin {r.Metrics["rewards/margins"]:F3}" : "");
                        };
                        result = trainer.Run(resume, stop: interrupt.Token);
                    });
            }
            else result = trainer.Run(resume, stop: interrupt.Token);

            if (launch is { Rank: > 0 }) return result.Loop.Interrupted ? CliErrors.Interrupted : CliErrors.Ok;
            if (result.Loop.Interrupted)
            {
                Console.WriteLine($"output: {Path.GetFullPath(recipe.OutputDir)}");
                Console.WriteLine($"steps: {result.Loop.State.Step}");
                if (result.Loop.Checkpoint is not null) Console.WriteLine($"checkpoint: {Path.GetFullPath(result.Loop.Checkpoint)}");
                if (result.Loop.State.Step > 0)
                    log.Warning("interrupted at step {Step}; resume with: {Command}", result.Loop.State.Step, ResumeCommand(pr, o));
                else log.Warning("interrupted before the first optimizer step; nothing to resume");
                return CliErrors.Interrupted;
            }

            // Results on stdout; everything else went to stderr and train.log.jsonl.
            Console.WriteLine($"output: {Path.GetFullPath(recipe.OutputDir)}");
            if (result.AdapterDir is not null) Console.WriteLine($"adapter: {Path.GetFullPath(result.AdapterDir)}");
            Console.WriteLine($"steps: {result.Loop.State.Step}");
            Console.WriteLine($"loss: {result.FirstLoss:F4} -> {result.LastLoss:F4}");
            if (result.Loop.FinalEval is { } e)
                Console.WriteLine($"eval_loss: {e.Loss:F4} ({string.Join(", ", e.ByCategory.Select(kv => $"{kv.Key} {kv.Value:F4}"))})");
            foreach (var (k, v) in result.Loop.FinalEval?.Metrics ?? new Dictionary<string, double>()) Console.WriteLine($"eval_{k}: {v:F4}");
            Console.WriteLine($"wall_s: {result.WallSeconds:F1}");
            return CliErrors.Ok;
        }, logDir: () => outputDir is not null && Directory.Exists(outputDir) ? outputDir : null);
    }

    /// <summary>The recipe's <c>eval.safety</c> as a periodic evaluator over the run's live model, judged by the backend it
    /// names, through the same harness as <c>trainer safety-eval</c> (docs/safety-eval.md, "During training").</summary>
    static TrainingSafetyEval? SafetyDuringTraining(Recipe recipe, string baseDir, Serilog.ILogger log)
    {
        if (recipe.Eval.Safety is not { } s) return null;
        var j = TrainingSafetyEval.ResolvePaths(s.Judge, baseDir);
        var spec = ChatBackends.Judge(new JudgeBackendFlags(j.Endpoint, j.Model, j.Gguf, j.ModelDir, j.ApiKeyEnv, SessionTemplate: recipe.SessionOptions));
        var judge = new ChatBackends(SafetyEvalCommand.LocalBackends(log)).Create(spec);
        return new TrainingSafetyEval(s, baseDir, recipe.OutputDir, judge, new HarnessForTraining());
    }

    /// <summary>
    /// Console.CancelKeyPress for the length of a run. First Ctrl-C: cancel the runtime's default termination and ask
    /// the loop to stop after the current optimizer step (it checkpoints; the verb exits 130). Second: let the runtime
    /// end the process at once (exit 130); no finally block runs then, so the cursor is shown here first. Dispose
    /// (every other way out, exceptions included) unhooks and shows the cursor.
    /// </summary>
    public sealed class CtrlC : IDisposable
    {
        readonly TrainInterrupt _interrupt;
        readonly IAnsiConsole? _bar;

        public CtrlC(TrainInterrupt interrupt, IAnsiConsole? bar)
        {
            _interrupt = interrupt;
            _bar = bar;
            Console.CancelKeyPress += OnCancel;
        }

        void OnCancel(object? sender, ConsoleCancelEventArgs e)
        {
            if (_interrupt.Press())
            {
                e.Cancel = true;
                Console.Error.WriteLine("Ctrl-C: stopping after the current optimizer step to save a checkpoint (Ctrl-C again stops at once, losing it)");
                return;
            }
            _bar?.Cursor.Show(true);
            Console.Error.WriteLine("Ctrl-C again: stopped at once; steps since the last checkpoint are lost");
        }

        public void Dispose()
        {
            Console.CancelKeyPress -= OnCancel;
            _bar?.Cursor.Show(true);
        }
    }

    /// <summary>The command that continues this run: the same recipe and overrides, plus --resume (the interrupted
    /// run's checkpoint is the newest in output_dir). Arguments are quoted for a POSIX shell where needed.</summary>
    static string ResumeCommand(ParseResult pr, TrainOptions o)
    {
        var args = new List<string> { "trainer", "--recipe", pr.GetValue(o.Recipe)! };
        foreach (var set in pr.GetValue(o.Set) ?? []) args.AddRange(["--set", set]);
        if (pr.GetValue(o.NoProgress)) args.Add("--no-progress");
        args.Add("--resume");
        return string.Join(' ', args.Select(ShellQuote));
    }

    static string ShellQuote(string arg) =>
        arg.Length > 0 && arg.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@%".Contains(c)) ? arg : "'" + arg.Replace("'", "'\\''") + "'";
}

