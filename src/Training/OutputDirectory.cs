using System.Text.RegularExpressions;

namespace Qwen35.Training;

/// <summary>How a run treats its output_dir.</summary>
public enum OutputMode
{
    /// <summary>A new run: output_dir must be absent, empty, or hold nothing at all (an earlier run is refused).</summary>
    Fresh,
    /// <summary>A new run that first deletes an earlier run's files (only files the trainer writes; anything else is refused).</summary>
    Overwrite,
    /// <summary>Continuing a checkpoint: output_dir's earlier files are the run's own and stay.</summary>
    Resume,
}

/// <summary>output_dir is unusable or holds something a fresh run must not mix with (exit 2, one line naming the key).</summary>
public sealed class OutputDirectoryException(string message) : UserInputException(message);

/// <summary>
/// The checks and the clean-up of output_dir, split in two so nothing touches the disk before setup has succeeded:
/// <see cref="Check"/> runs first (before the model and data are loaded) and only reads; <see cref="Begin"/> runs
/// once setup succeeded and deletes the earlier run's files (<see cref="OutputMode.Overwrite"/>) and creates the
/// folder. A run that fails during setup therefore leaves no folder behind and an earlier run untouched.
/// </summary>
public sealed class OutputDirectory
{
    /// <summary>Entries of output_dir that a run writes (a top-level name, or a temporary file of one).</summary>
    static readonly IReadOnlyList<string> RunEntries =
        ["checkpoints", "adapter", "metrics.jsonl", "train.log.jsonl", "loss.png", "recipe.yaml"];

    // Temporary names of the run's writers: ".x.GUID.tmp" (AtomicFile, which every writer goes through now), and
    // "x.tmp" / "loss.png.tmp.png", which earlier versions of MetricsWriter, PeftAdapter and LossPlot left. A crash
    // can leave them behind; they are the run's files too.
    static readonly Regex TempOf = new(@"^(?:\.(?<n>.+)\.[0-9a-f]{32}\.tmp|(?<n>.+?)\.tmp(?:\.png)?)$", RegexOptions.CultureInvariant);
    static readonly Regex CheckpointEntry = new(@"^(?:step_\d+|\.tmp-step_\d+-[0-9a-f]{32})$", RegexOptions.CultureInvariant);
    static readonly HashSet<string> AdapterFiles = ["adapter_model.safetensors", "adapter_config.json", "README.md"];

    // Folders that hold no files of their own: writing a run there fails in confusing ways (or not at all).
    static readonly string[] SystemRoots = ["/proc", "/sys", "/dev"];

    readonly string _path;
    readonly OutputMode _mode;
    readonly IReadOnlyList<string> _earlierRun;

    OutputDirectory(string path, OutputMode mode, IReadOnlyList<string> earlierRun)
    {
        _path = path;
        _mode = mode;
        _earlierRun = earlierRun;
    }

    public string Path => _path;

    /// <summary>
    /// Checks output_dir for a run in <paramref name="mode"/> without changing anything: not a system folder, not a
    /// file, writable (or creatable), and for a new run free of an earlier run (<see cref="OutputMode.Fresh"/>) or of
    /// anything the trainer did not write (<see cref="OutputMode.Overwrite"/>: those files are the user's and a run
    /// never deletes them). Throws <see cref="OutputDirectoryException"/>.
    /// </summary>
    public static OutputDirectory Check(string path, OutputMode mode)
    {
        if (string.IsNullOrWhiteSpace(path)) throw Bad(path, "is empty; give a folder (--set output_dir=runs/NAME)");
        var full = System.IO.Path.GetFullPath(path);
        foreach (var root in SystemRoots)
            if (full == root || full.StartsWith(root + "/", StringComparison.Ordinal))
                throw Bad(path, $"is under {root}, a system folder that holds no ordinary files; choose a folder on disk");
        if (File.Exists(full)) throw Bad(path, "is a file, not a folder");

        // The nearest existing folder must be a folder and writable: probe it by creating (and removing) a file.
        var existing = full;
        while (!Directory.Exists(existing))
        {
            if (File.Exists(existing)) throw Bad(path, $"cannot be created: {existing} is a file");
            existing = System.IO.Path.GetDirectoryName(existing) ?? throw Bad(path, "has no existing parent folder");
        }
        ProbeWritable(path, existing);

        if (!Directory.Exists(full) || mode == OutputMode.Resume) return new OutputDirectory(full, mode, []);
        var entries = Directory.GetFileSystemEntries(full).Select(e => System.IO.Path.GetFileName(e)!).Order(StringComparer.Ordinal).ToList();
        var foreign = entries.Where(e => !IsRunEntry(full, e)).ToList();
        var run = entries.Where(e => IsRunEntry(full, e)).ToList();
        if (foreign.Count > 0)
            throw Bad(path, $"holds files a training run does not write ({List(foreign)}); choose a new or empty folder " +
                            "(--overwrite deletes only a run's own files, never these)");
        if (run.Count > 0 && mode == OutputMode.Fresh)
            throw Bad(path, $"holds an earlier run ({List(run)}); continue it with --resume, or start over with --overwrite (deletes those files)");
        return new OutputDirectory(full, mode, run);
    }

    /// <summary>Called once setup succeeded: deletes the earlier run's files (overwrite) and creates the folder.</summary>
    public void Begin()
    {
        foreach (var name in _earlierRun)
        {
            var p = System.IO.Path.Combine(_path, name);
            if (Directory.Exists(p)) Directory.Delete(p, recursive: true);
            else File.Delete(p);
        }
        Directory.CreateDirectory(_path);
    }

    static bool IsRunEntry(string dir, string name)
    {
        var path = System.IO.Path.Combine(dir, name);
        if (Directory.Exists(path))
        {
            // A folder counts as the run's only if everything in it is what the trainer puts there.
            var children = Directory.GetFileSystemEntries(path).Select(e => System.IO.Path.GetFileName(e)!).ToList();
            return name switch
            {
                "checkpoints" => children.All(c => CheckpointEntry.IsMatch(c) && Directory.Exists(System.IO.Path.Combine(path, c))),
                "adapter" => children.All(c => File.Exists(System.IO.Path.Combine(path, c)) && (AdapterFiles.Contains(c) || IsTempOf(c, AdapterFiles))),
                _ => false,
            };
        }
        var files = RunEntries.Where(e => e.Contains('.', StringComparison.Ordinal)).ToHashSet();
        return files.Contains(name) || IsTempOf(name, files);
    }

    static bool IsTempOf(string name, IReadOnlySet<string> of) =>
        TempOf.Match(name) is { Success: true } m && of.Contains(m.Groups["n"].Value);

    static void ProbeWritable(string path, string folder)
    {
        var probe = System.IO.Path.Combine(folder, $".trainer-write-test-{Guid.NewGuid():N}");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write)) { }
            File.Delete(probe);
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw Bad(path, $"is not writable ({folder}: {e.Message})");
        }
    }

    static string List(IReadOnlyList<string> names) =>
        string.Join(", ", names.Take(5)) + (names.Count > 5 ? $", … {names.Count - 5} more" : "");

    static OutputDirectoryException Bad(string path, string what) => new($"output_dir '{path}': {what}");
}
