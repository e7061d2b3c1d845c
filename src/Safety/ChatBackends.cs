using Microsoft.Extensions.AI;
using Qwen35.Safety.Backends;
using Qwen35.Training;

namespace Qwen35.Safety;

/// <summary>The three kinds of chat model a safety evaluation can use, for answers and for the judge.</summary>
public enum BackendKind
{
    /// <summary>An OpenAI-compatible endpoint (<c>--endpoint URL --model-name NAME</c>, <c>--judge-endpoint/--judge-model</c>).</summary>
    Endpoint,
    /// <summary>This trainer's model, with an optional PEFT adapter (<c>--model DIR|builtin:tiny [--adapter DIR]</c>, <c>--judge-model-dir DIR</c>).</summary>
    TrainerModel,
    /// <summary>A GGUF file run by llama.cpp through LLamaSharp (<c>--model FILE.gguf [--lora FILE.gguf]</c>, <c>--judge-gguf FILE</c>).</summary>
    Gguf,
}

/// <summary>One chat backend as the flags named it. <see cref="Role"/> (<c>generation</c> or <c>judge</c>) and the
/// flag that named it go into every error message about it.</summary>
public sealed record BackendSpec(BackendKind Kind, string Role, string Flag)
{
    public EndpointOptions? Endpoint { get; init; }

    public SessionOptions? Session { get; init; }

    public string? GgufPath { get; init; }

    public string? LoraPath { get; init; }

    /// <summary>The name written as generation_model / evaluation_model: the served model name, the model folder's
    /// name, or the GGUF file's name, with the adapter's after a '+'.</summary>
    public string DisplayName => Kind switch
    {
        BackendKind.Endpoint => Endpoint!.ModelName,
        BackendKind.TrainerModel => Join(Session!.Model == Training.Session.BuiltinTiny ? Session.Model : LastName(Session.Model), Session.Adapter),
        _ => Join(Path.GetFileName(GgufPath!), LoraPath),
    };

    /// <summary>Endpoints take several calls at once; the trainer's own model batches as many concurrent calls as its
    /// batch size (<see cref="Clients.TrainerChatClient.DefaultBatchSize"/>); llama.cpp runs one at a time.</summary>
    public int DefaultConcurrency => Kind switch
    {
        BackendKind.Endpoint => 8,
        BackendKind.TrainerModel => Clients.TrainerChatClient.DefaultBatchSize,
        _ => 1,
    };

    /// <summary>Where it is, for messages: "--endpoint http://…/v1 (model X)", "--model DIR".</summary>
    public string Describe() => Kind switch
    {
        BackendKind.Endpoint => $"{Role} backend {Flag} {Endpoint!.Endpoint} (model {Endpoint.ModelName})",
        BackendKind.TrainerModel => $"{Role} backend {Flag} {Session!.Model}",
        _ => $"{Role} backend {Flag} {GgufPath}",
    };

    /// <summary>The same backend without its adapter or LoRA (the base of a <c>--compare</c>); for an endpoint the base
    /// is another served model name.</summary>
    public BackendSpec Base(string? baseModelName) => Kind switch
    {
        BackendKind.Endpoint => this with
        {
            Endpoint = Endpoint! with
            {
                ModelName = baseModelName ?? throw new UserInputException("--compare: with --endpoint, --base-model-name must name the base model the server also serves"),
            },
        },
        BackendKind.TrainerModel when Session!.Adapter is null => throw new UserInputException("--compare: --adapter is missing (the tuned side is the model with the adapter)"),
        BackendKind.TrainerModel => this with { Session = Session with { Adapter = null } },
        _ when LoraPath is null => throw new UserInputException("--compare: --lora is missing (the tuned side is the GGUF with the LoRA)"),
        _ => this with { LoraPath = null },
    };

    static string LastName(string path) => Path.GetFileName(Path.TrimEndingDirectorySeparator(path));

    static string Join(string name, string? adapter) => adapter is null ? name : $"{name}+{LastName(adapter)}";
}

/// <summary>The flags that name the answer-generating model.</summary>
public sealed record GenerationBackendFlags(
    string? Endpoint = null,
    string? ModelName = null,
    string? Model = null,
    string? Adapter = null,
    string? Lora = null,
    string ApiKeyEnv = "OPENAI_API_KEY",
    SessionOptions? SessionTemplate = null,
    MaxTokensField MaxTokensField = MaxTokensField.MaxTokens);

/// <summary>The flags that name the judge.</summary>
public sealed record JudgeBackendFlags(
    string? Endpoint = null,
    string? ModelName = null,
    string? Gguf = null,
    string? ModelDir = null,
    string ApiKeyEnv = "OPENAI_API_KEY",
    SessionOptions? SessionTemplate = null,
    MaxTokensField MaxTokensField = MaxTokensField.MaxTokens);

/// <summary>
/// How the two local backends are constructed. They live in <c>Qwen35.Safety.Clients</c>
/// (<c>TrainerChatClient(Session, ILogger?)</c>, <c>LlamaGgufChatClient(string gguf, string? lora)</c>); the program
/// hands them in here, so this factory is the one place that maps flags to a client while the clients stay
/// replaceable (tests pass fakes). A null constructor makes that backend an error naming its flag.
/// </summary>
public sealed record BackendConstructors(
    Func<Session, IChatClient>? Trainer = null,
    Func<string, string?, IChatClient>? Gguf = null);

/// <summary>The one factory that maps the backend flags to a <see cref="BackendSpec"/> and a spec to an <see cref="IChatClient"/>.</summary>
public sealed class ChatBackends(BackendConstructors constructors)
{
    /// <summary>The generation backend the flags name: <c>--endpoint URL --model-name NAME</c>, or <c>--model</c>
    /// (a <c>.gguf</c> file, with an optional <c>--lora</c>; otherwise a model folder or builtin:tiny with an optional
    /// <c>--adapter</c>).</summary>
    public static BackendSpec Generation(GenerationBackendFlags f)
    {
        const string role = "generation";
        if (f.Endpoint is not null && f.Model is not null) throw new UserInputException("--endpoint and --model: name one generation backend, not both");
        if (f.Endpoint is not null)
        {
            if (f.ModelName is null) throw new UserInputException("--model-name: required with --endpoint (the model the server serves)");
            if (f.Adapter is not null || f.Lora is not null)
                throw new UserInputException($"{(f.Adapter is not null ? "--adapter" : "--lora")}: not with --endpoint (the server applies adapters; name the served LoRA with --model-name)");
            return new BackendSpec(BackendKind.Endpoint, role, "--endpoint")
            {
                Endpoint = new EndpointOptions(EndpointUri(f.Endpoint, "--endpoint"), f.ModelName, f.ApiKeyEnv, MaxTokensField: f.MaxTokensField),
            };
        }
        if (f.Model is null) throw new UserInputException("no generation backend: give --endpoint URL --model-name NAME, or --model DIR|builtin:tiny|FILE.gguf");
        if (f.ModelName is not null) throw new UserInputException("--model-name: only with --endpoint");
        if (IsGguf(f.Model))
        {
            if (f.Adapter is not null) throw new UserInputException("--adapter: a GGUF takes its LoRA as a GGUF file with --lora");
            return new BackendSpec(BackendKind.Gguf, role, "--model") { GgufPath = f.Model, LoraPath = f.Lora };
        }
        if (f.Lora is not null) throw new UserInputException("--lora: only with --model FILE.gguf (a model folder takes a PEFT adapter with --adapter)");
        return new BackendSpec(BackendKind.TrainerModel, role, "--model")
        {
            Session = (f.SessionTemplate ?? new SessionOptions()) with { Model = f.Model, Adapter = f.Adapter },
        };
    }

    /// <summary>The judge the flags name: exactly one of <c>--judge-endpoint URL --judge-model NAME</c>,
    /// <c>--judge-gguf FILE</c>, <c>--judge-model-dir DIR</c>.</summary>
    public static BackendSpec Judge(JudgeBackendFlags f)
    {
        const string role = "judge";
        var named = new[] { f.Endpoint is not null, f.Gguf is not null, f.ModelDir is not null }.Count(b => b);
        if (named == 0) throw new UserInputException("no judge: give --judge-endpoint URL --judge-model NAME, --judge-gguf FILE or --judge-model-dir DIR");
        if (named > 1) throw new UserInputException("--judge-endpoint, --judge-gguf, --judge-model-dir: name one judge");
        if (f.Endpoint is not null)
        {
            if (f.ModelName is null) throw new UserInputException("--judge-model: required with --judge-endpoint (the judge model the server serves)");
            return new BackendSpec(BackendKind.Endpoint, role, "--judge-endpoint")
            {
                Endpoint = new EndpointOptions(EndpointUri(f.Endpoint, "--judge-endpoint"), f.ModelName, f.ApiKeyEnv, MaxTokensField: f.MaxTokensField),
            };
        }
        if (f.ModelName is not null) throw new UserInputException("--judge-model: only with --judge-endpoint");
        if (f.Gguf is not null) return new BackendSpec(BackendKind.Gguf, role, "--judge-gguf") { GgufPath = f.Gguf };
        return new BackendSpec(BackendKind.TrainerModel, role, "--judge-model-dir")
        {
            Session = (f.SessionTemplate ?? new SessionOptions()) with { Model = f.ModelDir!, Adapter = null },
        };
    }

    /// <summary>The client of a spec. Local files must exist (a missing one is bad input naming its flag).</summary>
    public IChatClient Create(BackendSpec spec)
    {
        switch (spec.Kind)
        {
            case BackendKind.Endpoint:
                return OpenAiEndpoint.Create(spec.Endpoint!);
            case BackendKind.Gguf:
                RequireFile(spec.GgufPath!, spec.Flag);
                if (spec.LoraPath is not null) RequireFile(spec.LoraPath, "--lora");
                var gguf = constructors.Gguf ?? throw NotBuiltIn(spec);
                return gguf(spec.GgufPath!, spec.LoraPath);
            default:
                var trainer = constructors.Trainer ?? throw NotBuiltIn(spec);
                Session session;
                try { session = Session.Open(spec.Session!); }
                catch (UserInputException e) { throw new UserInputException($"{spec.Flag}: {e.Message}", e); }
                return trainer(session);
        }
    }

    static UserInputException NotBuiltIn(BackendSpec spec) =>
        new($"{spec.Flag}: the {spec.Kind} backend is not available in this build of the trainer; use an OpenAI-compatible endpoint");

    static bool IsGguf(string path) => path.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase);

    static void RequireFile(string path, string flag)
    {
        if (!File.Exists(path)) throw new UserInputException($"{flag}: {path} does not exist");
    }

    static Uri EndpointUri(string text, string flag) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri
            : throw new UserInputException($"{flag}: '{text}' is not an http(s) URL (e.g. http://127.0.0.1:8000/v1)");
}
