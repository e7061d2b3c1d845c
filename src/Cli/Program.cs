using System.CommandLine;
using Qwen35.Cli.Commands;

// The `trainer` program: thin verbs over the libraries. Logs go to stderr, results to stdout.
Qwen35.Models.Runtime.TorchSharpNativePatch.EnsureApplied();

var root = new RootCommand("Qwen3.5 LoRA trainer: fine-tune Qwen3.5 models with LoRA and export PEFT adapters.");
// Each verb lives in its own file under Commands/ and adds itself here.
foreach (var command in CommandRegistry.All()) root.Subcommands.Add(command);
// `train` is the default verb: `trainer --recipe tiny` trains without naming it.
TrainCommand.AttachToRoot(root);
return root.Parse(args).Invoke();
