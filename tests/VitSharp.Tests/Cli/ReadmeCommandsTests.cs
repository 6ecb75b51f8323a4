using VitSharp.Cli;

namespace VitSharp.Tests.Cli;

/// <summary>README's "One example of each": every command (hidden ones too) has exactly one example there, and each
/// example parses with the real command line (option names, required options, values).</summary>
public class ReadmeCommandsTests
{
    [RepoFact]
    public void EveryCommandHasOneExampleThatParses()
    {
        var readme = File.ReadAllText(Repo.At("README.md"));
        int at = readme.IndexOf("One example of each", StringComparison.Ordinal);
        Assert.True(at >= 0, "README has no \"One example of each\" block");
        int open = readme.IndexOf("```bash\n", at, StringComparison.Ordinal) + "```bash\n".Length;
        var examples = readme[open..readme.IndexOf("```", open, StringComparison.Ordinal)]
            .Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(l => l.Split(['#', '&'])[0].Trim()) // the comment, and what runs beside it (curl)
            .ToList();
        Assert.All(examples, e => Assert.StartsWith("vit ", e));

        var root = CommandRegistry.Build();
        foreach (var command in root.Subcommands)
        {
            var mine = examples.Where(e => e.Split(' ')[1] == command.Name).ToList();
            Assert.True(mine.Count == 1, $"README has {mine.Count} examples of `vit {command.Name}`");
            var args = mine[0].Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..];
            var parse = root.Parse(args);
            Assert.True(parse.Errors.Count == 0, $"`{mine[0]}`: {string.Join("; ", parse.Errors.Select(x => x.Message))}");
        }
        Assert.Equal(root.Subcommands.Count, examples.Count);
    }
}
