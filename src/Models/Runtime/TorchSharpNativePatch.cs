using System.Runtime.CompilerServices;
using System.Text;

namespace Qwen35.Models.Runtime;

/// <summary>
/// Makes TorchSharp 0.107's native shim loadable on systems whose libstdc++ is older than GCC 13
/// (Debian 12, Ubuntu 22.04).
/// </summary>
/// <remarks>
/// <c>libLibTorchSharp.so</c> 0.107.0 was built on Ubuntu 26.04 and declares a need for the symbol version
/// <c>GLIBCXX_3.4.32</c>. The only symbol of that version it references is <c>std::ios_base_library_init</c>,
/// which GCC 13's &lt;iostream&gt; mentions but nothing calls. Marking that version requirement weak
/// (<c>VER_FLG_WEAK</c> in its Vernaux entry) lets the dynamic linker accept a libstdc++ that lacks it.
/// The patch is idempotent, costs milliseconds, and must run before anything touches <c>torch</c>, because
/// <c>dotnet build</c> re-copies the unpatched file from the NuGet cache into the output folder.
/// </remarks>
public static class TorchSharpNativePatch
{
    const uint ShtGnuVerneed = 0x6ffffffe;
    const ushort VerFlgWeak = 0x2;
    const string RequiredVersion = "GLIBCXX_3.4.32";

    static readonly object Gate = new();
    static bool _done;

    /// <summary>Patches every copy of the shim next to the running program. Safe to call many times.</summary>
    public static void EnsureApplied()
    {
        lock (Gate)
        {
            if (_done) return;
            _done = true;
            if (!OperatingSystem.IsLinux()) return;
            foreach (var path in ShimPathsBesideProgram())
            {
                if (!File.Exists(path)) continue;
                try { PatchFile(path); }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // A read-only install may already be patched, or may run on a newer libstdc++: let TorchSharp
                    // try to load it and report its own error if it cannot.
                    Console.Error.WriteLine($"warning: could not patch {path}: {e.Message}");
                }
            }
        }
    }

    /// <summary>Where TorchSharp's native shim sits next to the running program: a build output puts it under
    /// runtimes/linux-x64/native, a published app beside the program.</summary>
    public static IEnumerable<string> ShimPathsBesideProgram()
    {
        var baseDir = AppContext.BaseDirectory;
        yield return Path.Combine(baseDir, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        yield return Path.Combine(baseDir, "libLibTorchSharp.so");
    }

    /// <summary>Result of inspecting or patching one ELF file.</summary>
    public enum PatchResult { Patched, AlreadyWeak, NoSuchRequirement }

    /// <summary>Sets VER_FLG_WEAK on the GLIBCXX_3.4.32 requirement of an ELF64 little-endian file.</summary>
    /// <exception cref="InvalidDataException">The file is not a well-formed ELF64 little-endian object.</exception>
    public static PatchResult PatchFile(string path)
    {
        var bytes = File.ReadAllBytes(path);
        var (result, flagOffset) = Inspect(bytes, path);
        if (result != PatchResult.Patched) return result;

        var flags = BitConverter.ToUInt16(bytes, flagOffset);
        BitConverter.GetBytes((ushort)(flags | VerFlgWeak)).CopyTo(bytes, flagOffset);
        // Written beside the original and renamed over it, so a crash never leaves a half-written library (and a
        // process that already mapped the old file keeps its copy).
        AtomicFile.WriteAllBytes(path, bytes);
        return PatchResult.Patched;
    }

    /// <summary>Reports whether the requirement is present and already weak, without writing.</summary>
    public static PatchResult Check(string path) => Inspect(File.ReadAllBytes(path), path).Result;

    static (PatchResult Result, int FlagOffset) Inspect(byte[] b, string path)
    {
        if (b.Length < 64 || b[0] != 0x7f || b[1] != (byte)'E' || b[2] != (byte)'L' || b[3] != (byte)'F')
            throw new InvalidDataException($"{path}: not an ELF file");
        if (b[4] != 2 || b[5] != 1)
            throw new InvalidDataException($"{path}: only 64-bit little-endian ELF is supported");

        long shoff = (long)BitConverter.ToUInt64(b, 0x28);
        int shentsize = BitConverter.ToUInt16(b, 0x3A);
        int shnum = BitConverter.ToUInt16(b, 0x3C);
        if (shentsize < 64 || shoff <= 0 || shoff + (long)shnum * shentsize > b.Length)
            throw new InvalidDataException($"{path}: section header table out of range");

        for (int i = 0; i < shnum; i++)
        {
            long sh = shoff + (long)i * shentsize;
            uint type = BitConverter.ToUInt32(b, (int)sh + 4);
            if (type != ShtGnuVerneed) continue;

            long offset = (long)BitConverter.ToUInt64(b, (int)sh + 0x18);
            long size = (long)BitConverter.ToUInt64(b, (int)sh + 0x20);
            int link = (int)BitConverter.ToUInt32(b, (int)sh + 0x28);
            int count = (int)BitConverter.ToUInt32(b, (int)sh + 0x2C);
            if (link >= shnum || offset < 0 || offset + size > b.Length)
                throw new InvalidDataException($"{path}: verneed section out of range");
            long strTab = (long)BitConverter.ToUInt64(b, (int)(shoff + (long)link * shentsize) + 0x18);

            long vn = offset;
            for (int n = 0; n < count; n++)
            {
                CheckRange(b, vn, 16, path);
                int auxCount = BitConverter.ToUInt16(b, (int)vn + 2);
                long aux = vn + BitConverter.ToUInt32(b, (int)vn + 8);
                for (int a = 0; a < auxCount; a++)
                {
                    CheckRange(b, aux, 16, path);
                    ushort flags = BitConverter.ToUInt16(b, (int)aux + 4);
                    uint nameOff = BitConverter.ToUInt32(b, (int)aux + 8);
                    if (ReadCString(b, strTab + nameOff, path) == RequiredVersion)
                        return ((flags & VerFlgWeak) != 0 ? PatchResult.AlreadyWeak : PatchResult.Patched, (int)aux + 4);
                    aux += BitConverter.ToUInt32(b, (int)aux + 12);
                }
                vn += BitConverter.ToUInt32(b, (int)vn + 12);
            }
        }
        return (PatchResult.NoSuchRequirement, -1);
    }

    static void CheckRange(byte[] b, long at, int len, string path)
    {
        if (at < 0 || at + len > b.Length) throw new InvalidDataException($"{path}: version entry out of range");
    }

    static string ReadCString(byte[] b, long at, string path)
    {
        CheckRange(b, at, 1, path);
        int end = Array.IndexOf(b, (byte)0, (int)at);
        if (end < 0) throw new InvalidDataException($"{path}: unterminated string");
        return Encoding.ASCII.GetString(b, (int)at, end - (int)at);
    }
}

/// <summary>Applies the patch as soon as this assembly loads, before any model code can reach <c>torch</c>.</summary>
static class TorchSharpNativePatchInitializer
{
    // CA2255 discourages module initializers in libraries; here it is the point: every program that loads the model
    // library gets a loadable TorchSharp, even one that never calls EnsureApplied itself.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Init() => TorchSharpNativePatch.EnsureApplied();
}
