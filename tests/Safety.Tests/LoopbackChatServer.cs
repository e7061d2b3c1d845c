using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Qwen35.Safety.Tests;

/// <summary>One request the server received: path, headers (lower-case names) and the JSON body.</summary>
sealed record RecordedRequest(string Method, string Path, IReadOnlyDictionary<string, string> Headers, JsonObject Body)
{
    public string Model => Body["model"]!.GetValue<string>();

    /// <summary>The text of the last message (the user's question, or the judge prompt).</summary>
    public string LastMessage => Body["messages"]!.AsArray()[^1]!["content"]!.GetValue<string>();
}

/// <summary>What the server answers: a status, a body and extra headers.</summary>
sealed record Reply(int Status, string Body, params (string Name, string Value)[] Headers)
{
    /// <summary>A chat-completions answer holding <paramref name="text"/>.</summary>
    public static Reply Completion(string text, string model = "m") => new(200, new JsonObject
    {
        ["id"] = "chatcmpl-1",
        ["object"] = "chat.completion",
        ["created"] = 1,
        ["model"] = model,
        ["choices"] = new JsonArray(new JsonObject
        {
            ["index"] = 0,
            ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = text },
            ["finish_reason"] = "stop",
        }),
        ["usage"] = new JsonObject { ["prompt_tokens"] = 1, ["completion_tokens"] = 1, ["total_tokens"] = 2 },
    }.ToJsonString());

    public static Reply Error(int status, string message) =>
        new(status, new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = "test" } }.ToJsonString(), ("Retry-After", "0"));
}

/// <summary>
/// A chat-completions server on 127.0.0.1 (a free port), speaking just enough HTTP/1.1 for the OpenAI client:
/// keep-alive connections, Content-Length or chunked request bodies, JSON answers from <c>handler</c>. Every request
/// is recorded in arrival order. Nothing leaves the loopback interface.
/// </summary>
sealed class LoopbackChatServer : IDisposable
{
    readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    readonly Func<RecordedRequest, Reply> _handler;
    readonly CancellationTokenSource _stop = new();
    readonly List<RecordedRequest> _requests = [];

    public LoopbackChatServer(Func<RecordedRequest, Reply> handler)
    {
        _handler = handler;
        _listener.Start();
        _ = Task.Run(AcceptLoop);
    }

    public Uri BaseUrl => new($"http://127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}/v1");

    public IReadOnlyList<RecordedRequest> Requests { get { lock (_requests) return _requests.ToList(); } }

    async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try { client = await _listener.AcceptTcpClientAsync(_stop.Token); }
            catch (Exception) { return; }
            _ = Task.Run(() => Serve(client));
        }
    }

    async Task Serve(TcpClient client)
    {
        using var _ = client;
        var stream = client.GetStream();
        var reader = new ByteReader(stream);
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var requestLine = await reader.ReadLine();
                if (requestLine is null) return;
                if (requestLine.Length == 0) continue;
                var parts = requestLine.Split(' ');
                var headers = new Dictionary<string, string>();
                for (var line = await reader.ReadLine(); !string.IsNullOrEmpty(line); line = await reader.ReadLine())
                {
                    var colon = line.IndexOf(':');
                    headers[line[..colon].Trim().ToLowerInvariant()] = line[(colon + 1)..].Trim();
                }
                byte[] body;
                if (headers.TryGetValue("content-length", out var length)) body = await reader.ReadBytes(int.Parse(length));
                else if (headers.GetValueOrDefault("transfer-encoding") == "chunked")
                {
                    var ms = new MemoryStream();
                    while (true)
                    {
                        var size = Convert.ToInt32((await reader.ReadLine())!.Split(';')[0], 16);
                        if (size == 0) { await reader.ReadLine(); break; }
                        ms.Write(await reader.ReadBytes(size));
                        await reader.ReadLine();
                    }
                    body = ms.ToArray();
                }
                else body = [];
                var request = new RecordedRequest(parts[0], parts[1], headers, JsonNode.Parse(body)!.AsObject());
                lock (_requests) _requests.Add(request);
                Reply reply;
                try { reply = _handler(request); }
                catch (Exception e) { reply = Reply.Error(500, $"test handler failed: {e.Message}"); }
                var payload = Encoding.UTF8.GetBytes(reply.Body);
                var head = new StringBuilder($"HTTP/1.1 {reply.Status} {(reply.Status == 200 ? "OK" : "Error")}\r\n")
                    .Append("Content-Type: application/json\r\n")
                    .Append($"Content-Length: {payload.Length}\r\n");
                foreach (var (name, value) in reply.Headers) head.Append($"{name}: {value}\r\n");
                head.Append("\r\n");
                await stream.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()));
                await stream.WriteAsync(payload);
                await stream.FlushAsync();
            }
        }
        // The client closed the connection, or the test disposed the server: this connection is over, nothing to report
        // (what the client saw is what the tests assert).
        catch (IOException) { }
        catch (ObjectDisposedException) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _stop.Dispose();
    }

    /// <summary>Reads CRLF lines and exact byte counts from a stream.</summary>
    sealed class ByteReader(Stream stream)
    {
        readonly byte[] _buffer = new byte[8192];
        int _start, _end;

        async Task<bool> Fill()
        {
            if (_start > 0) { Array.Copy(_buffer, _start, _buffer, 0, _end - _start); _end -= _start; _start = 0; }
            var n = await stream.ReadAsync(_buffer.AsMemory(_end));
            _end += n;
            return n > 0;
        }

        public async Task<string?> ReadLine()
        {
            var line = new MemoryStream();
            while (true)
            {
                for (; _start < _end; _start++)
                {
                    if (_buffer[_start] == '\n')
                    {
                        _start++;
                        var bytes = line.ToArray();
                        var n = bytes.Length > 0 && bytes[^1] == '\r' ? bytes.Length - 1 : bytes.Length;
                        return Encoding.ASCII.GetString(bytes, 0, n);
                    }
                    line.WriteByte(_buffer[_start]);
                }
                if (!await Fill()) return line.Length == 0 ? null : Encoding.ASCII.GetString(line.ToArray());
            }
        }

        public async Task<byte[]> ReadBytes(int count)
        {
            var result = new byte[count];
            var got = 0;
            while (got < count)
            {
                if (_start == _end && !await Fill()) throw new IOException("connection closed mid-body");
                var n = Math.Min(count - got, _end - _start);
                Array.Copy(_buffer, _start, result, got, n);
                _start += n;
                got += n;
            }
            return result;
        }
    }
}
