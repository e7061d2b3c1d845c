using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Qwen35.Models.Modules;

/// <summary>
/// <c>embed_tokens</c>: a [V, h] table looked up by id. Own module (not nn.Embedding) so the table is allocated
/// uninitialised in the target dtype/device and only filled once, by the loader or the random initialiser.
/// </summary>
public sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    public Parameter weight;

    public TokenEmbedding(int vocab, int hidden, ScalarType dtype, Device? device) : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(empty(vocab, hidden, dtype: dtype, device: device), requires_grad: false);
        RegisterComponents();
    }

    /// <param name="ids">int64 [B, T]</param>
    /// <returns>[B, T, h]</returns>
    public override Tensor forward(Tensor ids)
    {
        using var scope = NewDisposeScope();
        var flat = weight.index_select(0, ids.reshape(-1));
        return flat.reshape(ids.shape[0], ids.shape[1], weight.shape[1]).MoveToOuterDisposeScope();
    }
}
