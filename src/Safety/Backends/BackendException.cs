namespace Qwen35.Safety.Backends;

/// <summary>A backend that cannot be reached, answers with server errors until the retries run out, or never stops
/// rate-limiting: the message names the backend (its flag and address) and what happened, in one line. A user fixes it
/// (start the server, fix the URL or key), so it is bad input (exit 2), not a crash.</summary>
public sealed class BackendException(string message, Exception? inner = null) : UserInputException(message, inner);
