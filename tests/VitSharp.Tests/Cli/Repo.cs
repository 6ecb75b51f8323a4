using System.Diagnostics;
using System.Reflection;
using System.Runtime.InteropServices;

namespace VitSharp.Tests.Cli;

/// <summary>The checkout these tests were built from, and child processes run against it (dotnet pack, the samples).</summary>
public static class Repo
{
    /// <summary>The repository root (the folder with VitSharp.slnx above the test binaries), or null.</summary>
    public static string? Root { get; } = FindRoot();

    private static string? FindRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "VitSharp.slnx")) && Directory.Exists(Path.Combine(d.FullName, "src", "VitSharp.Cli")))
                return d.FullName;
        return null;
    }

    public static string At(params string[] parts) =>
        Path.Combine([Root ?? throw new InvalidOperationException("not inside a VitSharp checkout"), .. parts]);

    /// <summary>Release or Debug: the configuration the tests (and so the projects they reference) were built in.</summary>
    public static string Configuration { get; } =
        typeof(Repo).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";

    /// <summary>The .NET installation running the tests (…/dotnet, above shared/Microsoft.NETCore.App/VERSION/).</summary>
    public static string DotnetRoot { get; } = Path.GetFullPath(Path.Combine(RuntimeEnvironment.GetRuntimeDirectory(), "..", "..", ".."));

    public static string Dotnet => File.Exists(Path.Combine(DotnetRoot, "dotnet")) ? Path.Combine(DotnetRoot, "dotnet") : "dotnet";

    /// <summary>Starts a process with the test host's MSBuild variables removed (a nested dotnet must not inherit
    /// the outer build's), DOTNET_ROOT set (for a tool's apphost) and <paramref name="env"/> applied (null removes).</summary>
    public static Process Start(string exe, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? env = null, string? cwd = null)
    {
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
            WorkingDirectory = cwd ?? Root ?? AppContext.BaseDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            psi.Environment.Remove(key);
        psi.Environment["DOTNET_ROOT"] = DotnetRoot;
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["DOTNET_SKIP_FIRST_TIME_EXPERIENCE"] = "1";
        psi.Environment["NO_COLOR"] = "1";
        foreach (var (k, v) in env ?? new Dictionary<string, string?>())
            if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v;
        var p = Process.Start(psi)!;
        p.StandardInput.Close();
        return p;
    }

    /// <summary>Runs a process to its end (killed, and the test failed, past <paramref name="timeout"/>).</summary>
    public static (int code, string stdout, string stderr) Run(string exe, IEnumerable<string> args, TimeSpan timeout,
        IReadOnlyDictionary<string, string?>? env = null, string? cwd = null)
    {
        var argList = args.ToList();
        using var p = Start(exe, argList, env, cwd);
        var o = p.StandardOutput.ReadToEndAsync();
        var e = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(timeout))
        {
            p.Kill(entireProcessTree: true);
            throw new Xunit.Sdk.XunitException($"{exe} {string.Join(' ', argList)} ran past {timeout.TotalSeconds:F0} s");
        }
        p.WaitForExit();
        return (p.ExitCode, o.Result, e.Result);
    }
}

/// <summary>A fact that needs the repository checkout above the test binaries (sources, samples, models).</summary>
public sealed class RepoFactAttribute : FactAttribute
{
    public RepoFactAttribute()
    {
        if (Repo.Root is null) Skip = "needs the VitSharp checkout (VitSharp.slnx) above the test binaries";
    }
}
