#!/usr/bin/python3
"""Writes the file-type fixtures of tests/unit/pipeline/file_type_test.cpp into this folder.

Run with /usr/bin/python3 (standard library only). Output is deterministic: fixed timestamps,
fixed pseudo-random bytes. Every file is small and, where a reader exists, valid: the zips open
with zipfile, the tars with tarfile, the compound files follow [MS-CFB], the ISO ECMA-119.
Files of the Debian package clamav-testfiles (/usr/share/clamav-testfiles) are used directly by
the tests and not copied here.
"""

import bz2
import gzip
import io
import lzma
import os
import random
import struct
import tarfile
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DATE = (2024, 1, 2, 3, 4, 6)
MTIME = 1704164646  # 2024-01-02 03:04:06 UTC


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def noise(n, seed):
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(n))


# --- zip-based --------------------------------------------------------------------------------

def zip_bytes(entries, stream=False):
    """entries: (name, data, compress_type). stream=True writes through a non-seekable file, so
    zipfile sets bit 3 and writes data descriptors after each entry."""
    buf = io.BytesIO()

    class Unseekable(io.RawIOBase):
        def writable(self):
            return True

        def write(self, b):
            return buf.write(b)

    out = Unseekable() if stream else buf
    with zipfile.ZipFile(out, "w") as z:
        for name, data, method in entries:
            info = zipfile.ZipInfo(name, DATE)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            z.writestr(info, data)
    return buf.getvalue()


D = zipfile.ZIP_DEFLATED
S = zipfile.ZIP_STORED

OOXML_MAIN = {
    "word": ("word/document.xml", "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
             "application/vnd.ms-word.document.macroEnabled.main+xml",
             b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
             b"<w:body><w:p><w:r><w:t>Hello</w:t></w:r></w:p></w:body></w:document>"),
    "xl": ("xl/workbook.xml", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
           "application/vnd.ms-excel.sheet.macroEnabled.main+xml",
           b'<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
           b'<sheets><sheet name="Sheet1" sheetId="1"/></sheets></workbook>'),
    "ppt": ("ppt/presentation.xml", "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
            "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml",
            b'<p:presentation xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"/>'),
}


def ooxml(kind, macro, vba=None, first=(), ct_method=D, stream=False):
    part, plain_type, macro_type, body = OOXML_MAIN[kind]
    content_types = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/%s" ContentType="%s"/>'
        "</Types>" % (part, macro_type if macro else plain_type)).encode()
    rels = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
            b'relationships/officeDocument" Target="' + part.encode() + b'"/></Relationships>')
    entries = list(first) + [("[Content_Types].xml", content_types, ct_method), ("_rels/.rels", rels, D),
                             (part, body, D)]
    if macro if vba is None else vba:
        entries.append((kind + "/vbaProject.bin", noise(600, kind), D))
    return zip_bytes(entries, stream)


def odf(kind):
    mimetype = ("application/vnd.oasis.opendocument." + kind).encode()
    manifest = (b'<?xml version="1.0" encoding="UTF-8"?>\n'
                b'<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
                b'<manifest:file-entry manifest:full-path="/" manifest:media-type="' + mimetype + b'"/>'
                b'<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
                b"</manifest:manifest>")
    content = (b'<?xml version="1.0" encoding="UTF-8"?>\n<office:document-content '
               b'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"><office:body/>'
               b"</office:document-content>")
    return zip_bytes([("mimetype", mimetype, S), ("content.xml", content, D), ("META-INF/manifest.xml", manifest, D)])


def java_class(name=b"Hello"):
    # ClassFile (JVMS 4.1): constant pool #1 Class #2, #2 "Hello", #3 Class #4, #4 java/lang/Object.
    pool = (b"\x07\x00\x02" + b"\x01" + struct.pack(">H", len(name)) + name +
            b"\x07\x00\x04" + b"\x01" + struct.pack(">H", 16) + b"java/lang/Object")
    return (b"\xCA\xFE\xBA\xBE" + struct.pack(">HHH", 0, 52, 5) + pool +
            struct.pack(">HHHHHHH", 0x0021, 1, 3, 0, 0, 0, 0))


def make_zips():
    write("docx.docx", ooxml("word", False))
    write("docm.docm", ooxml("word", True))
    write("xlsx.xlsx", ooxml("xl", False))
    write("xlsm.xlsm", ooxml("xl", True))
    write("pptx.pptx", ooxml("ppt", False))
    write("pptm.pptm", ooxml("ppt", True))
    # Bit 3 set on every entry: no sizes in the local headers.
    write("docx_descriptors.docx", ooxml("word", False, stream=True))
    # Every name the detector needs lies past the first 6 KiB (a stored picture comes first).
    write("docx_late.docx", ooxml("word", False, first=[("customXml/item1.bin", noise(6000, "late"), S)]))
    # Macro-enabled by the content type only, readable in a stored [Content_Types].xml.
    write("xlsm_content_type.xlsm", ooxml("xl", True, vba=False, ct_method=S))
    write("odt.odt", odf("text"))
    write("ods.ods", odf("spreadsheet"))
    write("odp.odp", odf("presentation"))
    write("odg.odg", odf("graphics"))
    manifest = b"Manifest-Version: 1.0\r\nMain-Class: Hello\r\nCreated-By: make.py\r\n\r\n"
    write("jar.jar", zip_bytes([("META-INF/MANIFEST.MF", manifest, D), ("Hello.class", java_class(), D)]))
    write("apk.apk", zip_bytes([("AndroidManifest.xml", noise(300, "axml"), D), ("classes.dex", b"dex\n035\0" + noise(200, "dex"), D),
                                ("META-INF/MANIFEST.MF", manifest, D)]))
    write("plain.zip", zip_bytes([("readme.txt", b"Quarterly figures attached.\n" * 8, D), ("data/figures.csv", b"q,amount\n1,10\n", D)]))
    write("empty.zip", zip_bytes([]))
    # A docx stored (not compressed) inside a zip: its names must not make the zip a docx.
    write("nested_docx.zip", zip_bytes([("report.docx", ooxml("word", False), S), ("note.txt", b"see attached\n", D)]))


# --- compound files ([MS-CFB]) ----------------------------------------------------------------

FREESECT, ENDOFCHAIN, FATSECT, NOSTREAM = 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFFD, 0xFFFFFFFF


def clsid(d1, tail=bytes.fromhex("0000 0000 C000 000000000046")):
    return struct.pack("<I", d1) + tail


def cfb(children, root_clsid=b"\0" * 16):
    """children: list of (name, bytes) streams or (name, [children]) storages. Version 3, 512-byte
    sectors, streams under 4096 bytes in the mini stream; siblings chained by right pointers in
    [MS-CFB] name order (length, then upper case)."""
    entries = []  # [name, type, data, child, right, clsid]

    def add(name, node, kind):
        index = len(entries)
        entries.append([name, kind, node if kind == 2 else b"", NOSTREAM, NOSTREAM, b"\0" * 16])
        if kind != 2:
            kids = [add(n, c, 2 if isinstance(c, (bytes, bytearray)) else 1) for n, c in node]
            kids.sort(key=lambda i: (len(entries[i][0]), entries[i][0].upper()))
            for a, b in zip(kids, kids[1:]):
                entries[a][4] = b
            if kids:
                entries[index][3] = kids[0]
        return index

    add("Root Entry", children, 5)
    entries[0][5] = root_clsid

    mini, minifat, big = bytearray(), [], []
    starts = {}
    for i, e in enumerate(entries):
        if e[1] != 2:
            continue
        data = e[2]
        if len(data) < 4096:
            first = len(mini) // 64
            count = max(1, (len(data) + 63) // 64) if data else 0
            starts[i] = first if data else ENDOFCHAIN
            minifat += [first + k + 1 for k in range(count - 1)] + ([ENDOFCHAIN] if count else [])
            mini += data + b"\0" * (-len(data) % 64)
        else:
            big.append(i)

    ndir = (len(entries) + 3) // 4
    nminifat = (len(minifat) * 4 + 511) // 512
    nmini = (len(mini) + 511) // 512
    nbig = sum((len(entries[i][2]) + 511) // 512 for i in big)
    nfat = 1
    while nfat * 128 < nfat + ndir + nminifat + nmini + nbig:
        nfat += 1
    fat, sector = [FATSECT] * nfat, nfat

    def chain(count):
        nonlocal sector
        first = sector
        fat.extend(list(range(sector + 1, sector + count)) + [ENDOFCHAIN])
        sector += count
        return first

    dir_start = chain(ndir)
    minifat_start = chain(nminifat) if nminifat else ENDOFCHAIN
    mini_start = chain(nmini) if nmini else ENDOFCHAIN
    body = bytearray()
    for i in big:
        starts[i] = chain((len(entries[i][2]) + 511) // 512)
    fat += [FREESECT] * (nfat * 128 - len(fat))

    directory = bytearray()
    for i, (name, kind, data, child, right, cls) in enumerate(entries):
        raw = name.encode("utf-16-le") + b"\0\0"
        start, size = (mini_start, len(mini)) if kind == 5 else (starts.get(i, 0), len(data)) if kind == 2 else (0, 0)
        if kind == 2 and not data:
            start = ENDOFCHAIN
        directory += (raw.ljust(64, b"\0") + struct.pack("<HBB", len(raw), kind, 1) +
                      struct.pack("<III", NOSTREAM, right, child) + cls + b"\0" * 4 + b"\0" * 16 +
                      struct.pack("<IQ", start, size))
    while len(directory) < ndir * 512:
        directory += b"\0" * 64 + struct.pack("<HBB", 0, 0, 0) + struct.pack("<III", NOSTREAM, NOSTREAM, NOSTREAM) + b"\0" * 48

    header = (bytes.fromhex("D0CF11E0A1B11AE1") + b"\0" * 16 + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) +
              b"\0" * 6 + struct.pack("<IIIIIIIII", 0, nfat, dir_start, 0, 4096, minifat_start, nminifat,
                                      ENDOFCHAIN, 0) +
              struct.pack("<109I", *(list(range(nfat)) + [FREESECT] * (109 - nfat))))
    assert len(header) == 512
    out = bytearray(header)
    out += struct.pack("<%dI" % len(fat), *fat)
    out += directory
    if nminifat:
        table = minifat + [FREESECT] * (nminifat * 128 - len(minifat))
        out += struct.pack("<%dI" % len(table), *table)
    out += mini + b"\0" * (nmini * 512 - len(mini))
    for i in big:
        data = entries[i][2]
        out += data + b"\0" * (-len(data) % 512)
    return bytes(out)


def summary():
    # A property set stream header with no sections is enough for a name to exist.
    return struct.pack("<HHI16sI", 0xFFFE, 0, 0x00020006, b"\0" * 16, 0)


def msi_name(s):
    # MSI packs stream names two characters per code unit from U+3800; tables get a U+4840
    # prefix. Only the prefix matters here: the rest is arbitrary packed characters.
    return "\u4840" + "".join(chr(0x3800 + (ord(c) & 0x3F)) for c in s)


def make_compound_files():
    word_clsid = clsid(0x00020906)
    excel_clsid = clsid(0x00020820)
    msi_clsid = clsid(0x000C1084)
    msg_clsid = clsid(0x00020D0B)
    word_streams = [("WordDocument", noise(700, "wd")), ("1Table", noise(300, "tbl")), ("\x05SummaryInformation", summary())]
    write("xls.xls", cfb([("Workbook", noise(900, "wb")), ("\x05SummaryInformation", summary())], excel_clsid))
    # Excel 5 names its stream "Book"; no CLSID: the stream name decides.
    write("book.xls", cfb([("Book", noise(500, "book"))]))
    # A Word document embedding an Excel sheet: the Workbook entry comes first in the directory.
    write("doc_embeds_xls.doc", cfb([("ObjectPool", [("_1234567890", [("Workbook", noise(400, "emb")),
                                                                      ("\x01CompObj", noise(60, "co"))])])] + word_streams,
                                    word_clsid))
    write("msi_clsid.msi", cfb([("\x05SummaryInformation", summary()), ("Binary.icon", noise(5000, "icon"))], msi_clsid))
    write("msi_tables.msi", cfb([(msi_name("_Tables"), noise(40, "t")), (msi_name("_Columns"), noise(80, "c")),
                                 (msi_name("File"), noise(60, "f")), ("\x05SummaryInformation", summary())]))
    # An Outlook item whose attachment is a Word document stored as a sub-storage.
    attachment = [("__properties_version1.0", noise(64, "ap")), ("__substg1.0_3701000D", word_streams)]
    write("msg.msg", cfb([("__properties_version1.0", noise(96, "p")), ("__substg1.0_0037001F", "Invoice".encode("utf-16-le")),
                          ("__nameid_version1.0", [("__substg1.0_00020102", b"\0" * 16)]),
                          ("__attach_version1.0_#00000000", attachment)], msg_clsid))
    write("generic.ole", cfb([("Contents", noise(200, "contents")), ("\x01CompObj", noise(60, "co2"))]))


# --- other archives ---------------------------------------------------------------------------

def rar4():
    def block(kind, flags, body, add=b""):
        head = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head + add
    data = b"hello from rar4\n"
    name = b"hello.txt"
    dos_time = (2024 - 1980) << 25 | 1 << 21 | 2 << 16 | 3 << 11 | 4 << 5 | 3
    file_body = struct.pack("<IIBIIBBHI", len(data), len(data), 3, zlib.crc32(data), dos_time, 29, 0x30, len(name),
                            0o100644) + name
    return (b"Rar!\x1A\x07\x00" + block(0x73, 0, b"\0" * 6) + block(0x74, 0x8000, file_body, data) +
            block(0x7B, 0x4000, b""))


def vint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def rar5():
    def header(fields, data=b""):
        size = vint(len(fields))
        return struct.pack("<I", zlib.crc32(size + fields)) + size + fields + data
    data = b"hello from rar5\n"
    name = b"hello.txt"
    main = header(vint(1) + vint(0) + vint(0))                                  # main, no flags
    f = (vint(2) + vint(0x0002) + vint(len(data)) + vint(0x0004) + vint(len(data)) + vint(0o644) +
         struct.pack("<I", zlib.crc32(data)) + vint(0) + vint(1) + vint(len(name)) + name)  # store, Unix
    end = header(vint(5) + vint(0) + vint(0))
    return b"Rar!\x1A\x07\x01\x00" + main + header(f, data) + end


def lha_crc16(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def lzh():
    data = b"hello from lha\n"
    name = b"hello.txt"
    dos_time = (2024 - 1980) << 25 | 1 << 21 | 2 << 16 | 3 << 11 | 4 << 5 | 3
    rest = (b"-lh0-" + struct.pack("<III", len(data), len(data), dos_time) + b"\x20\x00" + bytes([len(name)]) + name +
            struct.pack("<H", lha_crc16(data)))
    return bytes([len(rest), sum(rest) & 0xFF]) + rest + data + b"\0"


def zstd_frame(data):
    assert len(data) < 256
    return b"\x28\xB5\x2F\xFD" + b"\x20" + bytes([len(data)]) + struct.pack("<I", 1 | len(data) << 3)[:3] + data


def tar_bytes(fmt, v7=False):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        data = b"hello from tar\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime, info.mode, info.uname, info.gname = len(data), MTIME, 0o644, "user", "user"
        t.addfile(info, io.BytesIO(data))
    out = bytearray(buf.getvalue())
    if v7:
        # Pre-POSIX header: nothing after the link name, checksum recomputed (6 octal digits, NUL, space).
        out[257:512] = b"\0" * 255
        out[148:156] = b" " * 8
        out[148:156] = b"%06o\0 " % sum(out[:512])
    return bytes(out)


def both16(n):
    return struct.pack("<H", n) + struct.pack(">H", n)


def both32(n):
    return struct.pack("<I", n) + struct.pack(">I", n)


def iso():
    """ECMA-119 with one file: sectors 0-15 system area, 16 PVD, 17 terminator, 18-19 path
    tables (L, M), 20 root directory, 21 the file, 22-24 padding (libarchive reads 8 sectors
    past the system area before it recognises an image)."""
    data = b"hello from iso\n"
    date7 = bytes([124, 1, 2, 3, 4, 6, 0])

    def record(name, extent, size, flags):
        rec = (bytes([0, 0]) + both32(extent) + both32(size) + date7 + bytes([flags, 0, 0]) + both16(1) +
               bytes([len(name)]) + name)
        rec += b"\0" * (len(rec) % 2)
        return bytes([len(rec)]) + rec[1:]

    root = record(b"\0", 20, 2048, 2)
    directory = (root + record(b"\1", 20, 2048, 2) + record(b"HELLO.TXT;1", 21, len(data), 0)).ljust(2048, b"\0")
    stamp = b"2024010203040600\0"
    pvd = (b"\x01CD001\x01\0" + b"LINUX".ljust(32) + b"FILETYPES".ljust(32) + b"\0" * 8 + both32(25) + b"\0" * 32 +
           both16(1) + both16(1) + both16(2048) + both32(10) + struct.pack("<I", 18) + b"\0" * 4 +
           struct.pack(">I", 19) + b"\0" * 4 + root + b" " * 128 * 4 + b" " * 37 * 3 + stamp * 2 + b"0" * 16 + b"\0" +
           stamp + b"\x01\0")
    pvd = pvd.ljust(2048, b"\0")
    terminator = b"\xFFCD001\x01".ljust(2048, b"\0")
    path_l = (b"\x01\0" + struct.pack("<IH", 20, 1) + b"\0\0").ljust(2048, b"\0")
    path_m = (b"\x01\0" + struct.pack(">IH", 20, 1) + b"\0\0").ljust(2048, b"\0")
    return b"\0" * 32768 + pvd + terminator + path_l + path_m + directory + data.ljust(2048, b"\0") + b"\0" * 3 * 2048


def make_archives():
    write("rar4.rar", rar4())
    write("rar5.rar", rar5())
    write("lzh.lzh", lzh())
    write("zstd.zst", zstd_frame(b"hello from zstd\n"))
    write("xz.xz", lzma.compress(b"hello from xz\n" * 4, format=lzma.FORMAT_XZ))
    write("bzip2.bz2", bz2.compress(b"hello from bzip2\n" * 4))
    write("gzip.gz", gzip.compress(b"hello from gzip\n" * 4, mtime=0))
    write("ustar.tar", tar_bytes(tarfile.USTAR_FORMAT))
    write("gnu.tar", tar_bytes(tarfile.GNU_FORMAT))
    write("v7.tar", tar_bytes(tarfile.USTAR_FORMAT, v7=True))
    write("iso.iso", iso())


# --- executables ------------------------------------------------------------------------------

def make_executables():
    # Mach-O: mach_header_64 little-endian x86_64, mach_header big-endian PowerPC, fat x86_64 + arm64.
    thin64 = struct.pack("<IiiIIII", 0xFEEDFACF, 0x01000007, 3, 2, 0, 0, 0) + b"\0" * 4
    write("macho64.macho", thin64 + b"\0" * 32)
    write("macho32be.macho", struct.pack(">IiiIIII", 0xFEEDFACE, 18, 0, 2, 0, 0, 0) + b"\0" * 36)
    arm64 = struct.pack("<IiiIIII", 0xFEEDFACF, 0x0100000C, 0, 2, 0, 0, 0) + b"\0" * 4
    fat = struct.pack(">II", 0xCAFEBABE, 2) + struct.pack(">iiIII", 0x01000007, 3, 4096, len(thin64), 12) + \
        struct.pack(">iiIII", 0x0100000C, 0, 8192, len(arm64), 14)
    write("fat.macho", fat.ljust(4096, b"\0") + thin64.ljust(4096, b"\0") + arm64)
    write("Hello.class", java_class())
    # ELF32 big-endian MIPS executable header, no program headers.
    write("elf32be.elf", b"\x7FELF\x01\x02\x01" + b"\0" * 9 +
          struct.pack(">HHIIIIIHHHHHH", 2, 8, 1, 0x400000, 0, 0, 0, 52, 0, 0, 0, 0, 0))
    # DOS program (no new header): 32-byte MZ header, prints "hi" through int 21h.
    code = bytes.fromhex("B409BA0C01CD21B8004CCD21") + b"hi$"
    size = 32 + len(code)
    write("dos.exe", struct.pack("<2sHHHHHHHHHHHHH", b"MZ", size % 512, (size + 511) // 512, 0, 2, 0, 0xFFFF, 0, 0xFFFE,
                                 0, 0, 0, 0x1C, 0).ljust(32, b"\0") + code)
    # Shell link: header (HasRelativePath | IsUnicode), the relative path, the terminal block.
    flags = 0x08 | 0x80
    header = (struct.pack("<I", 0x4C) + clsid(0x00021401) + struct.pack("<II", flags, 0x20) + b"\0" * 24 +
              struct.pack("<IIIHH", 0, 0, 1, 0, 0) + b"\0" * 8)
    assert len(header) == 0x4C
    path = ".\\invoice.pdf.exe"
    write("shortcut.lnk", header + struct.pack("<H", len(path)) + path.encode("utf-16-le") + b"\0" * 4)


# --- documents, images, scripts ---------------------------------------------------------------

def png_chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png():
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)) +
            png_chunk(b"IDAT", zlib.compress(b"\0\xFF\x80\0")) + png_chunk(b"IEND", b""))


def jpeg():
    """Baseline 1x1 grey: one quantisation table, one-code Huffman tables (DC category 0, AC EOB)."""
    def seg(marker, body):
        return b"\xFF" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body
    app0 = seg(0xE0, b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0")
    dqt = seg(0xDB, b"\0" + b"\x01" * 64)
    sof = seg(0xC0, b"\x08\0\x01\0\x01\x01\x01\x11\0")
    dht_dc = seg(0xC4, b"\x00" + b"\x01" + b"\0" * 15 + b"\x00")
    dht_ac = seg(0xC4, b"\x10" + b"\x01" + b"\0" * 15 + b"\x00")
    sos = seg(0xDA, b"\x01\x01\x00\x00\x3F\x00")
    return b"\xFF\xD8" + app0 + dqt + sof + dht_dc + dht_ac + sos + b"\x3F" + b"\xFF\xD9"


def webp():
    """Lossless (VP8L) 1x1: five single-symbol prefix codes, so the pixel takes no bits."""
    bits = []

    def put(value, n):
        bits.extend((value >> i) & 1 for i in range(n))
    put(0, 14), put(0, 14), put(1, 1), put(0, 3)         # width-1, height-1, alpha, version
    put(0, 1), put(0, 1), put(0, 1)                       # no transform, no colour cache, no meta codes
    for symbol in (0x80, 0x40, 0x20, 0xFF):               # green, red, blue, alpha
        put(1, 1), put(0, 1), put(1, 1), put(symbol, 8)   # simple code, one symbol, 8-bit symbol
    put(1, 1), put(0, 1), put(0, 1), put(0, 1)            # distance: simple, one 1-bit symbol 0
    body = bytearray(b"\x2F")
    for i in range(0, len(bits), 8):
        body.append(sum(b << k for k, b in enumerate(bits[i:i + 8])))
    chunk = b"VP8L" + struct.pack("<I", len(body)) + bytes(body) + b"\0" * (len(body) % 2)
    return b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk


def make_media():
    write("png.png", png())
    write("jpeg.jpg", jpeg())
    write("gif.gif", bytes.fromhex("474946383961010001008000 00FFFFFF000000 2C00000000010001000002024401003B".replace(" ", "")))
    write("bmp.bmp", b"BM" + struct.pack("<IHHI", 58, 0, 0, 54) +
          struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 24, 0, 4, 2835, 2835, 0, 0) + b"\x20\x40\x80\0")
    ifd = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1), (273, 4, 1, 8 + 2 + 8 * 12 + 4),
           (278, 3, 1, 1), (279, 4, 1, 1)]
    write("tiff.tif", b"II*\0" + struct.pack("<I", 8) + struct.pack("<H", len(ifd)) +
          b"".join(struct.pack("<HHII", *e) for e in ifd) + struct.pack("<I", 0) + b"\x80")
    write("webp.webp", webp())
    icon = png()
    write("ico.ico", struct.pack("<HHH", 0, 1, 1) + struct.pack("<BBBBHHII", 1, 1, 0, 0, 1, 32, len(icon), 22) + icon)
    # A PDF with 100 bytes of junk before its header (readers look in the first 1024 bytes).
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>"]
    pdf = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(pdf)
    pdf += b"xref\n0 4\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    pdf += b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    write("junk_prefix.pdf", noise(100, "junk") + bytes(pdf))
    # Word reads "{\rt" as RTF whatever follows.
    write("rt_only.rtf", b"{\\rtxyz\\ansi {\\fonttbl{\\f0 Arial;}} Hello}\n")
    # [MS-ONESTORE] 2.3.1 header: guidFileType, guidFile, guidLegacyFileVersion, guidFileFormat.
    write("onenote.one", bytes.fromhex("E4525C7B8CD8A74DAEB15378D02996D3") + noise(16, "guid") + b"\0" * 16 +
          bytes.fromhex("3FDD9A101B91F549A5D01791EDC8AED8") + b"\0" * 960)


SCRIPTS = {
    "dropper.js": """// invoice viewer
var shell = new ActiveXObject("WScript.Shell");
var url = "http://example.invalid/a.txt";
function fetch(u) {
  var x = new ActiveXObject("MSXML2.XMLHTTP");
  x.open("GET", u, false);
  return x;
}
WScript.Echo("done");
""",
    "dropper.vbs": """On Error Resume Next
Dim shell
Set shell = CreateObject("WScript.Shell")
shell.Run "notepad.exe", 1, False
WScript.Echo "done"
""",
    "app.hta": """<html><head><title>Viewer</title>
<HTA:APPLICATION ID="viewer" APPLICATIONNAME="viewer" WINDOWSTATE="minimize">
<script language="VBScript">
Sub Window_OnLoad
  MsgBox "hello"
End Sub
</script></head><body></body></html>
""",
    "page.html": """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Invoice</title></head>
<body><p>Your invoice is attached.</p></body></html>
""",
    "smuggle.html": """Please wait while your document loads...
<script>
var b = atob("SGVsbG8=");
function save(name) { var a = document.createElement("a"); a.download = name; a.click(); }
save("invoice.zip");
</script>
""",
    "page.xhtml": """<?xml version="1.0" encoding="UTF-8"?>
<!-- exported -->
<html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title></head><body/></html>
""",
    "image.svg": """<?xml version="1.0" standalone="no"?>
<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">
<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script>
<rect width="10" height="10"/></svg>
""",
    "job.wsf": """<job id="main">
<script language="JScript">
var sh = new ActiveXObject("WScript.Shell");
sh.Run("calc.exe");
</script>
</job>
""",
    "run.ps1": """$url = "http://example.invalid/a.txt"
$client = New-Object Net.WebClient
$data = $client.DownloadString($url)
Write-Host $env:TEMP
""",
    "run.bat": """@echo off
set /p name=Name:
if exist "%TEMP%\\x.txt" del "%TEMP%\\x.txt"
goto :eof
""",
    "notes.txt": """Meeting notes

The function of this memo is to record what we agreed (see the draft).
Dim light in the meeting room: facilities will look at it.
Let us meet again on Monday. Résumés are due by Friday.
""",
    "table.csv": "name,amount\nAlice,10\nBob,20\n",
    "mz_text.txt": "MZone quarterly review\nAll figures are final.\n",
}


def make_text():
    for name, text in SCRIPTS.items():
        write(name, text.encode("utf-8"))
    write("utf16.vbs", b"\xFF\xFE" + SCRIPTS["dropper.vbs"].replace("\n", "\r\n").encode("utf-16-le"))


def main():
    make_zips()
    make_compound_files()
    make_archives()
    make_executables()
    make_media()
    make_text()


if __name__ == "__main__":
    main()
