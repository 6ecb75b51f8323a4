using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace VitSharp.Checkpoints;

/// <summary>
/// A checkpoint file mapped read-only into memory, so that tensors can be read (and packed) from the file's pages
/// instead of from copies: the pages are the kernel's page cache, shared by every process that maps the file, and
/// dropped from this process's resident set once their tensor is packed (<see cref="DropPages"/>).
/// <para>Semantics: the file must not be modified in place while it is mapped (a write shows through, a truncation
/// makes reads fault). VitSharp never does that: every checkpoint it writes is a new file renamed over the old one
/// (<see cref="AtomicFile"/>), so a mapped old file stays intact until its last mapping goes. On Linux the file can be
/// deleted or replaced while mapped; the mapping ends when the last holder releases it (<see cref="Release"/>).</para>
/// Reference counted: the checkpoint that opened it holds one reference, each model that reads from it later one more.
/// </summary>
public sealed unsafe class MappedFile
{
    private readonly MemoryMappedFile _map;
    private readonly MemoryMappedViewAccessor _view;
    private byte* _base;
    private int _refs = 1;
    private readonly object _lock = new();

    private MappedFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long length)
    {
        Path = path;
        _map = map;
        _view = view;
        Length = length;
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + view.PointerOffset;
    }

    public string Path { get; }
    public long Length { get; }
    /// <summary>Whether the mapping is still there (some holder has not released it).</summary>
    public bool IsOpen { get { lock (_lock) return _base != null; } }

    /// <summary>Maps <paramref name="stream"/>'s file whole (the stream may be closed afterwards: the mapping stays) (it must be at least one byte and still
    /// <paramref name="expectedLength"/> long: the length its header was checked against).</summary>
    internal static MappedFile Open(string path, FileStream stream, long expectedLength)
    {
        if (stream.Length != expectedLength)
            throw new CheckpointException(path, $"the file changed while it was read ({expectedLength} bytes, now {stream.Length})");
        var map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
        try
        {
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new MappedFile(path, map, view, expectedLength);
        }
        catch { map.Dispose(); throw; }
    }

    /// <summary><paramref name="length"/> bytes from <paramref name="offset"/>; bounds-checked against the file.</summary>
    public ReadOnlySpan<byte> Bytes(long offset, long length)
    {
        if (offset < 0 || length < 0 || length > int.MaxValue || offset > Length - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"bytes [{offset}, {offset + length}) outside the {Length}-byte mapping of {Path}");
        return new ReadOnlySpan<byte>(Pointer + offset, (int)length);
    }

    internal byte* Pointer => _base != null ? _base : throw new ObjectDisposedException(nameof(MappedFile), $"the mapping of {Path} was released");

    /// <summary>Takes one more reference (false when the mapping is already gone).</summary>
    public bool AddRef()
    {
        lock (_lock)
        {
            if (_base == null) return false;
            _refs++;
            return true;
        }
    }

    /// <summary>Gives one reference back; the last one unmaps the file and closes it.</summary>
    public void Release()
    {
        lock (_lock)
        {
            if (_base == null || --_refs > 0) return;
            _base = null;
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
            _map.Dispose();
        }
    }

    /// <summary>Advises the kernel that this process no longer needs these pages resident (Linux: madvise
    /// MADV_DONTNEED on the whole pages inside the range). The data stays readable: a later read faults the page back
    /// in from the page cache or the file. Only a hint about memory, never about contents.</summary>
    public void DropPages(long offset, long length)
    {
        if (!OperatingSystem.IsLinux() || length <= 0) return;
        lock (_lock)
        {
            if (_base == null) return;
            long page = Environment.SystemPageSize;
            long from = ((long)_base + offset + page - 1) / page * page, to = ((long)_base + Math.Min(offset + length, Length)) / page * page;
            if (to > from) _ = Madvise((nint)from, (nuint)(to - from), MadvDontNeed);
        }
    }

    private const int MadvDontNeed = 4;

    [DllImport("libc", EntryPoint = "madvise", SetLastError = false)]
    private static extern int Madvise(nint addr, nuint length, int advice);
}

/// <summary>One holder's reference to a <see cref="MappedFile"/>: disposing it releases that reference once, however
/// many copies of the holder (records copied by <c>with</c>) dispose it.</summary>
public sealed class MappedLease : IDisposable
{
    private int _released;

    internal MappedLease(MappedFile file) => File = file;

    public MappedFile File { get; }

    /// <summary>A new holder's lease on the same mapping, or null when it was already released.</summary>
    public static MappedLease? Share(MappedFile file) => file.AddRef() ? new MappedLease(file) : null;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0) File.Release();
    }
}
