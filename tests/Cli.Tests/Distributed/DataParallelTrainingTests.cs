using System.Diagnostics;
using System.Text;
using Qwen35.Tests;
using Qwen35.Training.Observability;

namespace Qwen35.Cli.Tests.Distributed;

/// <summary>
/// The real thing: the built trainer under OpenMPI's mpirun, 2 processes on this machine, against one process. The
/// identity tested: grad_accum is per process, so 2 processes x grad_accum 1 take the same micro-batches per optimizer
/// step as 1 process x grad_accum 2, and the summed gradients are the same numbers (a sum of two terms is the same in
/// either order), so losses and adapters must agree to the last bit.
/// </summary>
[NonParallelizable]
public class DataParallelTrainingTests
{
    // Short packed rows of unequal token counts per micro-batch (so per-rank target counts differ), eval every 3 steps.
    static readonly string[] Common =
    [
        "--recipe", "tiny", "--set", "schedule.max_steps=6", "--set", "data.max_length=128", "--set", "data.pack_length=128",
        "--set", "eval_every=3", "--set", "save_every=3", "--no-progress",
    ];

    static string[] Args(string dir, int gradAccum, params string[] more) =>
        [.. Common, "--set", $"output_dir={dir}", "--set", $"schedule.grad_accum={gradAccum}", .. more];

    [Test]
    public void TwoProcessesEqualOneProcessWithTwiceTheAccumulation()
    {
        var one = TestPaths.TempDir("dp-one");
        var two = TestPaths.TempDir("dp-two");
        var (code, _, err) = Trainer(1, Args(one, 2));
        Assert.That(code, Is.Zero, err);
        (code, var stdout, err) = Trainer(2, Args(two, 1));
        Assert.That(code, Is.Zero, err);
        Assert.That(err, Does.Contain("data parallel: 2 processes, collectives over mpi"));
        Assert.That(stdout.Split('\n').Count(l => l.StartsWith("adapter: ", StringComparison.Ordinal)), Is.EqualTo(1), "rank 0 alone reports");

        var a = MetricsWriter.Read(Path.Combine(one, "metrics.jsonl"));
        var b = MetricsWriter.Read(Path.Combine(two, "metrics.jsonl"));
        Assert.That(b.Select(r => r.Step), Is.EqualTo(Enumerable.Range(1, 6)), "one metrics file, written once per step");
        Assert.That(b.Select(r => r.Loss), Is.EqualTo(a.Select(r => r.Loss)), "the same loss at every step");
        Assert.That(b.Select(r => r.GradNorm), Is.EqualTo(a.Select(r => r.GradNorm)));
        Assert.That(b.Select(r => r.TrainedTokens), Is.EqualTo(a.Select(r => r.TrainedTokens)), "tokens of the whole step");
        // Evaluation is sharded over the ranks (each takes every second batch) and its sums all-reduced.
        Assert.That(b.Where(r => r.EvalLoss is not null).Select(r => r.EvalLoss!.Value),
            Is.EqualTo(a.Where(r => r.EvalLoss is not null).Select(r => r.EvalLoss!.Value)).Within(1e-12));
        Assert.That(File.ReadAllBytes(Path.Combine(two, "adapter", "adapter_model.safetensors")),
            Is.EqualTo(File.ReadAllBytes(Path.Combine(one, "adapter", "adapter_model.safetensors"))), "the same adapter, bitwise");
    }

    [Test]
    public void ACheckpointOfTwoProcessesResumesOnOneAndTheReverse()
    {
        // Uninterrupted reference: 1 process. Then the second half of a 2-process run's steps on 1 process, and the
        // second half of a 1-process run on 2 processes, each from its step-3 checkpoint.
        var whole = TestPaths.TempDir("dp-whole");
        Assert.That(Trainer(1, Args(whole, 2)).Code, Is.Zero);
        var reference = File.ReadAllBytes(Path.Combine(whole, "adapter", "adapter_model.safetensors"));

        foreach (var (first, second, accum1, accum2) in new[] { (2, 1, 1, 2), (1, 2, 2, 1) })
        {
            var dir = TestPaths.TempDir($"dp-resume-{first}-{second}");
            var (code, _, err) = Trainer(first, Args(dir, accum1));
            Assert.That(code, Is.Zero, err);
            Directory.Delete(Path.Combine(dir, "adapter"), recursive: true);
            (code, _, err) = Trainer(second, [.. Args(dir, accum2), "--resume", Path.Combine(dir, "checkpoints", "step_000003")]);
            Assert.That(code, Is.Zero, err);
            Assert.That(File.ReadAllBytes(Path.Combine(dir, "adapter", "adapter_model.safetensors")), Is.EqualTo(reference),
                $"{first} process(es) to step 3, then {second} to step 6");
        }
    }

    [Test]
    public void AKilledRankEndsTheJobWithinAMinuteNamingIt()
    {
        var dir = TestPaths.TempDir("dp-kill");
        var args = Args(dir, 1, "--set", "schedule.max_steps=400", "--set", "save_every=0");
        var clock = Stopwatch.StartNew();
        var (code, _, err) = Trainer(2, args, onLine: (line, mpirun) =>
        {
            if (!line.Contains("step 2/400", StringComparison.Ordinal)) return false;
            var rank1 = RankPid(mpirun, 1);
            Assert.That(rank1, Is.Not.Null, "rank 1's process");
            Process.GetProcessById(rank1!.Value).Kill();
            clock.Restart();
            return true;
        });
        Assert.That(clock.Elapsed.TotalSeconds, Is.LessThan(60), "the job ended within a minute of the kill");
        Assert.That(code, Is.Not.Zero);
        Assert.That(err, Does.Match(@"process rank 1 .*exited on signal 9"), "mpirun names the rank: " + err);
    }

    [Test]
    public void ARankThatThrowsEndsTheJobNamingItselfAndItsError()
    {
        // Rank 0 alone writes checkpoints: output_dir replaced by a file makes its step-2 checkpoint throw while rank 1
        // goes on into the next step's collective. Rank 0 must say so and end the whole job (MPI_Abort).
        var dir = TestPaths.TempDir("dp-throw");
        var args = Args(dir, 1, "--set", "schedule.max_steps=400", "--set", "save_every=2");
        var clock = Stopwatch.StartNew();
        var (code, _, err) = Trainer(2, args, onLine: (line, _) =>
        {
            if (!line.Contains("step 1/400", StringComparison.Ordinal)) return false;
            Directory.Delete(dir, recursive: true);
            File.WriteAllText(dir, "in the way");
            clock.Restart();
            return true;
        });
        Assert.That(clock.Elapsed.TotalSeconds, Is.LessThan(60), "the job ended within a minute of the failure");
        Assert.That(code, Is.EqualTo(3), err);
        Assert.That(err, Does.Match(@"rank 0 of 2 failed: .*; ending the job"), err);
        Assert.That(err, Does.Not.Contain("step 3/400"), "no rank got past the failed step");
    }

    /// <summary>The pid of the process mpirun started as <paramref name="rank"/> (its OMPI_COMM_WORLD_RANK).</summary>
    static int? RankPid(int mpirunPid, int rank)
    {
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var stat = File.ReadAllText(Path.Combine(dir, "stat"));
                var parent = int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[1], System.Globalization.CultureInfo.InvariantCulture);
                if (parent != mpirunPid) continue;
                var env = File.ReadAllText(Path.Combine(dir, "environ")).Split('\0');
                if (env.Contains($"OMPI_COMM_WORLD_RANK={rank}")) return pid;
            }
            // A process that ended between the listing and the read, or another user's: not one of mpirun's ranks.
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return null;
    }

    /// <summary>Runs the built trainer, under `mpirun -np N` when N > 1. <paramref name="onLine"/> sees each stderr line
    /// with the launcher's pid until it returns true.</summary>
    static (int Code, string Out, string Err) Trainer(int processes, string[] args, Func<string, int, bool>? onLine = null)
    {
        var trainer = Path.Combine(AppContext.BaseDirectory, "trainer.dll");
        ProcessStartInfo psi;
        if (processes == 1) psi = new ProcessStartInfo("dotnet");
        else
        {
            psi = new ProcessStartInfo(Mpi.Run);
            foreach (var a in (string[])["-np", processes.ToString(System.Globalization.CultureInfo.InvariantCulture), "--oversubscribe"])
                psi.ArgumentList.Add(a);
            psi.ArgumentList.Add("dotnet");
            Mpi.AllowRoot(psi);
        }
        psi.ArgumentList.Add(trainer);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.RedirectStandardOutput = psi.RedirectStandardError = true;
        psi.WorkingDirectory = TestPaths.RepoRoot;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = new StringBuilder();
        var watching = onLine is not null;
        while (p.StandardError.ReadLine() is { } line)
        {
            stderr.AppendLine(line);
            if (watching && onLine!(line, p.Id)) watching = false;
        }
        Assert.That(p.WaitForExit(300_000), Is.True, "the job ended");
        return (p.ExitCode, stdout.Result, stderr.ToString());
    }
}

/// <summary>OpenMPI's launcher, which `.ci/run` installs (Debian's openmpi-bin) when it is missing.</summary>
static class Mpi
{
    public static string Run => Find() ?? throw new IgnoreException(
        "mpirun not found: the multi-process tests need OpenMPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev; .ci/run installs it)");

    static string? Find() => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
        .Select(d => Path.Combine(d, "mpirun")).FirstOrDefault(File.Exists);

    /// <summary>CI and containers run as root, which mpirun refuses unless told it is intended.</summary>
    public static void AllowRoot(ProcessStartInfo psi)
    {
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1";
        psi.Environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1";
    }
}
