using Qwen35.Distributed;

namespace Qwen35.Cli.Tests.Distributed;

/// <summary>Reading the launcher's environment: what mpirun, srun and a PMI launcher set (their documented variables).</summary>
public class LaunchInfoTests
{
    static LaunchInfo? From(params (string Name, string Value)[] vars) =>
        LaunchInfo.From(name => vars.FirstOrDefault(v => v.Name == name).Value);

    [Test]
    public void NoLauncherOrASlurmJobOfOneTaskIsASingleProcess()
    {
        Assert.That(From(), Is.Null);
        Assert.That(From(("SLURM_PROCID", "0"), ("SLURM_NTASKS", "1"), ("SLURM_LOCALID", "0")), Is.Null, "any sbatch script has these");
        Assert.That(From(("OMPI_COMM_WORLD_RANK", "0"), ("OMPI_COMM_WORLD_SIZE", "1"), ("OMPI_COMM_WORLD_LOCAL_RANK", "0")),
            Is.EqualTo(new LaunchInfo(0, 1, 0, "mpirun")), "mpirun -np 1 asked for MPI: a world of one");
    }

    [Test]
    public void OpenMpiSlurmAndPmiAreRead()
    {
        Assert.That(From(("OMPI_COMM_WORLD_RANK", "3"), ("OMPI_COMM_WORLD_SIZE", "8"), ("OMPI_COMM_WORLD_LOCAL_RANK", "3")),
            Is.EqualTo(new LaunchInfo(3, 8, 3, "mpirun")));
        Assert.That(From(("SLURM_PROCID", "5"), ("SLURM_NTASKS", "16"), ("SLURM_LOCALID", "1")), Is.EqualTo(new LaunchInfo(5, 16, 1, "srun")));
        Assert.That(From(("PMI_RANK", "1"), ("PMI_SIZE", "2")), Is.EqualTo(new LaunchInfo(1, 2, 0, "pmi")), "no local rank: 0");
        // srun --mpi=pmix under OpenMPI sets both; OpenMPI's are the ones MPI_Init will agree with.
        Assert.That(From(("OMPI_COMM_WORLD_RANK", "1"), ("OMPI_COMM_WORLD_SIZE", "2"), ("OMPI_COMM_WORLD_LOCAL_RANK", "1"),
            ("SLURM_PROCID", "1"), ("SLURM_NTASKS", "2"), ("SLURM_LOCALID", "1"))!.Launcher, Is.EqualTo("mpirun"));
    }

    [Test]
    public void EachRankTakesTheGpuOfItsLocalRank()
    {
        var launch = new LaunchInfo(5, 16, 1, "srun");
        Assert.That(launch.DeviceFor("cuda"), Is.EqualTo("cuda:1"));
        Assert.That(launch.DeviceFor("cpu"), Is.EqualTo("cpu"));
        Assert.That(launch.DeviceFor("cuda:0"), Is.EqualTo("cuda:0"), "an explicit device is the user's choice");
    }

    [Test]
    public void AnInconsistentEnvironmentIsBadInputNamingTheVariables()
    {
        var e = Assert.Throws<Qwen35.UserInputException>(() => From(("OMPI_COMM_WORLD_RANK", "2"), ("OMPI_COMM_WORLD_SIZE", "2")))!;
        Assert.That(e.Message, Does.StartWith("OMPI_COMM_WORLD_RANK=2, OMPI_COMM_WORLD_SIZE=2"));
        e = Assert.Throws<Qwen35.UserInputException>(() => From(("SLURM_PROCID", "x"), ("SLURM_NTASKS", "2")))!;
        Assert.That(e.Message, Is.EqualTo("SLURM_PROCID=x: not a number (the launcher's environment is not understood)"));
    }
}
