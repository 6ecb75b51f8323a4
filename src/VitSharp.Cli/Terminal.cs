using Spectre.Console;

namespace VitSharp.Cli;

/// <summary>
/// Where output goes and how it looks: colours, markup and live progress only when stdout is a terminal and
/// <c>NO_COLOR</c> is unset (https://no-color.org); otherwise plain lines, never wrapped to a console width.
/// </summary>
public static class Terminal
{
    /// <summary>The rule: colour only on a terminal, and not when NO_COLOR is set to anything non-empty.</summary>
    public static bool ColourFor(bool outputRedirected, string? noColor) => !outputRedirected && string.IsNullOrEmpty(noColor);

    public static bool Colour => ColourFor(Console.IsOutputRedirected, Environment.GetEnvironmentVariable("NO_COLOR"));

    /// <summary>A Spectre console on the current <see cref="Console.Out"/> that follows <see cref="Colour"/>.</summary>
    public static IAnsiConsole Create()
    {
        bool colour = Colour;
        var c = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Out),
            Ansi = colour ? AnsiSupport.Detect : AnsiSupport.No,
            ColorSystem = colour ? ColorSystemSupport.Detect : ColorSystemSupport.NoColors,
            Interactive = colour ? InteractionSupport.Detect : InteractionSupport.No,
        });
        if (!colour) c.Profile.Width = 4096; // a log has no width: do not wrap lines or JSON
        return c;
    }

    /// <summary>A line: with its markup on a terminal, as plain text otherwise.</summary>
    public static void Line(IAnsiConsole console, string markup)
    {
        if (console.Profile.Capabilities.Ansi) console.MarkupLine(markup);
        else Console.WriteLine(Markup.Remove(markup));
    }
}
