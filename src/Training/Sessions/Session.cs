using System.Text.RegularExpressions;
using Qwen35.Data;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Models.Runtime;
using Qwen35.Training.Recipes;
using Serilog;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training;

/// <summary>
/// The one place that turns <see cref="SessionOptions"/> into things: the model folder or built-in model, the
/// adapter folder, the tokenizer, the dtype and the device. Train, eval, score, generate, inspect, merge and bench
/// all open a session, so <c>builtin:tiny</c>, relative paths, <c>bfloat16</c> and a missing CUDA mean the same in
/// every verb. Opening checks names and folders only; the model loads on <see cref="LoadModel"/>.
/// </summary>
public sealed class Session
{
    public const string BuiltinTiny = "builtin:tiny";

    Qwen35TextConfig? _config;
    ITokenizer? _tokenizer;

    Session(SessionOptions options, string? modelDir, string? adapterDir, Device device)
    {
        Options = options;
        ModelDir = modelDir;
        AdapterDir = adapterDir;
        Device = device;
    }

    public SessionOptions Options { get; }

    /// <summary>The model folder (full path), or null for <c>builtin:tiny</c>.</summary>
    public string? ModelDir { get; }

    /// <summary>The adapter folder (full path), or null.</summary>
    public string? AdapterDir { get; }

    public Device Device { get; }

    public ScalarType Dtype => Options.Precision.ToScalarType();

    /// <summary>
    /// Resolves the options: relative paths against <paramref name="baseDir"/> (a recipe's folder; the current
    /// directory when null), the model and adapter folders must exist, the device must be there. Problems are
    /// <see cref="UserInputException"/>s naming the key (<c>model</c>, <c>adapter</c>, <c>device</c>, …).
    /// </summary>
    public static Session Open(SessionOptions options, string? baseDir = null)
    {
        OptionChecks.ThrowIfAny(options.Problems(), "invalid options");
        baseDir ??= Directory.GetCurrentDirectory();
        string? modelDir = null;
        if (options.Model != BuiltinTiny)
        {
            if (options.Model.StartsWith("builtin:", StringComparison.Ordinal))
                throw new UserInputException($"model: '{options.Model}' is not a built-in model (the one built-in model is {BuiltinTiny})");
            modelDir = ExistingFolder(options.Model, baseDir, "model",
                $"set it to a Hugging Face Qwen3.5 folder (config.json + safetensors) or {BuiltinTiny}");
        }
        var adapterDir = options.Adapter is null ? null
            : ExistingFolder(options.Adapter, baseDir, "adapter", "set it to a PEFT adapter folder (adapter_config.json + adapter_model.safetensors)");
        if (options.CpuThreads > 0) torch.set_num_threads(options.CpuThreads);
        var tokenizer = options.Tokenizer is null || IsBuiltinTokenizer(options.Tokenizer)
            ? options.Tokenizer
            : RecipeResolver.InputPath(options.Tokenizer, baseDir);
        return new Session(options with { Tokenizer = tokenizer }, modelDir, adapterDir, ResolveDevice(options.Device));
    }

    /// <summary><c>cpu</c>, <c>cuda</c> or <c>cuda:N</c>.</summary>
    public static bool IsDeviceName(string name) => Regex.IsMatch(name, "^(cpu|cuda(:[0-9]+)?)$");

    /// <summary>The device named by a recipe or flag; a missing CUDA is the user's problem to fix (exit 2), not a crash.</summary>
    public static Device ResolveDevice(string name)
    {
        if (!IsDeviceName(name)) throw new UserInputException($"device: '{name}' is not one of cpu, cuda, cuda:N");
        if (name == "cpu")
        {
            // A CPU run's tensors live in malloc'd memory: keep freed pages for the next step (HostMemory); its products
            // are MKL's: dispatch them by instruction set where MKL's default would not (MklDispatch). Both before
            // anything is built or multiplied.
            HostMemory.KeepFreedPages();
            MklDispatch.Select();
            return CPU;
        }
        if (!torch.cuda.is_available())
            throw new UserInputException($"device: {name} requested but CUDA is not available in this build (build with -p:TorchBackend=cuda or external, see README)");
        var device = new Device(name);
        if (device.index >= torch.cuda.device_count())
            throw new UserInputException($"device: {name} requested but only {torch.cuda.device_count()} CUDA device(s) are visible");
        return device;
    }

    /// <summary>
    /// The config of <c>builtin:tiny</c>: <see cref="Qwen35TextConfig.Tiny"/> with initializer_range 0.1 instead of
    /// HF's 0.02 (as in the golden tiny set). With a tied, frozen random head of std 0.02 the logits of a 64-wide
    /// model cannot exceed about ±1.3, so LoRA could barely move the loss below ln(vocab); at 0.1 the demo's loss
    /// falls from about 6.6 to about 3.7 in 100 steps.
    /// </summary>
    public static Qwen35TextConfig BuiltinTinyConfig() => Qwen35TextConfig.Tiny() with { InitializerRange = 0.1 };

    /// <summary>The model's config, read without loading any weight.</summary>
    public Qwen35TextConfig Config => _config ??= ModelDir is null ? BuiltinTinyConfig() : Qwen35TextConfig.Load(Path.Combine(ModelDir, "config.json"));

    /// <summary>
    /// The model in the session's dtype on its device: <c>builtin:tiny</c> with weights drawn from
    /// <paramref name="seed"/>, or the folder's checkpoint; with the adapter attached when the options name one
    /// (frozen: a loaded adapter is for inference and merging; training injects its own).
    /// </summary>
    public Qwen35ForCausalLM LoadModel(ILogger log, long seed = 42)
    {
        Qwen35ForCausalLM model;
        if (Device.type == DeviceType.CPU && MklDispatch.Status is { } blas) log.Information("cpu: {Blas}", blas);
        if (ModelDir is null)
        {
            log.Information("model: builtin tiny Qwen3.5 ({Config}), random weights from seed {Seed}", Config.Summary(), seed);
            model = Qwen35ForCausalLM.CreateRandom(Config, seed, Dtype, Device);
        }
        else
        {
            log.Information("model: loading {Dir} ({Dtype} on {Device})", ModelDir, OptionNames.Name(Options.Precision), Device);
            var (m, report) = Qwen35ForCausalLM.FromPretrained(ModelDir, Dtype, Device);
            log.Information("model: {Report}", report.ToString());
            model = m;
        }
        if (AdapterDir is not null)
        {
            try
            {
                var loaded = LoraInjector.LoadAdapter(model, AdapterDir);
                log.Information("adapter: {Dir}: {Report}", AdapterDir, loaded.Report.Format().TrimEnd());
                foreach (var w in loaded.Warnings) log.Warning("adapter: {Warning}", w);
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        return model;
    }

    /// <summary>The tokenizer: the options', else the model folder's, else (builtin:tiny) the built-in byte-level
    /// one. Its ids must fit the model's vocabulary.</summary>
    public ITokenizer Tokenizer => _tokenizer ??= LoadTokenizer(required: true)!;

    /// <summary><see cref="Tokenizer"/>, or null when none was named and the model folder has no tokenizer.json
    /// (generate with token ids needs none).</summary>
    public ITokenizer? TokenizerIfAny => _tokenizer ??= LoadTokenizer(required: false);

    ITokenizer? LoadTokenizer(bool required)
    {
        var name = Options.Tokenizer ?? (ModelDir is null ? TokenizerLoader.BuiltInName : ModelDir);
        if (Options.Tokenizer is null && ModelDir is not null && !File.Exists(Path.Combine(ModelDir, "tokenizer.json")))
        {
            if (!required) return null;
            throw new UserInputException($"tokenizer: {ModelDir} has no tokenizer.json; name one with tokenizer (--tokenizer DIR)");
        }
        var tokenizer = TokenizerLoader.Load(name);
        if (tokenizer.VocabSize > Config.VocabSize)
            throw new UserInputException($"tokenizer: '{name}' has {tokenizer.VocabSize} tokens but the model's vocab_size is {Config.VocabSize}");
        return tokenizer;
    }

    /// <summary>Parameters that require grad, in module order (the optimizer's and the checkpoint's order).</summary>
    public static List<(string Name, TorchSharp.Modules.Parameter Param)> Trainable(nn.Module model) =>
        model.named_parameters().Where(p => p.parameter.requires_grad).Select(p => (p.name, p.parameter)).ToList();

    static bool IsBuiltinTokenizer(string name) => string.Equals(name, TokenizerLoader.BuiltInName, StringComparison.OrdinalIgnoreCase);

    static string ExistingFolder(string path, string baseDir, string key, string hint)
    {
        var dir = RecipeResolver.InputPath(path, baseDir);
        if (Directory.Exists(dir)) return Path.GetFullPath(dir);
        var what = File.Exists(dir) ? "is a file, not a folder" : "not found";
        throw new UserInputException($"{key}: '{path}' {what} (looked at {Path.GetFullPath(dir)}); {hint}");
    }
}
