using System.CommandLine;
using System.Runtime.InteropServices;
using Qwen35.Models.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer doctor [--libtorch DIR] [--json FILE]</c>: what this program runs on. The .NET runtime, TorchSharp,
/// which libtorch was loaded and its version, whether TorchSharp's shim finds every libtorch symbol it imports there
/// (the question for a libtorch of another minor version), and CUDA with a small smoke test. Exit 0 when everything
/// resolves and runs, 4 when symbols are missing or the smoke test fails, 3 when libtorch cannot be loaded at all.
/// </summary>
public static class DoctorCommand
{
    public static Command Build()
    {
        var libtorch = new Option<DirectoryInfo?>("--libtorch") { Description = "Also check this libtorch folder (e.g. a PyTorch torch/lib) without loading it" };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the findings as JSON to this file" };
        var cmd = new Command("doctor", "Show the runtime, the libtorch in use, missing libtorch symbols and CUDA status") { libtorch, json };
        cmd.SetAction(pr => Run(pr.GetValue(libtorch)?.FullName, pr.GetValue(json)?.FullName,
            pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error));
        return cmd;
    }

    public static int Run(string? libTorchDir, string? jsonPath, TextWriter stdout, TextWriter stderr)
    {
        var findings = new Dictionary<string, object?>();
        void Say(string key, object? value, string label)
        {
            findings[key] = value;
            var text = value is IReadOnlyCollection<string> list ? list.Count.ToString() : value?.ToString() ?? "-";
            stdout.WriteLine($"{label,-22} {text}");
        }
        return CliErrors.Run("doctor", stderr, () =>
        {
            Say("dotnet", $"{RuntimeInformation.FrameworkDescription} on {RuntimeInformation.OSDescription} ({RuntimeInformation.ProcessArchitecture})", ".NET");
            Say("torchsharp", typeof(torch).Assembly.GetName().Version?.ToString(), "TorchSharp");
            var code = 0;
            if (libTorchDir is not null)
                code = Math.Max(code, Report("given", LibTorchCompatibility.Check(ShimBesideProgram(), libTorchDir), Say, stdout));

            bool cuda;
            try { cuda = torch.cuda.is_available(); }
            catch (Exception e)   // TorchSharp reports a libtorch it cannot load in several exception types
            {
                Say("load_error", e.GetBaseException().Message, "libtorch load FAILED");
                Write(jsonPath, findings);
                return CliErrors.Failure;
            }
            var loadedDir = LibTorchCompatibility.LoadedFrom("libtorch_cpu.so");
            var shimDir = LibTorchCompatibility.LoadedFrom("libLibTorchSharp.so");
            Say("shim", shimDir is null ? null : Path.Combine(shimDir, "libLibTorchSharp.so"), "TorchSharp shim");
            if (loadedDir is not null && shimDir is not null && loadedDir != libTorchDir?.TrimEnd('/'))
                code = Math.Max(code, Report("loaded", LibTorchCompatibility.Check(Path.Combine(shimDir, "libLibTorchSharp.so"), loadedDir), Say, stdout));
            else
                Say("loaded_libtorch", loadedDir, "libtorch (loaded)");

            Say("cuda_available", cuda, "CUDA available");
            if (cuda)
            {
                Say("cuda_devices", torch.cuda.device_count(), "CUDA devices");
                Say("cudnn_available", torch.cuda.is_cudnn_available(), "cuDNN available");
                var smoke = SmokeTest(CUDA);
                Say("cuda_smoke", smoke ?? "ok", "CUDA smoke test");
                if (smoke is not null) code = Math.Max(code, CliErrors.CheckFailed);
            }
            Write(jsonPath, findings);
            return code;
        });
    }

    static int Report(string which, LibTorchCompatibility c, Action<string, object?, string> say, TextWriter stdout)
    {
        say($"{which}_libtorch", c.LibTorchDir, $"libtorch ({which})");
        say($"{which}_libtorch_version", c.TorchVersion, "  version");
        say($"{which}_symbols_required", c.Required, "  symbols imported");
        say($"{which}_symbols_missing", c.Missing, "  symbols missing");
        foreach (var s in c.Missing.Take(40)) stdout.WriteLine($"    {s}");
        if (c.Missing.Count > 40) stdout.WriteLine($"    ... {c.Missing.Count - 40} more (--json lists all)");
        return c.Compatible ? 0 : CliErrors.CheckFailed;
    }

    /// <summary>A matmul in fp32 and bf16 and a backward on the device, checked against the known answer; null when
    /// all agree, else what went wrong.</summary>
    static string? SmokeTest(Device device)
    {
        using var scope = NewDisposeScope();
        try
        {
            var a = ones(64, 64, device: device, requires_grad: true);
            var fp32 = a.matmul(a).sum();                                   // 64 · 64 · 64
            fp32.backward();
            var bf16 = ones(64, 64, ScalarType.BFloat16, device).matmul(ones(64, 64, ScalarType.BFloat16, device)).sum();
            var got = (fp32.ToDouble(), bf16.to(ScalarType.Float32).ToDouble(), a.grad!.mean().ToDouble());
            return got == (262144.0, 262144.0, 128.0) ? null : $"wrong results {got} (expected 262144, 262144, 128)";
        }
        catch (Exception e) { return e.GetBaseException().Message; }
    }

    static string ShimBesideProgram()
    {
        var candidates = TorchSharpNativePatch.ShimPathsBesideProgram().ToList();
        return candidates.FirstOrDefault(File.Exists) ?? candidates[^1];
    }

    static void Write(string? path, Dictionary<string, object?> findings)
    {
        if (path is not null) CliParsing.WriteJsonAtomically(path, findings);
    }
}
