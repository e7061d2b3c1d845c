using System.Text.Json;
using Qwen35.Models.SafeTensors;
using TorchSharp;

namespace Qwen35.Cli.Commands;

/// <summary>Small shared pieces of the model verbs: dtype/device option values and the bad-input test for exit 2.</summary>
static class CliParsing
{
    public static torch.ScalarType Dtype(string name) => name.ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => torch.ScalarType.Float32,
        "bfloat16" or "bf16" => torch.ScalarType.BFloat16,
        _ => throw new ArgumentException($"--dtype '{name}' is not one of float32, bfloat16"),
    };

    public static torch.Device Device(string name)
    {
        try { return new torch.Device(name); }
        catch (Exception e) { throw new ArgumentException($"--device '{name}' is not a device (cpu, cuda, cuda:N): {e.Message}"); }
    }

    /// <summary>Writes an indented JSON report beside <paramref name="path"/> and renames it over the target, so a
    /// reader never sees half a file.</summary>
    public static void WriteJsonAtomically(string path, object value)
    {
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, JsonSerializer.Serialize(value, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// Errors caused by the user's files or options (exit code 2) rather than by the program (exit code 3); the one
    /// list every verb uses. FormatException covers the dataset-row, row-field and chat-template errors.
    /// </summary>
    public static bool IsBadInput(Exception e) => e is UserInputException or InvalidDataException or FileNotFoundException
        or DirectoryNotFoundException or SafeTensorsFormatException or JsonException or FormatException or ArgumentException
        or Qwen35.Lora.AdapterFormatException or Qwen35.Training.Recipes.RecipeException;
}
