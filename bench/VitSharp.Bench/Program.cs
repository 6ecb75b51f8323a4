using System.Reflection;

namespace VitSharp.Bench;

/// <summary>One benchmark: a name on the command line and a body. Each lives in its own file; Program finds them all.</summary>
public interface IBench
{
    string Name { get; }
    string Description { get; }
    int Run(string[] args);
}

public static class Program
{
    public static int Main(string[] args)
    {
        var benches = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(IBench).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (IBench)Activator.CreateInstance(t)!)
            .OrderBy(b => b.Name)
            .ToList();
        var bench = args.Length > 0 ? benches.FirstOrDefault(b => b.Name == args[0]) : null;
        if (bench is null)
        {
            Console.WriteLine("usage: dotnet run --project bench/VitSharp.Bench -c Release -- <bench> [options]");
            foreach (var b in benches) Console.WriteLine($"  {b.Name,-12} {b.Description}");
            return args.Length == 0 ? 0 : 2;
        }
        return bench.Run(args[1..]);
    }
}
