using System.CommandLine;

namespace Qwen35.Cli.Tests;

/// <summary>Runs verbs in-process the way the `trainer` program does, capturing what they print.</summary>
static class CliRunner
{
    public static (int Code, string Out, string Err) Run(IEnumerable<Command> verbs, string[] args)
    {
        var root = new RootCommand();
        foreach (var verb in verbs) root.Subcommands.Add(verb);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = root.Parse(args).Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        return (code, stdout.ToString(), stderr.ToString());
    }
}
