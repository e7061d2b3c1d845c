using System.Text.RegularExpressions;

namespace Qwen35.Models.Runtime;

/// <summary>
/// Whether TorchSharp's native shim (<c>libLibTorchSharp.so</c>) can bind every libtorch function it imports from a
/// given libtorch folder. TorchSharp binds libtorch's C++ API by mangled name, and the dynamic linker resolves
/// function imports lazily: against a libtorch of another minor version (PyTorch 2.11's <c>torch/lib</c> for a shim
/// built on 2.10) a missing symbol surfaces only when that op first runs, as "symbol lookup error" and a dead
/// process. Comparing the shim's imports with the folder's exports names every such op up front.
/// </summary>
/// <param name="Required">the shim's imports that libtorch must provide (mangled names in at::, c10::, torch::, caffe2::).</param>
/// <param name="Missing">those not exported by any ELF library in the folder.</param>
/// <param name="TorchVersion">the version written next to the folder (PyTorch's version.py or libtorch's
/// build-version), or null where there is none (the NuGet packages).</param>
public sealed record LibTorchCompatibility(string Shim, string LibTorchDir, int Required, IReadOnlyList<string> Missing, string? TorchVersion)
{
    // Nested names (N...) or vtables/typeinfo of classes (TV/TI/TS) in libtorch's namespaces; K/V/r are cv-qualifiers.
    static readonly Regex TorchSymbol = new(@"^_Z(T[VIS])?N[KVr]*(2at|3c10|5torch|6caffe2)", RegexOptions.Compiled);

    public bool Compatible => Missing.Count == 0;

    public static bool IsLibTorchSymbol(string mangled) => TorchSymbol.IsMatch(mangled);

    public static LibTorchCompatibility Check(string shimPath, string libTorchDir)
    {
        if (!File.Exists(shimPath)) throw new FileNotFoundException($"{shimPath}: TorchSharp's native shim not found", shimPath);
        if (!Directory.Exists(libTorchDir)) throw new DirectoryNotFoundException($"{libTorchDir}: libtorch folder not found");
        var required = ElfSymbols.Imports(shimPath).Where(IsLibTorchSymbol).ToList();
        var libraries = Directory.EnumerateFiles(libTorchDir).Where(p => Path.GetFileName(p).Contains(".so") && ElfSymbols.IsElf(p)).ToList();
        if (libraries.Count == 0) throw new InvalidDataException($"{libTorchDir}: no shared libraries (expected libtorch*.so, libc10.so)");
        var exported = new HashSet<string>(StringComparer.Ordinal);
        foreach (var lib in libraries) exported.UnionWith(ElfSymbols.Exports(lib));
        var missing = required.Where(s => !exported.Contains(s)).Order(StringComparer.Ordinal).ToList();
        return new LibTorchCompatibility(shimPath, libTorchDir, required.Count, missing, ReadVersion(libTorchDir));
    }

    /// <summary>The folder this process loaded a library from (e.g. <c>libtorch_cpu.so</c>), read from
    /// /proc/self/maps; null when it is not loaded or the system has no /proc.</summary>
    public static string? LoadedFrom(string libraryFileName)
    {
        const string maps = "/proc/self/maps";
        if (!File.Exists(maps)) return null;
        foreach (var line in File.ReadLines(maps))
        {
            var slash = line.IndexOf('/');
            if (slash < 0) continue;
            var path = line[slash..].Trim();
            if (Path.GetFileName(path) == libraryFileName) return Path.GetDirectoryName(path);
        }
        return null;
    }

    static string? ReadVersion(string libTorchDir)
    {
        var parent = Path.GetDirectoryName(Path.GetFullPath(libTorchDir).TrimEnd('/'));
        if (parent is null) return null;
        var versionPy = Path.Combine(parent, "version.py");       // site-packages/torch/version.py
        if (File.Exists(versionPy))
        {
            var m = Regex.Match(File.ReadAllText(versionPy), @"^__version__\s*=\s*['""]([^'""]+)['""]", RegexOptions.Multiline);
            if (m.Success) return m.Groups[1].Value;
        }
        var buildVersion = Path.Combine(parent, "build-version"); // the libtorch zip's libtorch/build-version
        return File.Exists(buildVersion) ? File.ReadAllText(buildVersion).Trim() : null;
    }
}
