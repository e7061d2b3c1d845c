using System.CommandLine;
using Qwen35.Models;
using Qwen35.Training;
using Qwen35.Training.Verification;

namespace Qwen35.Cli.Commands;

/// <summary>
/// <c>trainer verify [--golden DIR] [--device cuda] [--dtype bf16] [--tf32] [--json FILE]</c>: runs this build against a
/// Hugging Face reference set (default: the repository's tests/fixtures/qwen35-tiny-a) on a device and prints each
/// comparison with its bound. Exit 0 when all pass, 4 when any fails, 2 for a bad reference folder or option.
/// </summary>
public static class VerifyCommand
{
    public static Command Build()
    {
        var golden = new Option<DirectoryInfo>("--golden")
        {
            Description = "Reference set from Hugging Face (layout of tests/fixtures/qwen35-tiny-a)",
            DefaultValueFactory = _ => new DirectoryInfo(Path.Combine("tests", "fixtures", "qwen35-tiny-a")),
        };
        var device = new Option<string>("--device") { Description = "cpu (default), cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "fp32 (default; exact bounds) or bf16 (reduced-precision bounds); also float32, bfloat16", DefaultValueFactory = _ => "fp32" };
        var tf32 = new Option<bool>("--tf32") { Description = "On CUDA, allow TF32 for fp32 matmuls and convolutions (as training does); judged with reduced-precision bounds" };
        var json = new Option<FileInfo?>("--json") { Description = "Also write the results as JSON to this file" };
        var cmd = new Command("verify", "Compare logits, losses, decoding, packing, LoRA and its gradients with a Hugging Face reference set on a device")
        {
            golden, device, dtype, tf32, json,
        };
        cmd.SetAction(pr => Run(pr.GetValue(golden)!.FullName, pr.GetValue(device)!, pr.GetValue(dtype)!, pr.GetValue(tf32),
            pr.GetValue(json)?.FullName, pr.InvocationConfiguration.Output, pr.InvocationConfiguration.Error));
        return cmd;
    }

    public static int Run(string goldenDir, string deviceName, string dtypeName, bool tf32, string? jsonPath,
        TextWriter stdout, TextWriter stderr)
    {
        return CliErrors.Run("verify", stderr, () =>
        {
            var precision = OptionNames.Parse<Precision>(dtypeName, "--dtype");
            var options = new GoldenCheckOptions(goldenDir, Session.ResolveDevice(deviceName), precision.ToScalarType(), tf32);
            if (tf32 && options.Device.type != TorchSharp.DeviceType.CUDA)
                throw new UserInputException("--tf32 applies to CUDA only (the CPU has no TF32 matmuls)");
            var results = GoldenCheck.Run(options, stdout);
            var failed = results.Count(r => !r.Passed);
            stdout.WriteLine(failed == 0 ? $"verify: all {results.Count} checks passed"
                                         : $"verify: {failed} of {results.Count} checks FAILED");
            if (jsonPath is not null)
            {
                var doc = new
                {
                    golden = goldenDir, device = deviceName, dtype = OptionNames.Name(precision), tf32,
                    exact_bounds = GoldenCheck.IsExact(options), passed = failed == 0,
                    checks = results.Select(r => new { name = r.Name, measure = r.Measure, value = r.Value, bound = r.Bound, passed = r.Passed }),
                };
                CliParsing.WriteJsonAtomically(jsonPath, doc);
            }
            return failed == 0 ? CliErrors.Ok : CliErrors.CheckFailed;
        });
    }
}
