using Qwen35.Data.Preference;
using Qwen35.Lora;
using Qwen35.Models;
using Qwen35.Models.Config;
using TorchSharp;
using static TorchSharp.torch;

namespace Qwen35.Training.Tests.Dpo;

/// <summary>Synthetic preference pairs and a tiny model with LoRA for the DPO tests (no tokenizer involved).</summary>
static class DpoFixtures
{
    /// <summary>Pairs of random token ids with the given prompt / chosen / rejected lengths.</summary>
    public static List<TokenizedPair> Pairs(long seed, params (int Prompt, int Chosen, int Rejected)[] lengths)
    {
        var rng = new Random((int)seed);
        int[] Ids(int n) => Enumerable.Range(0, n).Select(_ => rng.Next(3, 300)).ToArray();
        return lengths.Select((l, i) => new TokenizedPair($"p{i}", i % 2 == 0 ? "refusal" : "helpful", Ids(l.Prompt), Ids(l.Chosen), Ids(l.Rejected),
            "synthetic.jsonl", i + 1)).ToList();
    }

    /// <summary>The tiny model with LoRA on every targeted projection; B drawn at random (not PEFT's zero) so that the
    /// policy differs from the base model and A gets gradients too.</summary>
    public static Qwen35ForCausalLM Model(long seed = 3)
    {
        var model = Qwen35ForCausalLM.CreateRandom(Qwen35TextConfig.Tiny() with { InitializerRange = 0.1 }, seed);
        LoraInjector.Apply(model, new LoraOptions { Rank = 4, Alpha = 8 }, seed);
        using var g = new Generator((ulong)seed + 1);
        using (no_grad())
            foreach (var a in LoraInjector.Adapters(model))
                a.LoraB.weight.copy_(randn(a.LoraB.weight.shape, generator: g).mul(0.05));
        return model;
    }

    public static List<Tensor> Grads(Qwen35ForCausalLM model) =>
        LoraInjector.Parameters(model).Select(p => p.grad is null ? zeros_like(p) : p.grad.clone()).ToList();

    public static void ZeroGrads(Qwen35ForCausalLM model)
    {
        foreach (var p in LoraInjector.Parameters(model)) p.grad?.zero_();
    }

    /// <summary>
    /// The independent computation: each sequence (prompt + completion) through a plain forward of its own, one row,
    /// no padding and no documents; full-vocabulary log-softmax; the completion tokens' log-probs summed. Carries the
    /// graph (call without no_grad for gradients).
    /// </summary>
    public static Tensor PlainSequenceLogp(Qwen35ForCausalLM model, int[] prompt, int[] completion)
    {
        long[] ids = [.. prompt.Select(x => (long)x), .. completion.Select(x => (long)x)];
        var input = tensor(ids, [1, ids.Length]);
        var logits = model.Logits(model.Forward(new ModelInputs(input))).to(ScalarType.Float64);   // [1, T, V]
        var logp = logits.log_softmax(-1)[0];                                                     // [T, V]
        // Position t predicts token t+1: the completion's tokens are predicted from positions P-1 .. T-2.
        var positions = arange(prompt.Length - 1, ids.Length - 1, dtype: ScalarType.Int64);
        var targets = tensor(completion.Select(x => (long)x).ToArray());
        return logp.index_select(0, positions).gather(1, targets.unsqueeze(1)).sum();
    }
}
