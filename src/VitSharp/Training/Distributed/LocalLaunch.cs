using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace VitSharp.Training.Distributed;

/// <summary>
/// <c>vit train --gpus N</c> on one host (what torchrun --nproc-per-node does): starts N processes of this executable with
/// the same arguments less <c>--gpus</c>, each with RANK = LOCAL_RANK = r, WORLD_SIZE = LOCAL_WORLD_SIZE = N,
/// MASTER_ADDR = 127.0.0.1, MASTER_PORT = a free port, and <c>--device cuda:r</c> (or <c>--device cpu</c>: N CPU ranks
/// over the <see cref="TcpCommunicator"/>, sharing the host's cores). Rank 0's stdout and stderr come through as they
/// are, other ranks' stderr with a "[rank r] " prefix (their stdout, a copy of rank 0's progress, is dropped). When a
/// rank exits with a non-zero code the others are killed and the launch fails with one line naming the rank and its
/// code; otherwise it returns rank 0's exit code.
/// </summary>
public static class LocalLaunch
{
    /// <summary>What <c>vit train --gpus N</c> asked for: the number of ranks, the device kind and the arguments each rank gets.</summary>
    public sealed class Options
    {
        /// <summary>Ranks to start (GPUs on cuda, processes on cpu).</summary>
        public required int Ranks { get; init; }
        /// <summary>The command line as given, command name first (<c>train --config c.json --gpus 2 …</c>); <c>--gpus</c>
        /// and <c>--device</c> are taken out and each rank gets its own <c>--device</c>.</summary>
        public required IReadOnlyList<string> Arguments { get; init; }
        /// <summary>The --device given: null or cuda (GPUs 0…N−1), cpu, or auto (cuda when present).</summary>
        public string? Device { get; init; }
        /// <summary>What to start (default <see cref="Self"/>): an executable and the arguments before the command's.</summary>
        public (string Executable, IReadOnlyList<string> Prefix)? Command { get; init; }
        public TextWriter? Out { get; init; }
        public TextWriter? Error { get; init; }
        /// <summary>Environment variables of this process (default: the real ones); read for RANK/WORLD_SIZE.</summary>
        public Func<string, string?>? GetEnvironment { get; init; }
    }

    /// <summary>This program as a child process: the executable itself, or for <c>dotnet vit.dll</c> dotnet and the dll.</summary>
    public static (string Executable, IReadOnlyList<string> Prefix) Self()
    {
        var exe = System.Environment.ProcessPath ?? throw new VitSharpException("--gpus: cannot tell which executable this process runs");
        if (!Path.GetFileNameWithoutExtension(exe).Equals("dotnet", StringComparison.OrdinalIgnoreCase)) return (exe, []);
        // dotnet vit.dll …: the first command-line argument is the entry assembly's path.
        var dll = System.Environment.GetCommandLineArgs() is [var first, ..] && first.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? first
            : throw new VitSharpException("--gpus: this process runs under dotnet but its entry assembly is unknown");
        return (exe, [Path.GetFullPath(dll)]);
    }

    /// <summary>The device kind every rank gets (cuda or cpu) from a --device value, or a one-line error.</summary>
    public static string DeviceKind(string? device)
    {
        var d = device?.Trim().ToLowerInvariant();
        return d switch
        {
            null or "" or "cuda" => "cuda",
            "cpu" => "cpu",
            "auto" => Backends.Cuda.CudaBackend.IsAvailable(out _) ? "cuda" : "cpu",
            _ when d.StartsWith("cuda:", StringComparison.Ordinal) =>
                throw new VitSharpException($"--gpus gives rank r the device cuda:r; pass --device cuda (or cpu), not {device}"),
            _ => throw new VitSharpException($"--gpus runs on --device cuda, cpu or auto, not '{device}'"),
        };
    }

    /// <summary>Rank <paramref name="localRank"/>'s arguments: <paramref name="args"/> without <c>--gpus</c> and
    /// <c>--device</c>/<c>-d</c> (with their values, in any of the forms <c>--x v</c>, <c>--x=v</c>, <c>--x:v</c>), then
    /// <c>--device kind:localRank</c> (cuda) or <c>--device cpu</c>.</summary>
    public static List<string> ChildArguments(IReadOnlyList<string> args, string deviceKind, int localRank)
    {
        var kept = new List<string>();
        for (int i = 0; i < args.Count; i++)
        {
            var a = args[i];
            if (a == "--") { kept.AddRange(args.Skip(i)); break; }
            bool ours = false;
            foreach (var name in (string[])["--gpus", "--device", "-d"])
            {
                if (a == name) { ours = true; i++; break; } // and its value
                if (a.StartsWith(name + "=", StringComparison.Ordinal) || a.StartsWith(name + ":", StringComparison.Ordinal)) { ours = true; break; }
            }
            if (!ours) kept.Add(a);
        }
        kept.Add("--device");
        kept.Add(deviceKind == "cpu" ? "cpu" : $"{deviceKind}:{localRank}");
        return kept;
    }

    /// <summary>The one-line errors of a launch that must not start.</summary>
    public static void Validate(int ranks, Func<string, string?> env)
    {
        if (ranks < 1) throw new VitSharpException($"--gpus must be at least 1, not {ranks}");
        if (env("RANK") is { Length: > 0 } || env("WORLD_SIZE") is { Length: > 0 })
            throw new VitSharpException("--gpus starts the ranks itself, but RANK/WORLD_SIZE are set (this process is already one rank of a job): leave out --gpus, or unset them");
    }

    /// <summary>A TCP port nobody listens on now (the OS's pick on the loopback interface).</summary>
    public static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        try { return ((IPEndPoint)l.LocalEndpoint).Port; }
        finally { l.Stop(); }
    }

    /// <summary>Starts the ranks and waits for them: rank 0's exit code, or on the first failure that rank's code (the
    /// others killed).</summary>
    public static int Run(Options o)
    {
        var env = o.GetEnvironment ?? System.Environment.GetEnvironmentVariable;
        Validate(o.Ranks, env);
        var kind = DeviceKind(o.Device);
        if (kind == "cuda" && Backends.Cuda.CudaBackend.IsAvailable(out _) && Backends.Cuda.CudaContext.DeviceCount() is var gpus && o.Ranks > gpus)
            throw new VitSharpException($"--gpus {o.Ranks}: this machine has {gpus} GPU{(gpus == 1 ? "" : "s")}");
        var (exe, prefix) = o.Command ?? Self();
        TextWriter stdout = o.Out ?? Console.Out, stderr = o.Error ?? Console.Error;
        object outGate = new(), errGate = new();
        int n = o.Ranks, port = FreePort();
        var procs = new Process?[n];
        var pumps = new List<Task>();
        void KillAll()
        {
            foreach (var p in procs)
                try { if (p is not null && !p.HasExited) p.Kill(entireProcessTree: true); }
                catch (InvalidOperationException) { } // exited meanwhile
                catch (System.ComponentModel.Win32Exception) { }
        }
        EventHandler onExit = (_, _) => KillAll(); // this process ended (SIGTERM): take the ranks along
        AppDomain.CurrentDomain.ProcessExit += onExit;
        try
        {
            for (int r = 0; r < n; r++)
            {
                var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
                foreach (var a in prefix) psi.ArgumentList.Add(a);
                foreach (var a in ChildArguments(o.Arguments, kind, r)) psi.ArgumentList.Add(a);
                psi.Environment["RANK"] = psi.Environment["LOCAL_RANK"] = r.ToString(System.Globalization.CultureInfo.InvariantCulture);
                psi.Environment["WORLD_SIZE"] = psi.Environment["LOCAL_WORLD_SIZE"] = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
                psi.Environment["MASTER_ADDR"] = "127.0.0.1";
                psi.Environment["MASTER_PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture);
                Process p;
                try { p = Process.Start(psi) ?? throw new VitSharpException($"--gpus: could not start rank {r} ({exe})"); }
                catch (System.ComponentModel.Win32Exception e) { throw new VitSharpException($"--gpus: could not start rank {r} ({exe}): {e.Message}"); }
                procs[r] = p;
                if (r == 0)
                {
                    pumps.Add(Copy(p.StandardOutput, stdout, outGate));
                    pumps.Add(Copy(p.StandardError, stderr, errGate));
                }
                else
                {
                    pumps.Add(p.StandardOutput.BaseStream.CopyToAsync(Stream.Null));
                    pumps.Add(Prefixed(p.StandardError, stderr, errGate, $"[rank {r}] "));
                }
            }

            var waits = procs.Select(p => p!.WaitForExitAsync()).ToList();
            var running = Enumerable.Range(0, n).ToList();
            while (running.Count > 0)
            {
                int i = Task.WaitAny(running.Select(r => waits[r]).ToArray());
                int rank = running[i];
                running.RemoveAt(i);
                int code = procs[rank]!.ExitCode;
                if (code == 0) continue;
                KillAll();
                foreach (var r in running) procs[r]!.WaitForExit();
                Task.WaitAll([.. pumps]);
                lock (errGate)
                {
                    stderr.WriteLine($"error: rank {rank} of {n} exited with code {code}; stopped the other ranks");
                    stderr.Flush();
                }
                return code;
            }
            Task.WaitAll([.. pumps]);
            return procs[0]!.ExitCode;
        }
        finally
        {
            KillAll();
            AppDomain.CurrentDomain.ProcessExit -= onExit;
            foreach (var p in procs) p?.Dispose();
        }
    }

    // Rank 0's output as it comes (progress lines included), flushed chunk by chunk.
    private static async Task Copy(StreamReader from, TextWriter to, object gate)
    {
        var buf = new char[4096];
        int k;
        while ((k = await from.ReadAsync(buf).ConfigureAwait(false)) > 0)
            lock (gate) { to.Write(buf, 0, k); to.Flush(); }
    }

    private static async Task Prefixed(StreamReader from, TextWriter to, object gate, string prefix)
    {
        string? line;
        while ((line = await from.ReadLineAsync().ConfigureAwait(false)) is not null)
            lock (gate) { to.WriteLine(prefix + line); to.Flush(); }
    }
}
