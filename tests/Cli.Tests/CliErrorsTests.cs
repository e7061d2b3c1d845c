using Qwen35.Cli.Commands;
using Qwen35.Tests;

namespace Qwen35.Cli.Tests;

/// <summary>The one error policy: user errors exit 2 in one line, anything else exits 3 with the trace in a file.</summary>
public class CliErrorsTests
{
    [Test]
    public void UserInputExceptionIsOneLineAndExitTwo()
    {
        var stderr = new StringWriter();
        var code = CliErrors.Run("verb", stderr, () => throw new UserInputException("data.jsonl line 3: messages: bad\nmore"));
        Assert.That(code, Is.EqualTo(2));
        Assert.That(stderr.ToString(), Is.EqualTo("verb: error: data.jsonl line 3: messages: bad; more" + Environment.NewLine));
    }

    [Test]
    public void UnexpectedExceptionExitsThreeWithTheTraceInTheLogFolder()
    {
        var dir = TestPaths.TempDir("qwen35-errors");
        var stderr = new StringWriter();
        var code = CliErrors.Run("verb", stderr, () => throw new InvalidOperationException("boom"), logDir: () => dir);
        Assert.That(code, Is.EqualTo(3));
        var line = stderr.ToString().Trim();
        Assert.That(line, Does.StartWith("verb: failed: InvalidOperationException: boom (stack trace in " + dir));
        Assert.That(line.Split('\n'), Has.Length.EqualTo(1), "no trace on the terminal");
        var log = Directory.GetFiles(dir, "verb-error-*.log").Single();
        Assert.That(File.ReadAllText(log), Does.Contain("InvalidOperationException: boom").And.Contain(nameof(UnexpectedExceptionExitsThreeWithTheTraceInTheLogFolder)));
    }
}
