namespace VitSharp.Cli;

public static class Program
{
    public static int Main(string[] args) => Commands.Build().Parse(args).Invoke();
}
