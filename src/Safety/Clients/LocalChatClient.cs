using System.Runtime.CompilerServices;
using Microsoft.Extensions.AI;

namespace Qwen35.Safety.Clients;

/// <summary>The <see cref="IChatClient"/> members the two local clients (<see cref="TrainerChatClient"/>,
/// <see cref="LlamaGgufChatClient"/>) answer alike.</summary>
static class LocalChatClient
{
    /// <summary>The whole answer as one update: a local generation hands no token stream on.</summary>
    public static async IAsyncEnumerable<ChatResponseUpdate> WholeAnswer(IChatClient client, IEnumerable<ChatMessage> messages,
        ChatOptions? options, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var response = await client.GetResponseAsync(messages, options, cancellationToken).ConfigureAwait(false);
        foreach (var update in response.ToChatResponseUpdates()) yield return update;
    }

    /// <summary><see cref="IChatClient.GetService"/>: the metadata, the client itself, or one of the objects it is
    /// built on (<paramref name="parts"/>), whichever is of <paramref name="serviceType"/>; nothing for a keyed request.</summary>
    public static object? Service(IChatClient client, ChatClientMetadata metadata, Type serviceType, object? serviceKey, params object[] parts)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(ChatClientMetadata)) return metadata;
        if (serviceType.IsInstanceOfType(client)) return client;
        return parts.FirstOrDefault(serviceType.IsInstanceOfType);
    }
}
