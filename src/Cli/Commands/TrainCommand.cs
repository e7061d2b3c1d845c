using System.CommandLine;
using Qwen35.Data;
using Qwen35.Lora;
using Qwen35.Training;
using Qwen35.Training.Loop;
using Qwen35.Training.Observability;
using Qwen35.Training.Recipes;
using Serilog.Events;
using Spectre.Console;

namespace Qwen35.Cli.Commands;

/// <summary>
/// `trainer train --recipe NAME|FILE [--set key.sub=value]... [--resume [DIR|latest]]`. Train is also the default
/// verb: the root command takes the same options, so `trainer --recipe tiny` trains.
/// </summary>
public static class TrainCommand
{
    sealed record TrainOptions(Option<string> Recipe, Option<string[]> Set, Option<string?> Resume, Option<bool> NoProgress);

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
        new Option<bool>("--no-progress") { Description = "Log lines instead of a progress bar even on a terminal" });

    public static Command Build()
    {
        var o = MakeOptions(recipeRequired: true);
        var cmd = new Command("train", "Fine-tune a Qwen3.5 model with LoRA from a recipe (the default verb: `trainer --recipe tiny` works too)")
        {
            o.Recipe, o.Set, o.Resume, o.NoProgress,
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
        return CliErrors.Run("train", pr.InvocationConfiguration.Error, () =>
        {
            var resolved = RecipeResolver.Resolve(pr.GetValue(o.Recipe)!);
            var recipe = RecipeLoader.Parse(resolved.Text, resolved.Source, pr.GetValue(o.Set) ?? []);
            outputDir = recipe.OutputDir;
            string? resume = pr.GetResult(o.Resume) is null ? null : pr.GetValue(o.Resume) ?? "latest";
            Directory.CreateDirectory(recipe.OutputDir);

            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            // Spectre draws nothing when stderr is not a terminal; then the periodic log lines are the progress.
            var bar = !pr.GetValue(o.NoProgress) && !Console.IsErrorRedirected && console.Profile.Capabilities.Interactive;
            using var log = TrainLogging.Create(recipe.OutputDir, bar ? LogEventLevel.Warning : LogEventLevel.Information);
            log.Information("recipe {Source} (hash {Hash}) -> {Output}", resolved.Source, RecipeLoader.Hash(recipe), recipe.OutputDir);
            using var trainer = new SftTrainer(recipe, resolved.BaseDir, log);
            trainer.Setup();

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
                            task.Description = $"step {r.Step}/{r.TotalSteps} loss {r.Loss:F4} lr {r.Lr:E1}";
                        };
                        result = trainer.Run(resume);
                    });
            }
            else result = trainer.Run(resume);

            // Results on stdout; everything else went to stderr and train.log.jsonl.
            Console.WriteLine($"output: {Path.GetFullPath(recipe.OutputDir)}");
            if (result.AdapterDir is not null) Console.WriteLine($"adapter: {Path.GetFullPath(result.AdapterDir)}");
            Console.WriteLine($"steps: {result.Loop.State.Step}");
            Console.WriteLine($"loss: {result.FirstLoss:F4} -> {result.LastLoss:F4}");
            if (result.Loop.FinalEval is { } e)
                Console.WriteLine($"eval_loss: {e.Loss:F4} ({string.Join(", ", e.ByCategory.Select(kv => $"{kv.Key} {kv.Value:F4}"))})");
            Console.WriteLine($"wall_s: {result.WallSeconds:F1}");
            return CliErrors.Ok;
        }, logDir: () => outputDir is not null && Directory.Exists(outputDir) ? outputDir : null);
    }
}
