namespace VitSharp.Cli;

public static class Program
{
    public static int Main(string[] args) => CommandRegistry.Build().Parse(args).Invoke();
}
