using System.CommandLine;
using Qwen35.Models;
using Qwen35.Training;

namespace Qwen35.Cli.Commands;

/// <summary>
/// The flags of every verb that runs a model, mapped onto <see cref="SessionOptions"/>: <c>--model</c> (a folder or
/// <c>builtin:tiny</c>, like a recipe's <c>model</c>), <c>--adapter</c>, <c>--tokenizer</c>, <c>--dtype</c> (fp32 /
/// float32, bf16 / bfloat16) and <c>--device</c> (cpu, cuda, cuda:N). Defined once so every verb spells them alike.
/// </summary>
sealed class SessionFlags
{
    public Option<string> Model { get; }
    public Option<string?> Adapter { get; }
    public Option<string?> Tokenizer { get; }
    public Option<string> Dtype { get; }
    public Option<string> Device { get; }

    /// <param name="adapter">whether the verb takes --adapter.</param>
    /// <param name="adapterRequired">--adapter must be given (merge).</param>
    /// <param name="tokenizer">whether the verb reads text (score reads token ids, merge no text at all).</param>
    public SessionFlags(bool modelRequired = true, bool adapter = true, bool adapterRequired = false, bool tokenizer = true,
        string dtypeDefault = "fp32")
    {
        Model = new Option<string>("--model")
        {
            Description = $"Hugging Face Qwen3.5 folder (config.json + safetensors) or {Session.BuiltinTiny}",
            Required = modelRequired,
        };
        Adapter = new Option<string?>("--adapter") { Description = "PEFT LoRA adapter folder to apply", Required = adapterRequired };
        Tokenizer = new Option<string?>("--tokenizer")
        {
            Description = $"Tokenizer folder, tokenizer.json or 'builtin' (default: the model folder's; builtin for {Session.BuiltinTiny})",
        };
        Dtype = new Option<string>("--dtype")
        {
            Description = $"Base weights' dtype: {string.Join(", ", OptionNames.Names<Precision>())} (also float32, bfloat16)",
            DefaultValueFactory = _ => dtypeDefault,
        };
        Device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        _adapter = adapter;
        _tokenizer = tokenizer;
    }

    readonly bool _adapter, _tokenizer;

    /// <summary>Adds the flags to a verb.</summary>
    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        if (_adapter) command.Options.Add(Adapter);
        if (_tokenizer) command.Options.Add(Tokenizer);
        command.Options.Add(Dtype);
        command.Options.Add(Device);
    }

    /// <summary>The session options the flags name; a bad --dtype is a <see cref="UserInputException"/> naming it.
    /// <paramref name="precision"/>, when given, is used instead of --dtype (a verb's own reading of it, e.g. auto).</summary>
    public SessionOptions Read(ParseResult pr, Precision? precision = null) => new()
    {
        Model = pr.GetValue(Model) ?? Session.BuiltinTiny,
        Adapter = _adapter ? pr.GetValue(Adapter) : null,
        Tokenizer = _tokenizer ? pr.GetValue(Tokenizer) : null,
        Precision = precision ?? OptionNames.Parse<Precision>(pr.GetValue(Dtype)!, "--dtype"),
        Device = pr.GetValue(Device)!,
    };
}
