namespace Qwen35;

/// <summary>
/// Something the user gave is wrong: a file, a row, a recipe key, a command-line option. The message is one line that
/// starts with where (the file and its line, row or key; or the option) and says in words what is wrong, so the CLI
/// prints it as it is and exits 2. Everything else that escapes a verb is a bug or an environment failure (exit 3).
/// Every bad-input exception of the libraries derives from this type; that is the whole error policy's contract.
/// </summary>
public class UserInputException : Exception
{
    public UserInputException(string message) : base(message) { }

    public UserInputException(string message, Exception? inner) : base(message, inner) { }
}
