using System.Text;

namespace Qwen35.Models.Runtime;

/// <summary>
/// The dynamic symbol table (<c>.dynsym</c>) of an ELF64 little-endian shared library: which symbols it imports and
/// which it exports. Only the section headers and the two tables are read, so a 1 GB <c>libtorch_cuda.so</c> costs
/// milliseconds.
/// </summary>
public static class ElfSymbols
{
    const uint ShtDynsym = 11;
    const int SymbolSize = 24;

    /// <summary>True when the file starts with the ELF magic (torch/lib also holds text files and links).</summary>
    public static bool IsElf(string path)
    {
        using var f = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        return f.Read(magic) == 4 && magic[0] == 0x7f && magic[1] == (byte)'E' && magic[2] == (byte)'L' && magic[3] == (byte)'F';
    }

    /// <summary>Symbols the library needs from others (section index 0 = undefined).</summary>
    public static IReadOnlyList<string> Imports(string path) =>
        Read(path).Where(s => s.Section == 0 && s.Name.Length > 0).Select(s => s.Name).Distinct().ToList();

    /// <summary>Global and weak symbols the library defines.</summary>
    public static IReadOnlyList<string> Exports(string path) =>
        Read(path).Where(s => s.Section != 0 && s.Binding is 1 or 2 && s.Name.Length > 0).Select(s => s.Name).Distinct().ToList();

    readonly record struct Symbol(string Name, ushort Section, int Binding);

    static List<Symbol> Read(string path)
    {
        if (!IsElf(path)) throw new InvalidDataException($"{path}: not an ELF file");
        using var f = File.OpenRead(path);
        var header = ReadAt(f, 0, 64, path, "ELF header");
        if (header[4] != 2 || header[5] != 1)
            throw new InvalidDataException($"{path}: only 64-bit little-endian ELF is supported");
        var shoff = (long)BitConverter.ToUInt64(header, 0x28);
        int shentsize = BitConverter.ToUInt16(header, 0x3A);
        int shnum = BitConverter.ToUInt16(header, 0x3C);
        if (shentsize < 64) throw new InvalidDataException($"{path}: section header entries of {shentsize} bytes");
        var sections = ReadAt(f, shoff, (long)shnum * shentsize, path, "section header table");

        for (var i = 0; i < shnum; i++)
        {
            var sh = i * shentsize;
            if (BitConverter.ToUInt32(sections, sh + 4) != ShtDynsym) continue;
            var offset = (long)BitConverter.ToUInt64(sections, sh + 0x18);
            var size = (long)BitConverter.ToUInt64(sections, sh + 0x20);
            var link = (int)BitConverter.ToUInt32(sections, sh + 0x28);
            if (link >= shnum) throw new InvalidDataException($"{path}: .dynsym links to section {link} of {shnum}");
            var strOffset = (long)BitConverter.ToUInt64(sections, link * shentsize + 0x18);
            var strSize = (long)BitConverter.ToUInt64(sections, link * shentsize + 0x20);
            var table = ReadAt(f, offset, size, path, ".dynsym");
            var strings = ReadAt(f, strOffset, strSize, path, ".dynstr");

            var symbols = new List<Symbol>((int)(size / SymbolSize));
            for (long at = 0; at + SymbolSize <= size; at += SymbolSize)
            {
                var nameOffset = BitConverter.ToUInt32(table, (int)at);
                if (nameOffset >= strings.Length) throw new InvalidDataException($"{path}: symbol name offset {nameOffset} outside .dynstr");
                var end = Array.IndexOf(strings, (byte)0, (int)nameOffset);
                if (end < 0) throw new InvalidDataException($"{path}: unterminated symbol name in .dynstr");
                var name = Encoding.ASCII.GetString(strings, (int)nameOffset, end - (int)nameOffset);
                symbols.Add(new Symbol(name, BitConverter.ToUInt16(table, (int)at + 6), table[at + 4] >> 4));
            }
            return symbols;
        }
        return [];   // a static object has no dynamic symbols
    }

    static byte[] ReadAt(FileStream f, long offset, long count, string path, string what)
    {
        if (offset < 0 || count < 0 || offset + count > f.Length || count > int.MaxValue)
            throw new InvalidDataException($"{path}: {what} (offset {offset}, {count} bytes) lies outside the file");
        var buffer = new byte[count];
        f.Position = offset;
        f.ReadExactly(buffer);
        return buffer;
    }
}
