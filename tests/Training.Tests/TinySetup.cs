using Qwen35.Models;
using Qwen35.Models.Config;
using Qwen35.Training.Loop;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests;

/// <summary>Tiny models and synthetic micro-batches for loop tests (no tokenizer or dataset involved).</summary>
static class TinySetup
{
    /// <summary>The tiny Qwen3.5 model with the projections of some layers made trainable (a stand-in for LoRA
    /// parameters: the loop only cares which parameters require grad).</summary>
    public static (Qwen35ForCausalLM Model, List<(string Name, Parameter Param)> Trainable) Model(long seed = 1)
    {
        var model = Qwen35ForCausalLM.CreateRandom(Qwen35TextConfig.Tiny(), seed);
        var trainable = new List<(string, Parameter)>();
        foreach (var (name, p) in model.named_parameters())
        {
            var train = name.Contains(".layers.") && (name.EndsWith("q_proj.weight") || name.EndsWith("in_proj_qkv.weight")
                                                     || name.EndsWith("down_proj.weight") || name.EndsWith("o_proj.weight"));
            p.requires_grad_(train);
            if (train) trainable.Add((name, p));
        }
        return (model, trainable);
    }

    /// <summary>One micro-batch of random tokens: each row trains on its last <c>trained[r]</c> tokens and is
    /// right-padded to the longest row.</summary>
    public static MicroBatch Batch(Generator g, int[] lengths, int[] trained, long[]? categories = null)
    {
        var rows = lengths.Length;
        var length = lengths.Max();
        var ids = new long[rows * length];
        var labels = new long[rows * length];
        var mask = new long[rows * length];
        var cats = new long[rows * length];
        var random = randint(0, 300, [rows * length], generator: g, dtype: ScalarType.Int64).data<long>().ToArray();
        for (var r = 0; r < rows; r++)
            for (var t = 0; t < length; t++)
            {
                var i = r * length + t;
                var real = t < lengths[r];
                ids[i] = real ? random[i] : 0;
                mask[i] = real ? 1 : 0;
                labels[i] = real && t >= lengths[r] - trained[r] ? ids[i] : -100;
                cats[i] = real ? categories?[r] ?? 0 : -1;
            }
        var padded = lengths.Any(l => l != length);
        return new MicroBatch
        {
            Rows = rows, Length = length, InputIds = ids, Labels = labels,
            Documents = padded ? new PackedDocuments(lengths.Select(_ => new[] { 0 }).ToArray(), lengths) : null, CategoryIds = cats,
        };
    }

    /// <summary>A fixed list of micro-batches per epoch, reordered per epoch by a seeded permutation.</summary>
    public sealed class ListSource(IReadOnlyList<MicroBatch> batches, long seed) : IMicroBatchSource
    {
        public int Count(int epoch) => batches.Count;
        public MicroBatch Get(int epoch, int index)
        {
            var rng = new Random((int)(seed * 31 + epoch));
            return batches.OrderBy(_ => rng.Next()).ElementAt(index);
        }
    }

    public static List<Tensor> Grads(IEnumerable<(string Name, Parameter Param)> trainable) =>
        trainable.Select(p => p.Param.grad!.clone()).ToList();
}
