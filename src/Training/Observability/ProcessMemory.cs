namespace Qwen35.Training.Observability;

/// <summary>Memory numbers that can be read without CUDA bindings: this process's resident and peak resident set.</summary>
public static class ProcessMemory
{
    /// <summary>Current resident set size in MB (from /proc on Linux, else the runtime's working set).</summary>
    public static double RssMb() => ReadStatusKb("VmRSS:") is { } kb ? kb / 1024.0 : Environment.WorkingSet / 1048576.0;

    /// <summary>Peak resident set size in MB (VmHWM), or null where /proc is unavailable.</summary>
    public static double? PeakRssMb() => ReadStatusKb("VmHWM:") is { } kb ? kb / 1024.0 : null;

    static long? ReadStatusKb(string key)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
                if (line.StartsWith(key, StringComparison.Ordinal))
                    return long.Parse(line[key.Length..].Trim().Split(' ')[0]);
        }
        // No /proc (not Linux, or a sandbox hides it): the callers fall back to the runtime's numbers or report none.
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }
}
