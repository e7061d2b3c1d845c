using System.CommandLine;
using System.Diagnostics;
using Qwen35.Cli.Commands;

namespace Qwen35.Cli.Tests;

/// <summary>Runs verbs in-process the way the `trainer` program does, capturing what they print.</summary>
static class CliRunner
{
    public static (int Code, string Out, string Err) Run(IEnumerable<Command> verbs, string[] args)
    {
        var root = new RootCommand();
        foreach (var verb in verbs) root.Subcommands.Add(verb);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = root.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>
    /// Runs the program's root command (train is its default verb) with the given verbs, capturing the console: train
    /// writes its results to Console.Out and its log to Console.Error, like the program.
    /// </summary>
    public static (int Code, string Out, string Err) RunProgram(IEnumerable<Command> verbs, string[] args)
    {
        var root = new RootCommand();
        foreach (var verb in verbs) root.Subcommands.Add(verb);
        TrainCommand.AttachToRoot(root);
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        using var o = new StringWriter();
        using var e = new StringWriter();
        Console.SetOut(o);
        Console.SetError(e);
        try { return (root.Parse(args).Invoke(), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    /// <summary>Runs the built `trainer` program (its dll is copied next to the tests) as a process; 120 s at most.</summary>
    public static (int Exit, string Out, string Err) RunProcess(params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "trainer.dll"));
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(); Assert.Fail("trainer did not finish in 120 s"); }
        return (p.ExitCode, stdout.Result, stderr.Result);
    }
}
