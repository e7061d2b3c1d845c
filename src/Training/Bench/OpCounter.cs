using System.Diagnostics;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Bench;

/// <summary>
/// Counts the ATen operators libtorch runs, through libtorch's own observer hook (<c>at::addGlobalCallback</c>, the
/// RecordFunction mechanism its profiler is built on). TorchSharp exposes no profiler and no op counter (its
/// <c>Tensor.TotalCount</c> is the number of LIVE managed handles; its dispose-scope statistics count handles created,
/// which misses every in-place op and everything autograd runs natively in backward), so we register a start/end
/// callback pair for <c>RecordScope::FUNCTION</c> by P/Invoke on the mangled C++ symbol.
/// <para>What is counted: every call through the ATen dispatcher on the observing thread. <see cref="TopLevel"/>
/// counts the calls made at depth 0 (what our code or an autograd node issued: <c>linear</c>, <c>add_</c>,
/// <c>MmBackward</c>'s <c>mm</c>); <see cref="All"/> adds the calls those make in turn (<c>linear</c> → <c>t</c> +
/// <c>addmm</c>), views included. On a GPU the kernel launches lie between the two: views launch nothing, a fused
/// op launches one kernel for several nested calls.</para>
/// <para>The struct passed to <c>addGlobalCallback</c> mirrors <c>at::RecordFunctionCallback</c> of libtorch 2.x
/// (aten/src/ATen/record_function.h: start, end, sampling probability, one bool per RecordScope, three needs_*
/// flags); <see cref="Start"/> throws if the symbol is missing, and the unit test checks the counts on a known
/// sequence, so a layout change in a future libtorch fails there, not silently.</para>
/// </summary>
public sealed class OpCounter : IDisposable
{
    const int NumScopes = 10;             // at::RecordScope::NUM_SCOPES in libtorch 2.10
    const int FunctionScope = 0;          // at::RecordScope::FUNCTION

    [StructLayout(LayoutKind.Sequential)]
    struct RecordFunctionCallback
    {
        public IntPtr Start;
        public IntPtr End;
        public double SamplingProb;
        [MarshalAs(UnmanagedType.ByValArray, SizeConst = NumScopes)]
        public byte[] Scopes;
        public byte NeedsInputs, NeedsOutputs, NeedsIds;
    }

    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate ulong AddGlobalCallback(RecordFunctionCallback callback);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate void RemoveCallback(ulong handle);
    // StartCallback returns std::unique_ptr<ObserverContext>: not trivially destructible, so the Itanium C++ ABI
    // returns it through a hidden pointer (first argument) and hands that pointer back in rax.
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate IntPtr StartCallback(IntPtr result, IntPtr recordFunction);
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate void EndCallback(IntPtr recordFunction, IntPtr context);
    // const char* at::RecordFunction::name() const: the operator's name ("aten::mm").
    [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
    delegate IntPtr NameFunction(IntPtr recordFunction);

    static readonly StartCallback StartDelegate = OnStart;
    static readonly EndCallback EndDelegate = OnEnd;
    static long _all, _topLevel;
    [ThreadStatic] static int _depth;
    static OpCounter? _active;
    static NameFunction? _name;
    // Top-level calls per operator name. The name is read during the call: an autograd node's name is a string the
    // RecordFunction owns, not a static one.
    static readonly Dictionary<string, long> _byName = new(StringComparer.Ordinal);

    readonly RemoveCallback _remove;
    ulong _handle;

    /// <summary>Dispatcher calls at depth 0 since <see cref="Start"/>.</summary>
    public static long TopLevel => Interlocked.Read(ref _topLevel);

    /// <summary>All dispatcher calls (nested ones included) since <see cref="Start"/>.</summary>
    public static long All => Interlocked.Read(ref _all);

    /// <summary>Top-level calls per operator name ("aten::mm") since <see cref="Start"/>, most called first: what a
    /// step's operator count is made of.</summary>
    public static IReadOnlyList<(string Name, long Calls)> TopLevelByName()
    {
        lock (_byName)
            return _byName.Select(kv => (kv.Key, kv.Value))
                .OrderByDescending(x => x.Value).ThenBy(x => x.Key, StringComparer.Ordinal).ToList();
    }

    OpCounter(ulong handle, RemoveCallback remove)
    {
        _handle = handle;
        _remove = remove;
    }

    /// <summary>Registers the callbacks (one counter at a time) and resets the counts. Only ops on the calling thread's
    /// dispatcher calls are depth-tracked per thread; the CPU autograd engine runs backward on the calling thread.</summary>
    public static OpCounter Start()
    {
        if (_active is not null) throw new InvalidOperationException("an OpCounter is already running");
        using (var _ = zeros(1)) { }   // make sure TorchSharp has loaded libtorch
        var lib = NativeLibrary.Load(LibTorchCpuPath());
        var add = Marshal.GetDelegateForFunctionPointer<AddGlobalCallback>(
            NativeLibrary.GetExport(lib, "_ZN2at17addGlobalCallbackENS_22RecordFunctionCallbackE"));
        var remove = Marshal.GetDelegateForFunctionPointer<RemoveCallback>(
            NativeLibrary.GetExport(lib, "_ZN2at14removeCallbackEm"));
        _name = Marshal.GetDelegateForFunctionPointer<NameFunction>(
            NativeLibrary.GetExport(lib, "_ZNK2at14RecordFunction4nameEv"));
        lock (_byName) _byName.Clear();
        var scopes = new byte[NumScopes];
        scopes[FunctionScope] = 1;
        Interlocked.Exchange(ref _all, 0);
        Interlocked.Exchange(ref _topLevel, 0);
        _depth = 0;
        var handle = add(new RecordFunctionCallback
        {
            Start = Marshal.GetFunctionPointerForDelegate(StartDelegate),
            End = Marshal.GetFunctionPointerForDelegate(EndDelegate),
            SamplingProb = 1.0,
            Scopes = scopes,
        });
        if (handle == 0) throw new InvalidOperationException("at::addGlobalCallback returned no handle");
        return _active = new OpCounter(handle, remove);
    }

    /// <summary>Counts of the ops <paramref name="body"/> runs.</summary>
    public static (long TopLevel, long All) Count(Action body)
    {
        var (t0, a0) = (TopLevel, All);
        body();
        return (TopLevel - t0, All - a0);
    }

    static IntPtr OnStart(IntPtr result, IntPtr recordFunction)
    {
        Marshal.WriteIntPtr(result, IntPtr.Zero);   // no ObserverContext
        Interlocked.Increment(ref _all);
        if (_depth++ == 0)
        {
            Interlocked.Increment(ref _topLevel);
            var name = Marshal.PtrToStringUTF8(_name!(recordFunction)) ?? "?";
            lock (_byName) _byName[name] = _byName.GetValueOrDefault(name) + 1;
        }
        return result;
    }

    static void OnEnd(IntPtr recordFunction, IntPtr context)
    {
        if (_depth > 0) _depth--;
    }

    static string LibTorchCpuPath()
    {
        foreach (ProcessModule m in Process.GetCurrentProcess().Modules)
            if (Path.GetFileName(m.FileName).StartsWith("libtorch_cpu.", StringComparison.Ordinal)) return m.FileName;
        throw new InvalidOperationException("libtorch_cpu is not loaded in this process");
    }

    public void Dispose()
    {
        if (_handle == 0) return;
        _remove(_handle);
        _handle = 0;
        _active = null;
    }
}
