using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace VitSharp.Checkpoints;

/// <summary>
/// PyTorch `.pt`/`.pth`/`.bin` files (the zip format of torch.save since 1.6) read WITHOUT executing the pickle: a small
/// pickle machine that builds only plain data (dicts, lists, tuples, strings, numbers) and tensor references. Calls to
/// anything but torch's tensor-rebuild functions and OrderedDict produce inert placeholders; nothing is ever imported or run.
/// </summary>
public static class PyTorchPickle
{
    private sealed record Global(string Module, string Name)
    {
        public string FullName => $"{Module}.{Name}";
    }
    private sealed record Opaque(string What);
    private sealed record StorageRef(string Type, string Key, long Numel);
    private sealed record TensorRef(StorageRef Storage, long Offset, int[] Size, long[] Stride);
    private sealed class PyDict : List<KeyValuePair<object, object?>>;
    private sealed class Mark { public static readonly Mark Instance = new(); }

    public static bool LooksLike(string path)
    {
        try
        {
            using var zip = ZipFile.OpenRead(path);
            return zip.Entries.Any(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal));
        }
        catch (Exception e) when (e is InvalidDataException or IOException) { return false; }
    }

    public static Dictionary<string, HostArray> Read(string path) => Read(path, null);

    /// <summary>Reads every tensor, charging each to <paramref name="maxTotalBytes"/> (<see cref="CheckpointLimits.MaxTotalBytes"/>
    /// when null) before allocating it.</summary>
    public static Dictionary<string, HostArray> Read(string path, long? maxTotalBytes) => Read(path, maxTotalBytes, null);

    /// <summary>Reads the tensors whose names (without DataParallel's "module.") <paramref name="wanted"/> accepts (all when
    /// null; it may also throw to refuse one), deciding from the pickle alone: a skipped or refused tensor's storage is
    /// never inflated.</summary>
    public static Dictionary<string, HostArray> Read(string path, long? maxTotalBytes, Func<string, bool>? wanted)
    {
        if (!File.Exists(path)) throw new CheckpointException(path, "file not found");
        try
        {
            using var zip = ZipFile.OpenRead(path);
            var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) || e.FullName == "data.pkl")
                ?? throw new CheckpointException(path, "zip archive without data.pkl: not a torch.save file");
            var prefix = pkl.FullName[..^"data.pkl".Length];
            if (pkl.Length > CheckpointLimits.MaxPickleBytes) throw new CheckpointException(path, "data.pkl larger than 1 GiB");
            CheckpointLimits.CheckCompression(pkl, path, null);
            var program = new byte[pkl.Length];
            using (var s = pkl.Open()) s.ReadExactly(program);
            var root = new Machine(program, path).Run();
            var tensors = new Dictionary<string, TensorRef>();
            Collect(FindStateDict(root), "", tensors, path, 0, new HashSet<object>(ReferenceEqualityComparer.Instance));
            if (tensors.Count == 0) throw new CheckpointException(path, "the pickle holds no tensors");
            var storages = new Dictionary<string, byte[]>();
            var result = new Dictionary<string, HostArray>();
            long stored = 0, decoded = 0;
            foreach (var (name, t) in tensors)
            {
                var clean = name.StartsWith("module.", StringComparison.Ordinal) ? name["module.".Length..] : name;
                if (wanted is not null && !wanted(clean)) continue;
                long count = CheckView(t, path, clean);
                CheckpointLimits.Charge(ref decoded, checked(count * 4), maxTotalBytes, path, clean);
                if (!storages.TryGetValue(t.Storage.Key, out var bytes))
                {
                    var entry = zip.GetEntry($"{prefix}data/{t.Storage.Key}")
                        ?? throw new CheckpointException(path, $"storage data/{t.Storage.Key} is missing from the archive", clean);
                    // The entry's declared size must be what the pickle says the storage holds, and within the budget,
                    // before one byte is inflated; then exactly that many bytes are read (a zip bomb cannot grow past it).
                    long need = t.Storage.Numel < 0 || t.Storage.Numel > long.MaxValue / 8 ? -1 : t.Storage.Numel * StorageElementSize(t.Storage.Type, path, clean);
                    if (need < 0 || entry.Length != need)
                        throw new CheckpointException(path, $"storage data/{t.Storage.Key} holds {entry.Length} bytes, but the pickle declares {t.Storage.Numel} {t.Storage.Type} elements (truncated or corrupt)", clean);
                    CheckpointLimits.CheckCompression(entry, path, clean);
                    CheckpointLimits.Charge(ref stored, entry.Length, maxTotalBytes, path, clean);
                    if (entry.Length > Array.MaxLength)
                        throw new CheckpointException(path, $"storage data/{t.Storage.Key} of {entry.Length} bytes is larger than one array holds", clean);
                    bytes = new byte[entry.Length];
                    using var s = entry.Open();
                    s.ReadExactly(bytes);
                    storages[t.Storage.Key] = bytes;
                }
                result[clean] = Gather(t, bytes, path, clean);
            }
            return result;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new CheckpointException(path, $"corrupt or truncated archive: {e.Message}", inner: e);
        }
        catch (Exception e) when (e is InvalidCastException or FormatException or OverflowException or ArgumentException
                                      or IndexOutOfRangeException or NotSupportedException)
        {
            throw new CheckpointException(path, $"corrupt pickle: {e.Message}", inner: e);
        }
    }

    // timm/DeiT training checkpoints nest the weights under a key; plain state dicts are the root itself.
    private static object? FindStateDict(object? root)
    {
        if (root is PyDict d)
            foreach (var key in new[] { "state_dict", "model", "model_state_dict", "module", "state_dict_ema", "model_ema" })
                foreach (var kv in d)
                    if (kv.Key is string s && s == key && kv.Value is PyDict inner && inner.Any(x => x.Value is TensorRef)) return inner;
        return root;
    }

    // A dict that contains itself (or nests deeper than any state dict) is refused, not followed until the stack overflows.
    private static void Collect(object? node, string prefix, Dictionary<string, TensorRef> into, string path, int depth, HashSet<object> open)
    {
        if (node is not PyDict d) return;
        if (depth >= CheckpointLimits.MaxPickleDepth)
            throw new CheckpointException(path, $"data.pkl: dicts nested deeper than {CheckpointLimits.MaxPickleDepth} levels at '{prefix.TrimEnd('.')}'");
        if (!open.Add(d)) throw new CheckpointException(path, $"data.pkl: the dict at '{prefix.TrimEnd('.')}' contains itself (a cycle)");
        foreach (var (k, v) in d)
        {
            var name = prefix + (k as string ?? k?.ToString() ?? "");
            if (v is TensorRef t) into[name] = t;
            else if (v is PyDict) Collect(v, name + ".", into, path, depth + 1, open);
        }
        open.Remove(d);
    }

    private static HostArray Gather(TensorRef t, byte[] bytes, string path, string name)
    {
        var (size, read) = t.Storage.Type switch
        {
            "FloatStorage" => (4, (Func<byte[], long, float>)((b, i) => BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan((int)(i * 4))))),
            "HalfStorage" => (2, (b, i) => (float)BinaryPrimitives.ReadHalfLittleEndian(b.AsSpan((int)(i * 2)))),
            "BFloat16Storage" => (2, (b, i) => Tensors.BFloat16Convert.ToFloat(BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan((int)(i * 2))))),
            "DoubleStorage" => (8, (b, i) => (float)BinaryPrimitives.ReadDoubleLittleEndian(b.AsSpan((int)(i * 8)))),
            "LongStorage" => (8, (b, i) => BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan((int)(i * 8)))),
            "IntStorage" => (4, (b, i) => BinaryPrimitives.ReadInt32LittleEndian(b.AsSpan((int)(i * 4)))),
            "ByteStorage" or "BoolStorage" => (1, (b, i) => b[i]),
            _ => throw new CheckpointException(path, $"unsupported storage type {t.Storage.Type}", name),
        };
        long available = bytes.Length / size;
        long count = t.Size.Aggregate(1L, (n, d) => n * d); // checked by CheckView
        long last = t.Offset + t.Size.Select((s, i) => s == 0 ? 0 : (s - 1) * t.Stride[i]).Sum();
        if (count > 0 && last >= available)
            throw new CheckpointException(path, $"view {Tensors.Shape.Format(t.Size)} at offset {t.Offset} lies outside its storage of {available} elements (truncated?)", name);
        if (count > available)
            throw new CheckpointException(path, $"view {Tensors.Shape.Format(t.Size)} has {count} elements but its storage only {available}: overlapping views are refused", name);
        var data = new float[count];
        var idx = new int[t.Size.Length];
        for (long n = 0; n < count; n++)
        {
            long src = t.Offset;
            for (int i = 0; i < idx.Length; i++) src += idx[i] * t.Stride[i];
            data[n] = read(bytes, src);
            for (int i = idx.Length - 1; i >= 0; i--)
            {
                if (++idx[i] < t.Size[i]) break;
                idx[i] = 0;
            }
        }
        return new HostArray(t.Size, data);
    }

    private static int StorageElementSize(string type, string path, string name) => type switch
    {
        "FloatStorage" or "IntStorage" => 4,
        "HalfStorage" or "BFloat16Storage" => 2,
        "DoubleStorage" or "LongStorage" => 8,
        "ByteStorage" or "BoolStorage" => 1,
        _ => throw new CheckpointException(path, $"unsupported storage type {type}", name),
    };

    /// <summary>Checks a view's size and strides before anything is allocated for it; returns its element count.</summary>
    private static long CheckView(TensorRef t, string path, string name)
    {
        if (t.Size.Length != t.Stride.Length || t.Offset < 0 || t.Offset > long.MaxValue / 16)
            throw new CheckpointException(path, "inconsistent size/stride", name);
        long count = CheckpointLimits.Elements(t.Size, path, name);
        CheckpointLimits.CheckTensor(count, t.Size, path, name);
        for (int i = 0; i < t.Size.Length; i++)
        {
            if (t.Stride[i] < 0 || t.Stride[i] > 1L << 40)
                throw new CheckpointException(path, $"stride {t.Stride[i]} of view {Tensors.Shape.Format(t.Size)} is out of range", name);
            if (t.Stride[i] == 0 && t.Size[i] > 1)
                throw new CheckpointException(path, $"view {Tensors.Shape.Format(t.Size)} has stride 0 in dimension {i}: broadcast views are refused", name);
        }
        return count;
    }

    /// <summary>The pickle virtual machine, restricted to building data.</summary>
    private sealed class Machine(byte[] code, string path)
    {
        private readonly List<object?> _stack = new();
        private readonly Dictionary<long, object?> _memo = new();
        private int _pos;

        public object? Run()
        {
            while (true)
            {
                byte op = U8();
                switch (op)
                {
                    case 0x80: U8(); break; // PROTO
                    case 0x95: Take(8); break; // FRAME
                    case (byte)'.': return Pop(); // STOP
                    case (byte)'(': Push(Mark.Instance); break;
                    case (byte)'0': Pop(); break;
                    case (byte)'1': PopToMark(); break;
                    case (byte)'2': Push(Peek()); break;
                    case (byte)'N': Push(null); break;
                    case 0x88: Push(true); break;
                    case 0x89: Push(false); break;
                    case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                    case (byte)'K': Push((long)U8()); break;
                    case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                    case 0x8a: Push(Long(Take(U8()))); break; // LONG1
                    case 0x8b: Push(Long(Take(Len32()))); break; // LONG4
                    case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break; // BINFLOAT
                    case (byte)'X': Push(Encoding.UTF8.GetString(Take(Len32()))); break; // BINUNICODE
                    case 0x8c: Push(Encoding.UTF8.GetString(Take(U8()))); break; // SHORT_BINUNICODE
                    case 0x8d: Push(Encoding.UTF8.GetString(Take(Len64()))); break; // BINUNICODE8
                    case (byte)'B': Push(Take(Len32()).ToArray()); break; // BINBYTES
                    case (byte)'C': Push(Take(U8()).ToArray()); break; // SHORT_BINBYTES
                    case (byte)'T': Push(Encoding.Latin1.GetString(Take(Len32()))); break; // BINSTRING
                    case (byte)'U': Push(Encoding.Latin1.GetString(Take(U8()))); break; // SHORT_BINSTRING
                    case (byte)']': Push(new List<object?>()); break;
                    case (byte)')': Push(Array.Empty<object?>()); break;
                    case (byte)'}': Push(new PyDict()); break;
                    case 0x8f: Push(new List<object?>()); break; // EMPTY_SET
                    case (byte)'l': Push(PopToMark().ToList()); break; // LIST
                    case (byte)'t': Push(PopToMark()); break; // TUPLE
                    case 0x85: Push(new[] { Pop() }); break;
                    case 0x86: { var b = Pop(); var a = Pop(); Push(new[] { a, b }); break; }
                    case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new[] { a, b, c }); break; }
                    case (byte)'a': { var v = Pop(); As<List<object?>>(Peek()).Add(v); break; }
                    case (byte)'e': case 0x90: { var items = PopToMark(); As<List<object?>>(Peek()).AddRange(items); break; } // APPENDS, ADDITEMS
                    case (byte)'d': { var items = PopToMark(); var d = new PyDict(); AddPairs(d, items); Push(d); break; }
                    case (byte)'s': { var v = Pop(); var k = Pop(); AddPair(Peek(), k, v); break; }
                    case (byte)'u': { var items = PopToMark(); var target = Peek(); for (int i = 0; i + 1 < items.Length; i += 2) AddPair(target, items[i], items[i + 1]); break; }
                    case (byte)'q': _memo[U8()] = Peek(); break; // BINPUT
                    case (byte)'r': _memo[Len32()] = Peek(); break; // LONG_BINPUT
                    case 0x94: _memo[_memo.Count] = Peek(); break; // MEMOIZE
                    case (byte)'h': Push(Memo(U8())); break; // BINGET
                    case (byte)'j': Push(Memo(Len32())); break; // LONG_BINGET
                    case (byte)'c': Push(new Global(Line(), Line())); break; // GLOBAL
                    case 0x93: { var name = Pop() as string; var module = Pop() as string; Push(new Global(module ?? "?", name ?? "?")); break; } // STACK_GLOBAL
                    case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID
                    case (byte)'R': { var args = Pop(); var f = Pop(); Push(Reduce(f, args as object?[] ?? [])); break; } // REDUCE
                    case 0x81: { Pop(); var cls = Pop(); Push(new Opaque($"instance of {Describe(cls)}")); break; } // NEWOBJ
                    case 0x92: { Pop(); Pop(); var cls = Pop(); Push(new Opaque($"instance of {Describe(cls)}")); break; } // NEWOBJ_EX
                    case (byte)'b': Pop(); break; // BUILD: object state is not applied; the objects are inert
                    default: throw Error($"unsupported pickle opcode 0x{op:x2} at byte {_pos - 1}");
                }
            }
        }

        private object? PersistentLoad(object? pid)
        {
            if (pid is object?[] { Length: >= 5 } t && t[0] as string == "storage")
            {
                var type = t[1] is Global g ? g.Name : t[1] as string ?? "?";
                return new StorageRef(type, t[2]?.ToString() ?? "", Convert.ToInt64(t[4]));
            }
            throw Error("unknown persistent id (not a torch storage)");
        }

        private object? Reduce(object? f, object?[] args)
        {
            if (f is not Global g) return new Opaque("call of a non-global");
            switch (g.FullName)
            {
                case "torch._utils._rebuild_tensor_v2":
                case "torch._utils._rebuild_tensor":
                    if (args.Length < 4 || args[0] is not StorageRef s) throw Error($"malformed {g.Name} call");
                    return new TensorRef(s, Convert.ToInt64(args[1]), Ints(args[2]).Select(x => checked((int)x)).ToArray(), Ints(args[3]));
                case "torch._utils._rebuild_parameter":
                case "torch._utils._rebuild_parameter_with_state":
                    return args.Length > 0 ? args[0] : null;
                case "torch._tensor._rebuild_from_type_v2":
                    return args.Length >= 3 && args[2] is object?[] inner ? Reduce(args[0], inner) : new Opaque(g.FullName);
                case "collections.OrderedDict":
                    return new PyDict();
                default:
                    return new Opaque($"result of {g.FullName}"); // never called: an inert placeholder
            }
        }

        private static long[] Ints(object? o) => o is object?[] t ? t.Select(Convert.ToInt64).ToArray() : throw new InvalidDataException("expected a tuple of ints");

        private static void AddPairs(PyDict d, object?[] items)
        {
            for (int i = 0; i + 1 < items.Length; i += 2) d.Add(new(items[i] ?? "None", items[i + 1]));
        }

        private void AddPair(object? target, object? k, object? v)
        {
            if (target is PyDict d) d.Add(new(k ?? "None", v));
            else if (target is not Opaque) throw Error("SETITEM on a non-dict");
        }

        private static string Describe(object? o) => o is Global g ? g.FullName : o?.GetType().Name ?? "None";
        private static long Long(ReadOnlySpan<byte> b)
        {
            long v = 0;
            for (int i = Math.Min(b.Length, 8) - 1; i >= 0; i--) v = (v << 8) | b[i];
            if (b.Length > 0 && b.Length < 8 && (b[^1] & 0x80) != 0) v -= 1L << (8 * b.Length);
            return v;
        }

        private T As<T>(object? o) where T : class => o as T ?? throw Error($"expected {typeof(T).Name}, found {o?.GetType().Name ?? "None"}");
        private object? Memo(long i) => _memo.TryGetValue(i, out var v) ? v : throw Error($"memo {i} read before it was written");
        private void Push(object? o) => _stack.Add(o);
        private object? Peek() => _stack.Count > 0 ? _stack[^1] : throw Error("stack underflow");

        private object? Pop()
        {
            var o = Peek();
            _stack.RemoveAt(_stack.Count - 1);
            return o;
        }

        private object?[] PopToMark()
        {
            int m = _stack.FindLastIndex(x => ReferenceEquals(x, Mark.Instance));
            if (m < 0) throw Error("MARK missing");
            var items = _stack.Skip(m + 1).ToArray();
            _stack.RemoveRange(m, _stack.Count - m);
            return items;
        }

        private byte U8() => _pos < code.Length ? code[_pos++] : throw Error("pickle ends without STOP (truncated)");
        private int Len32() => checked((int)BinaryPrimitives.ReadUInt32LittleEndian(Take(4)));
        private int Len64() => checked((int)BinaryPrimitives.ReadUInt64LittleEndian(Take(8)));

        private ReadOnlySpan<byte> Take(int n)
        {
            if (n < 0 || _pos + n > code.Length) throw Error("pickle ends inside an argument (truncated)");
            var s = code.AsSpan(_pos, n);
            _pos += n;
            return s;
        }

        private string Line()
        {
            int end = Array.IndexOf(code, (byte)'\n', _pos);
            if (end < 0) throw Error("unterminated GLOBAL");
            var s = Encoding.ASCII.GetString(code, _pos, end - _pos);
            _pos = end + 1;
            return s;
        }

        private CheckpointException Error(string message) => new(path, $"data.pkl: {message}");
    }
}
