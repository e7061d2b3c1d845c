using Qwen35.Export.Gguf;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.SafeTensors;
using Qwen35.Tests;
using static TorchSharp.torch;

namespace Qwen35.Export.Tests;

/// <summary>
/// The streamed export (`trainer gguf --model DIR`: tensor by tensor from the safetensors, the adapter merged per
/// weight) against the in-memory export of the loaded model with the adapter attached (<see cref="GgufModelExport"/>,
/// whose files llama.cpp runs within the golden bounds, GoldenGgufTests): the same bytes, for the golden model and the
/// golden adapter, in every storage type, from a single file and from a sharded checkpoint, whole and in row blocks.
/// </summary>
public class GgufStreamedExportTests
{
    const string Name = "qwen35-tiny-a";
    static string GoldenAdapter => Path.Combine(TestPaths.GoldenTiny, "adapter");

    static string InMemory(GgufType type, bool adapter, ScalarType dtype = ScalarType.Float32)
    {
        var path = Path.Combine(TestPaths.TempDir(), "in-memory.gguf");
        var (model, _) = Qwen35ForCausalLM.FromPretrained(TestPaths.GoldenTiny, dtype, CPU);
        using (model)
        {
            if (adapter) LoraInjector.LoadAdapter(model, GoldenAdapter);
            GgufModelExport.Export(model, path, type, Name);
        }
        return path;
    }

    static string Streamed(string modelDir, GgufType type, bool adapter, ScalarType dtype = ScalarType.Float32,
        long rowBlockBytes = GgufStreamedExport.DefaultRowBlockBytes)
    {
        var path = Path.Combine(TestPaths.TempDir(), "streamed.gguf");
        var result = GgufStreamedExport.Export(modelDir, adapter ? GoldenAdapter : null, path, type, Name, dtype, rowBlockBytes: rowBlockBytes);
        Assert.That(result.File.MergedAdapters, Is.EqualTo(adapter ? 11 : 0), "modules merged");
        return path;
    }

    /// <summary>The two files byte for byte; on a difference, names the tensors that differ.</summary>
    static void AssertSameBytes(string actual, string expected)
    {
        if (File.ReadAllBytes(actual).AsSpan().SequenceEqual(File.ReadAllBytes(expected))) return;
        var a = GgufReader.Open(actual);
        var e = GgufReader.Open(expected);
        Assert.That(a.Tensors.Select(t => $"{t.Name} {t.Type} @{t.Offset}"), Is.EqualTo(e.Tensors.Select(t => $"{t.Name} {t.Type} @{t.Offset}")), "tensor table");
        var differ = e.Tensors.Where(t => !a.Bytes(t.Name).AsSpan().SequenceEqual(e.Bytes(t.Name))).Select(t => t.Name).ToList();
        Assert.Fail($"{actual} differs from {expected}: " + (differ.Count == 0 ? "in the metadata" : $"tensors {string.Join(", ", differ)}"));
    }

    [TestCase(GgufType.F32, false)]
    [TestCase(GgufType.F16, false)]
    [TestCase(GgufType.Bf16, false)]
    [TestCase(GgufType.Q8_0, false)]
    [TestCase(GgufType.F32, true)]
    [TestCase(GgufType.Q8_0, true)]
    public void Streamed_export_is_byte_identical_to_the_in_memory_export(GgufType type, bool adapter)
    {
        var expected = InMemory(type, adapter);
        AssertSameBytes(Streamed(TestPaths.GoldenTiny, type, adapter), expected);
        // Row blocks of ~4 KiB: the embedding and lm_head (512 x 64) and the MLP / projection matrices the adapter does
        // not touch go through the row-block path, 16 rows at a time.
        AssertSameBytes(Streamed(TestPaths.GoldenTiny, type, adapter, rowBlockBytes: 4096), expected);
    }

    [Test]
    public void Streamed_export_with_dtype_bf16_is_byte_identical_to_the_in_memory_export_of_the_bf16_model()
    {
        // --dtype bf16: the loader rounds the weights to bf16 (A_log, dt_bias, the gated norm stay fp32) and the merge
        // rounds W + s·B·A to bf16 once; the streamed export must do the same, in the same order.
        var expected = InMemory(GgufType.F32, adapter: true, ScalarType.BFloat16);
        Assert.That(File.ReadAllBytes(expected), Is.Not.EqualTo(File.ReadAllBytes(InMemory(GgufType.F32, adapter: true))).AsCollection, "bf16 loading changes the values");
        AssertSameBytes(Streamed(TestPaths.GoldenTiny, GgufType.F32, adapter: true, ScalarType.BFloat16), expected);
    }

    [Test]
    public void Sharded_checkpoint_with_an_index_gives_the_same_bytes_as_the_single_file()
    {
        // The golden checkpoint (model.language_model.*, lm_head, model.visual.*) re-written as shards of ~64 KB with
        // model.safetensors.index.json; its MTP and vision tensors must be left out.
        var dir = Path.Combine(TestPaths.TempDir(), Name);
        Directory.CreateDirectory(dir);
        File.Copy(Path.Combine(TestPaths.GoldenTiny, "config.json"), Path.Combine(dir, "config.json"));
        using (var source = SafeTensorsCheckpoint.Open(TestPaths.GoldenTiny))
        using (var scope = NewDisposeScope())
        {
            var tensors = source.Names.Select(n => (n, source.Load(n))).ToList();
            var files = SafeTensorsWriter.WriteSharded(dir, tensors, maxShardBytes: 64 * 1024);
            Assert.That(files.Count(f => f.EndsWith(".safetensors", StringComparison.Ordinal)), Is.GreaterThan(3), "shards");
        }
        Assert.That(File.Exists(Path.Combine(dir, SafeTensorsCheckpoint.IndexFileName)));

        var path = Path.Combine(TestPaths.TempDir(), "sharded.gguf");
        var result = GgufStreamedExport.Export(dir, GoldenAdapter, path, GgufType.Q8_0, Name, ScalarType.Float32);
        AssertSameBytes(path, InMemory(GgufType.Q8_0, adapter: true));
        Assert.That(result.Skipped["mtp."], Is.GreaterThan(0));
        Assert.That(result.Skipped["model.visual."], Is.GreaterThan(0));
    }

    [Test]
    public void Trainer_gguf_on_a_model_folder_streams_and_logs_the_left_out_tensors()
    {
        var path = Path.Combine(TestPaths.TempDir(), "cli.gguf");
        var (code, stdout, stderr) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", GoldenAdapter, "--out", path, "--type", "q8_0");
        Assert.That(code, Is.EqualTo(0), stderr);
        Assert.That(stderr, Does.Contain("streaming"));
        Assert.That(stderr, Does.Contain("model.visual.* tensors"));
        Assert.That(stdout, Does.Contain("11 adapters from"));
        AssertSameBytes(path, InMemory(GgufType.Q8_0, adapter: true));
    }

    [Test]
    public void Adapter_module_the_model_lacks_is_exit_2_naming_the_key_and_writes_nothing()
    {
        // The golden adapter's keys renamed to a layer the 4-layer model does not have.
        var adapter = GgufFiles.GoldenAdapterWith("layer-9", _ => { });
        var weights = Path.Combine(adapter, PeftAdapter.WeightsFileName);
        using (var peft = PeftAdapter.Load(GoldenAdapter))
        {
            var tensors = peft.Modules.SelectMany(m => new[] { (m.KeyA.Replace(".layers.1.", ".layers.9."), m.A), (m.KeyB.Replace(".layers.1.", ".layers.9."), m.B) })
                .OrderBy(t => t.Item1, StringComparer.Ordinal).ToList();
            SafeTensorsWriter.Write(weights, tensors, SafeTensorsWriter.DefaultMetadata);
        }
        var dir = TestPaths.TempDir();
        var (code, _, err) = GgufFiles.Run("gguf", "--model", TestPaths.GoldenTiny, "--adapter", adapter, "--out", Path.Combine(dir, "a.gguf"));
        Assert.That(code, Is.EqualTo(2), err);
        // One error line (the log line before it says what was being streamed, as the in-memory path logs its load).
        var errors = err.Split('\n').Where(l => l.StartsWith("gguf: error:", StringComparison.Ordinal)).ToList();
        Assert.That(errors, Has.Count.EqualTo(1), err);
        Assert.That(errors[0], Does.Contain($"{weights}: key \"base_model.model.model.language_model.layers.9."));
        Assert.That(errors[0], Does.Contain("which this model does not have"));
        Assert.That(Directory.GetFiles(dir), Is.Empty);
    }

    [Test]
    public void ReadRows_reads_the_same_values_as_the_memory_mapped_view()
    {
        using var file = SafeTensorsFile.Open(Path.Combine(TestPaths.GoldenTiny, "model.safetensors"));
        const string name = "model.language_model.embed_tokens.weight";
        using var all = file.Load(name);
        using var rows = file.ReadRows(name, 100, 37);
        using var whole = file.Read(name);
        Assert.That(rows.shape, Is.EqualTo(new long[] { 37, 64 }));
        Assert.That(rows.data<float>().ToArray(), Is.EqualTo(all.narrow(0, 100, 37).contiguous().data<float>().ToArray()));
        Assert.That(whole.data<float>().ToArray(), Is.EqualTo(all.contiguous().data<float>().ToArray()));
        Assert.Throws<ArgumentOutOfRangeException>(() => file.ReadRows(name, 500, 13));
    }
}
