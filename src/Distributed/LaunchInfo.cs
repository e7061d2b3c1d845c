namespace Qwen35.Distributed;

/// <summary>
/// Where this process sits in a multi-process job, as its launcher told it through the environment: OpenMPI's
/// <c>mpirun</c> (<c>OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK</c>), Slurm's <c>srun</c> (<c>SLURM_PROCID/NTASKS/LOCALID</c>)
/// or a PMI launcher such as MPICH's hydra (<c>PMI_RANK/PMI_SIZE</c>, <c>MPI_LOCALRANKID</c>). Reading the environment
/// needs no MPI library, so the device (<c>cuda:LOCAL_RANK</c>) is known before anything is initialised.
/// </summary>
public sealed record LaunchInfo(int Rank, int WorldSize, int LocalRank, string Launcher)
{
    /// <summary>The launch of this process, or null when no launcher started it: then the trainer runs exactly as a plain
    /// single process. <c>mpirun -np 1</c> is a launch (a world of one that runs the MPI and NCCL code paths); a Slurm
    /// job step of one task is not (every batch job has SLURM_PROCID=0, SLURM_NTASKS=1).</summary>
    public static LaunchInfo? FromEnvironment() => From(name => Environment.GetEnvironmentVariable(name));

    /// <summary><see cref="FromEnvironment"/> over any variable lookup (tests).</summary>
    public static LaunchInfo? From(Func<string, string?> env)
    {
        // OpenMPI first: under `srun --mpi=pmix` both sets exist and agree; under mpirun only OMPI's.
        var info = Read(env, "mpirun", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK")
                   ?? Read(env, "srun", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID")
                   ?? Read(env, "pmi", "PMI_RANK", "PMI_SIZE", "MPI_LOCALRANKID");
        return info is { WorldSize: > 1 } or { Launcher: "mpirun" } ? info : null;
    }

    static LaunchInfo? Read(Func<string, string?> env, string launcher, string rankVar, string sizeVar, string localVar)
    {
        if (env(rankVar) is not { } rankText || env(sizeVar) is not { } sizeText) return null;
        var rank = Parse(rankText, rankVar);
        var size = Parse(sizeText, sizeVar);
        // A PMI launcher need not say the local rank; one process per node is then the only safe reading.
        var local = env(localVar) is { } l ? Parse(l, localVar) : 0;
        if (size < 1 || rank < 0 || rank >= size || local < 0)
            throw new UserInputException($"{rankVar}={rankText}, {sizeVar}={sizeText}, {localVar}={env(localVar)}: not a valid rank of a job (the launcher's environment is inconsistent)");
        return new LaunchInfo(rank, size, local, launcher);
    }

    static int Parse(string text, string name) =>
        int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v)
            ? v : throw new UserInputException($"{name}={text}: not a number (the launcher's environment is not understood)");

    /// <summary>The device a rank of this job takes when the recipe says <c>cuda</c>: one GPU per local rank.</summary>
    public string DeviceFor(string device) => device == "cuda" ? $"cuda:{LocalRank}" : device;
}
