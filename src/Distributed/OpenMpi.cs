using System.Runtime.InteropServices;

namespace Qwen35.Distributed;

/// <summary>
/// The few MPI calls data parallelism needs, bound to OpenMPI's <c>libmpi.so.40</c> (Debian's <c>openmpi-bin</c>,
/// and the OpenMPI of most clusters). OpenMPI's handles (<c>MPI_COMM_WORLD</c>, <c>MPI_FLOAT</c>, <c>MPI_SUM</c>, …) are
/// the addresses of exported globals (<c>ompi_mpi_comm_world</c>, …), read once from the library. MPICH has an
/// incompatible ABI (integer handles) and is not supported.
/// </summary>
static partial class OpenMpi
{
    const string Lib = "libmpi.so.40";
    public const int ThreadSerialized = 2;   // MPI_THREAD_SERIALIZED in OpenMPI's mpi.h
    public static readonly nint InPlace = 1; // MPI_IN_PLACE in OpenMPI's mpi.h: ((void *) 1)

    public static nint CommWorld, Float, Double, LongLong, Byte, Sum;

    /// <summary>Loads libmpi into the global symbol namespace (its plugins, dlopen'ed by MPI_Init, resolve their
    /// symbols against it; a local load makes them fail) and reads the predefined handles.</summary>
    public static void Load()
    {
        if (CommWorld != 0) return;
        if (Dlopen(Lib, RtldNow | RtldGlobal) == 0)
            throw new DllNotFoundException($"{Lib} (OpenMPI) could not be loaded: {Marshal.PtrToStringUTF8(Dlerror())}; install it (Debian/Ubuntu: apt-get install openmpi-bin) or run a single process without mpirun");
        var lib = NativeLibrary.Load(Lib);
        CommWorld = NativeLibrary.GetExport(lib, "ompi_mpi_comm_world");
        Float = NativeLibrary.GetExport(lib, "ompi_mpi_float");
        Double = NativeLibrary.GetExport(lib, "ompi_mpi_double");
        LongLong = NativeLibrary.GetExport(lib, "ompi_mpi_long_long_int");
        Byte = NativeLibrary.GetExport(lib, "ompi_mpi_byte");
        Sum = NativeLibrary.GetExport(lib, "ompi_mpi_op_sum");
    }

    /// <summary>Throws on an MPI error code (the default handler, MPI_ERRORS_ARE_FATAL, aborts first in practice).</summary>
    public static void Check(int code, string call)
    {
        if (code != 0) throw new InvalidOperationException($"{call} failed with MPI error {code}");
    }

    [LibraryImport(Lib, EntryPoint = "MPI_Init_thread")] public static partial int InitThread(nint argc, nint argv, int required, out int provided);
    [LibraryImport(Lib, EntryPoint = "MPI_Initialized")] public static partial int Initialized(out int flag);
    [LibraryImport(Lib, EntryPoint = "MPI_Finalized")] public static partial int Finalized(out int flag);
    [LibraryImport(Lib, EntryPoint = "MPI_Finalize")] public static partial int Finalize();
    [LibraryImport(Lib, EntryPoint = "MPI_Comm_rank")] public static partial int CommRank(nint comm, out int rank);
    [LibraryImport(Lib, EntryPoint = "MPI_Comm_size")] public static partial int CommSize(nint comm, out int size);
    [LibraryImport(Lib, EntryPoint = "MPI_Allreduce")] public static partial int Allreduce(nint send, nint recv, int count, nint datatype, nint op, nint comm);
    [LibraryImport(Lib, EntryPoint = "MPI_Bcast")] public static partial int Bcast(nint buffer, int count, nint datatype, int root, nint comm);
    [LibraryImport(Lib, EntryPoint = "MPI_Barrier")] public static partial int Barrier(nint comm);
    [LibraryImport(Lib, EntryPoint = "MPI_Abort")] public static partial int Abort(nint comm, int errorcode);

    const int RtldNow = 2, RtldGlobal = 0x100;
    [LibraryImport("libc", EntryPoint = "dlopen", StringMarshalling = StringMarshalling.Utf8)] private static partial nint Dlopen(string file, int mode);
    [LibraryImport("libc", EntryPoint = "dlerror")] private static partial nint Dlerror();
}
