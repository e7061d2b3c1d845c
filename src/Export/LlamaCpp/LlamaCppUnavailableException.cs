namespace Qwen35.Export.LlamaCpp;

/// <summary>llama.cpp's native library (LLamaSharp.Backend.Cpu) is not where LLamaSharp looks, as in the GPU pack, which
/// leaves it out on purpose. A bad-input error (exit 2): the user asked for a check this installation cannot run.</summary>
public sealed class LlamaCppUnavailableException(string message, Exception? inner = null) : UserInputException(message, inner);
