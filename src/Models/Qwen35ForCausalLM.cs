using Qwen35.Models.Config;
using Qwen35.Models.Modules;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models;

/// <summary>
/// The Qwen3.5 dense text model with its LM head. The module tree spells the published checkpoint keys
/// (<c>model.language_model.…</c>, <c>lm_head.weight</c>), so weights load by name with no mapping table and LoRA
/// targets are found by HF names. With tied embeddings there is no <c>lm_head</c> parameter: the head reuses
/// <c>embed_tokens.weight</c>.
/// </summary>
public sealed partial class Qwen35ForCausalLM : nn.Module<ModelInputs, Tensor>
{
    public Qwen35Model model;
    public Projection? lm_head;

    public Qwen35ForCausalLM(Qwen35TextConfig config, ScalarType dtype = ScalarType.Float32, Device? device = null)
        : base(nameof(Qwen35ForCausalLM))
    {
        Config = config;
        Dtype = dtype;
        Device = device ?? CPU;
        model = new Qwen35Model(config, dtype, Device);
        if (!config.TieWordEmbeddings) lm_head = new Projection(config.HiddenSize, config.VocabSize, dtype, Device);
        RegisterComponents();
    }

    public Qwen35TextConfig Config { get; }

    /// <summary>Activation / weight dtype (A_log, dt_bias and linear_attn.norm.weight are fp32 regardless).</summary>
    public ScalarType Dtype { get; }

    public Device Device { get; }

    /// <summary>The text decoder, <c>model.language_model</c>.</summary>
    public Qwen35TextModel TextModel => model.language_model;

    /// <summary>The LM head matrix [V, h]: <c>lm_head.weight</c>, or <c>embed_tokens.weight</c> when tied.</summary>
    public Tensor LmHeadWeight => lm_head?.weight ?? model.language_model.embed_tokens.weight;

    public bool IsTied => lm_head is null;

    /// <summary>Final-normed hidden states [B, T, h] (input of the LM head).</summary>
    public Tensor Forward(ModelInputs inputs) => model.language_model.Forward(inputs, null);

    public override Tensor forward(ModelInputs inputs) => Forward(inputs);

    /// <summary>
    /// Training's forward + backward: the decoder runs (optionally with per-layer activation checkpointing, see
    /// <see cref="TrainingForward"/>), <paramref name="headLossBackward"/> turns the final-normed hidden states
    /// [B, T, h] into a loss and back-propagates it into them (the LM head is <see cref="LmHeadWeight"/>), and the
    /// gradient flows on through the layers. Returns what <paramref name="headLossBackward"/> returned.
    /// </summary>
    public Tensor ForwardBackward(ModelInputs inputs, Func<Tensor, Tensor> headLossBackward, TrainingForward options) =>
        model.language_model.ForwardBackward(inputs, headLossBackward, options);

    /// <summary>Logits [.., V] in the model dtype (HF too; losses upcast to fp32).</summary>
    public Tensor Logits(Tensor hidden) =>
        lm_head is not null ? lm_head.forward(hidden) : nn.functional.linear(hidden, LmHeadWeight);

    /// <summary>Positions whose logits <see cref="SequenceLosses"/> materialises at once.</summary>
    const long ScoreChunk = 512;

    /// <summary>
    /// Mean next-token cross-entropy of each row in fp32 (HF ForCausalLMLoss with labels = input ids): position t
    /// predicts token t+1; with an attention mask only pairs where both tokens are real count (so right and left
    /// padding both give the unpadded losses).
    /// </summary>
    public float[] SequenceLosses(Tensor inputIds, Tensor? attentionMask = null)
    {
        if (inputIds.shape[1] < 2) throw new ArgumentException("SequenceLosses needs at least two tokens per row");
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        long b = inputIds.shape[0], t = inputIds.shape[1];
        var hidden = Forward(new ModelInputs(inputIds, attentionMask));
        // −log_softmax at the target = logsumexp − target logit, in chunks of positions so that only one chunk of
        // fp32 logits exists at a time (~1 MB per position at Qwen's 248K vocabulary; a 4K-token score would
        // otherwise hold 4 GB of logits plus as much again for log_softmax).
        var parts = new List<Tensor>();
        for (long start = 0; start < t - 1; start += ScoreChunk)
        {
            var len = Math.Min(ScoreChunk, t - 1 - start);
            var logits = Logits(hidden.narrow(1, start, len)).to(ScalarType.Float32);          // [B, c, V]
            var target = inputIds.narrow(1, start + 1, len).unsqueeze(-1);
            parts.Add(logits.logsumexp(-1) - logits.gather(-1, target).squeeze(-1));          // [B, c]
        }
        var nll = parts.Count == 1 ? parts[0] : cat(parts, 1);                               // [B, T-1]
        var weight = attentionMask is null
            ? ones_like(nll)
            : (attentionMask.narrow(1, 0, t - 1) * attentionMask.narrow(1, 1, t - 1)).to(ScalarType.Float32);
        var losses = (nll * weight).sum(1) / weight.sum(1).clamp_min(1);
        return losses.cpu().data<float>().ToArray();
    }
}
