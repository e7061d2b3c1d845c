using System.CommandLine;
using System.Diagnostics;
using System.Text.RegularExpressions;
using Qwen35.Cli.Commands;
using Qwen35.Tests;
using Qwen35.Training.Observability;

namespace Qwen35.Cli.Tests;

/// <summary>Ctrl-C as a user sends it: SIGINT to the real trainer process.</summary>
public class TrainInterruptCliTests
{
    [Test]
    public void SigIntCheckpointsPrintsTheResumeCommandAndExits130()
    {
        var dir = TestPaths.TempDir("cli-sigint");
        string[] args =
        [
            "--recipe", "tiny", "--set", $"output_dir={dir}", "--set", "schedule.max_steps=64", "--set", "data.max_length=128",
            "--set", "data.pack_length=128", "--set", "cpu_threads=1", "--set", "eval_every=0", "--no-progress",
        ];
        // Ctrl-C in a terminal sends SIGINT to the process. A step of these short rows takes tens of milliseconds, so
        // the run is long enough (64 steps) for the signal to land before its end even on a loaded machine.
        var (code, stdout, err) = RunTrainerProcess(args, ("step 2/64", pid => Assert.That(Kill(pid, SigInt), Is.Zero)));
        Assert.That(code, Is.EqualTo(130), err);

        var m = Regex.Match(err, @"interrupted at step (\d+); resume with: (.+)");
        Assert.That(m.Success, err);
        var step = int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.That(step, Is.InRange(2, 63), "stopped after the step under way, before the end");
        Assert.That(m.Groups[2].Value.TrimEnd(), Is.EqualTo(string.Join(' ', ["trainer", .. args, "--resume"])), "the exact command");
        var checkpoint = Path.Combine(dir, "checkpoints", $"step_{step:D6}");
        Assert.That(Directory.Exists(checkpoint), "a checkpoint at the interrupted step");
        Assert.That(stdout, Does.Contain($"checkpoint: {checkpoint}"));
        Assert.That(Directory.Exists(Path.Combine(dir, "adapter")), Is.False, "no final adapter for an unfinished run");

        // The printed command continues the run to its end, with the metrics picking up right after the checkpoint.
        var resume = m.Groups[2].Value.TrimEnd().Split(' ')[1..];
        (code, _, var resumeErr) = Run(resume);
        Assert.That(code, Is.EqualTo(0), resumeErr);
        Assert.That(resumeErr, Does.Contain($"step_{step:D6}"));
        Assert.That(MetricsWriter.Read(Path.Combine(dir, "metrics.jsonl")).Select(r => r.Step), Is.EqualTo(Enumerable.Range(1, 64)));
        Assert.That(File.Exists(Path.Combine(dir, "adapter", "adapter_model.safetensors")));
    }

    [Test]
    public void ASecondSigIntStopsAtOnceWith130()
    {
        // The second press comes once the first was handled (the trainer said so), inside the step under way: no
        // checkpoint of that step, no resume line; the process ends with 130 all the same. (Two signals sent back to
        // back can reach the process as one: POSIX does not queue a pending SIGINT twice.) Rows of 4096 tokens make a
        // step last long enough (about 2 s on two cores) for the second press to land inside it.
        var dir = TestPaths.TempDir("cli-sigint2");
        string[] args =
        [
            "--recipe", "tiny", "--set", $"output_dir={dir}", "--set", "schedule.max_steps=16", "--set", "cpu_threads=1",
            "--set", "data.max_length=4096", "--set", "data.pack_length=4096", "--set", "eval_every=0", "--no-progress",
        ];
        var (code, _, err) = RunTrainerProcess(args,
            ("step 2/16", pid => Assert.That(Kill(pid, SigInt), Is.Zero)),
            ("Ctrl-C: stopping after the current optimizer step", pid => Assert.That(Kill(pid, SigInt), Is.Zero)));
        Assert.That(code, Is.EqualTo(130), err);
        Assert.That(err, Does.Contain("Ctrl-C again: stopped at once"));
        Assert.That(err, Does.Not.Contain("interrupted at step"));
        Assert.That(Directory.Exists(Path.Combine(dir, "checkpoints")), Is.False, "nothing saved (save_every is 0)");
    }

    const int SigInt = 2;
    static readonly IntPtr SigDfl = 0, SigIgn = 1;

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "signal")]
    static extern IntPtr Signal(int signal, IntPtr handler);

    /// <summary>
    /// A shell that starts the tests as a background job without job control (`nohup … &amp;`, `( … &amp;)` in a
    /// script) starts them with SIGINT ignored; an ignored signal stays ignored across exec, and .NET keeps an
    /// inherited SIG_IGN, so the trainer would never see the test's Ctrl-C. Give children the default disposition in
    /// that case (only then: a handler the runtime installed is put back as it was).
    /// </summary>
    static void UnignoreSigIntForChildren()
    {
        var previous = Signal(SigInt, SigIgn);
        Signal(SigInt, previous == SigIgn ? SigDfl : previous);
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    static extern int Kill(int pid, int signal);

    /// <summary>Runs the built trainer; when a stderr line contains the next phase's trigger, calls its signal with the
    /// process id (phases in order, each once). Returns the exit code, stdout and stderr.</summary>
    static (int Code, string Out, string Err) RunTrainerProcess(string[] args, params (string Trigger, Action<int> Signal)[] phases)
    {
        UnignoreSigIntForChildren();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = TestPaths.RepoRoot };
        foreach (var a in (string[])[Path.Combine(AppContext.BaseDirectory, "trainer.dll"), .. args]) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        var stderr = new System.Text.StringBuilder();
        var next = 0;
        while (p.StandardError.ReadLine() is { } line)
        {
            stderr.AppendLine(line);
            if (next < phases.Length && line.Contains(phases[next].Trigger, StringComparison.Ordinal))
                phases[next++].Signal(p.Id);
        }
        Assert.That(p.WaitForExit(120_000), Is.True, "trainer did not stop");
        Assert.That(next, Is.EqualTo(phases.Length), "every signal was sent: " + stderr);
        return (p.ExitCode, stdoutTask.Result, stderr.ToString());
    }

    [Test]
    public void LeavingARunShowsTheCursorAgain()
    {
        // Spectre hides the cursor while the progress bar is drawn; the Ctrl-C guard (disposed on every way out of the
        // train verb, exceptions included) writes the ANSI "show cursor" sequence.
        var written = new StringWriter();
        var console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
        {
            Ansi = Spectre.Console.AnsiSupport.Yes,
            Out = new Spectre.Console.AnsiConsoleOutput(written),
        });
        using var interrupt = new Qwen35.Training.TrainInterrupt();
        Assert.Throws<InvalidOperationException>(() =>
        {
            using var guard = new TrainCommand.CtrlC(interrupt, console);
            console.Cursor.Show(false);
            throw new InvalidOperationException("a failure mid-run");
        });
        var text = written.ToString();
        Assert.That(text, Does.Contain("\u001b[?25l"), "precondition: the cursor was hidden");
        Assert.That(text.LastIndexOf("\u001b[?25h", StringComparison.Ordinal), Is.GreaterThan(text.LastIndexOf("\u001b[?25l", StringComparison.Ordinal)));
    }

    static (int Code, string Out, string Err) Run(string[] args) => CliRunner.RunProgram([TrainCommand.Build()], args);
}
