using TorchSharp;
using System.Text.Json.Nodes;
using Qwen35.Lora;
using Qwen35.Tests;
using Qwen35.Training.Observability;
using Qwen35.Training.Recipes;
using Serilog;

namespace Qwen35.Training.Tests;

public class EndToEndTests
{
    [Test]
    public void TinyRecipeTrainsAndWritesAPeftAdapter()
    {
        var output = TestPaths.TempDir("e2e");
        var resolved = RecipeResolver.Resolve(Path.Combine(TestPaths.RepoRoot, "recipes", "tiny.yaml"));
        // The shipped tiny recipe, shortened: fewer and shorter rows so the test stays within seconds.
        var recipe = RecipeLoader.Parse(resolved.Text, resolved.Source,
            [$"output_dir={output}", "schedule.max_steps=8", "data.max_length=384", "data.pack_length=384", "eval_every=4", "save_every=4", "cpu_threads=1"]);
        using var logFile = new RunLogFile();
        using var log = TrainLogging.CreateDeferred(logFile, Serilog.Events.LogEventLevel.Warning);
        using var trainer = new SftTrainer(recipe, resolved.BaseDir, log) { LogFile = logFile };
        var result = trainer.Run();

        Assert.That(result.Loop.Completed, Is.True);
        Assert.That(result.FirstLoss!.Value - result.LastLoss!.Value, Is.GreaterThan(0.1), $"loss {result.FirstLoss} -> {result.LastLoss}");
        var adapter = Path.Combine(output, "adapter");
        foreach (var f in new[] { "adapter_model.safetensors", "adapter_config.json", "README.md" })
            Assert.That(File.Exists(Path.Combine(adapter, f)), f);
        Assert.That(File.Exists(Path.Combine(output, "loss.png")) && new FileInfo(Path.Combine(output, "loss.png")).Length > 1000);
        Assert.That(File.Exists(Path.Combine(output, "train.log.jsonl")));

        // PEFT-format checks: the file loads through the PEFT reader, keys carry base_model.model.model.language_model.,
        // and the config states the recipe's rank, alpha and targets.
        using (var file = PeftAdapter.Load(adapter))
        {
            Assert.That(file.Modules, Is.Not.Empty);
            Assert.That(file.Modules.All(m => m.KeyA.StartsWith("base_model.model.model.language_model.layers.", StringComparison.Ordinal)));
            Assert.That(file.Modules.All(m => m.Rank == recipe.Lora.Rank));
            Assert.That(file.Modules.Any(m => m.B.abs().sum().ToDouble() > 0), "lora_B moved away from its zero init");
        }
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, "adapter_config.json")))!;
        Assert.That((int)config["r"]!, Is.EqualTo(recipe.Lora.Rank));
        Assert.That((double)config["lora_alpha"]!, Is.EqualTo(recipe.Lora.Alpha));
        Assert.That(config["target_modules"]!.AsArray().Select(n => (string)n!), Is.EquivalentTo(recipe.Lora.TargetModules.NameList!));

        var metrics = MetricsWriter.Read(Path.Combine(output, "metrics.jsonl"));
        Assert.That(metrics.Select(m => m.Step), Is.EqualTo(Enumerable.Range(1, 8)));
        var evals = metrics.Where(m => m.EvalLoss is not null).ToList();
        Assert.That(evals.Select(m => m.Step), Is.EqualTo(new[] { 4, 8 }));
        Assert.That(evals[^1].EvalLossByCategory!.Keys, Is.EquivalentTo(trainer.Data.Categories));
        Assert.That(Directory.GetDirectories(Path.Combine(output, "checkpoints")).Select(Path.GetFileName), Is.EquivalentTo(new[] { "step_000004", "step_000008" }));
        TestContext.Out.WriteLine($"loss {result.FirstLoss:F4} -> {result.LastLoss:F4}, eval {result.Loop.FinalEval?.Loss:F4}, {result.WallSeconds:F1} s");
    }

    [Test]
    public void AHuggingFaceModelFolderTrainsToo()
    {
        // The golden tiny checkpoint is a real HF layout (wrapper keys, untied lm_head, vision/MTP tensors to skip);
        // its 512-token vocabulary covers the built-in byte tokenizer.
        var output = TestPaths.TempDir("e2e-hf");
        var resolved = RecipeResolver.Resolve(Path.Combine(TestPaths.RepoRoot, "recipes", "tiny.yaml"));
        var recipe = RecipeLoader.Parse(resolved.Text, resolved.Source,
        [
            $"model={TestPaths.GoldenTiny}", "tokenizer=builtin", $"output_dir={output}", "schedule.max_steps=3",
            "data.max_length=256", "data.pack_length=256", "save_every=0", "activation_checkpointing=true",
        ]);
        using var logFile = new RunLogFile();
        using var log = TrainLogging.CreateDeferred(logFile, Serilog.Events.LogEventLevel.Warning);
        using var trainer = new SftTrainer(recipe, resolved.BaseDir, log) { LogFile = logFile };
        var result = trainer.Run();
        Assert.That(result.Loop.Completed && result.AdapterDir is not null);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(output, "adapter", "adapter_config.json")))!;
        Assert.That((string)config["base_model_name_or_path"]!, Is.EqualTo(TestPaths.GoldenTiny));
        Assert.That(double.IsFinite(result.FirstLoss!.Value) && double.IsFinite(result.LastLoss!.Value));
        using var file = PeftAdapter.Load(Path.Combine(output, "adapter"));
        Assert.That(file.Modules.Any(m => m.B.abs().sum().ToDouble() > 0), "the adapter was trained");
    }
}
