#!/usr/bin/python3
"""Writes the attachments scripts/bench-preclass measures ClamAV pre-classification on, into OUTDIR.

Typical mail attachments, of typical sizes, built with the fixture writers of
tests/data/preclass/make.py (standard library only, deterministic), in pairs that differ only in
their dynamic part:
- PDFs: a one-page memo (~1 KiB) and a 12-page report with a photo-sized image (~315 KiB), each
  plain and with JavaScript run at open (/OpenAction);
- Office: a Word document of 200 KiB of text and a 100 KiB picture (~150 KiB zipped) as a plain
  docx and as a docm with a VBA project; a small Word 97 document (OLE2, a few KiB) with and
  without a VBA project;
- executables: PEs of 64 KiB and 1 MiB;
- a zip of the report, a PE and a docx (~600 KiB);
- plain text of 4 KiB, 64 KiB, 1 MiB and 8 MiB.
Random bytes stand for compressed content (images, code) so that nothing compresses away.
Usage: make_preclass_inputs.py OUTDIR
"""

import importlib.util
import os
import io
import random
import sys
import zipfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("preclass_make",
                                               os.path.join(HERE, "..", "data", "preclass", "make.py"))
pm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(pm)
ft = pm.ft

WORDS = ("the quarterly figures for the northern region show revenue ahead of plan while costs held "
         "steady across every site we operate and the board asked for the detailed breakdown attached "
         "below with notes on each line item").split()


def prose(n, seed):
    rng = random.Random(seed)
    out, size = [], 0
    while size < n:
        line = " ".join(rng.choice(WORDS) for _ in range(12)).capitalize() + ".\n"
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def noise(n, seed):
    return random.Random(seed).randbytes(n)


def text_pdf(pages, image_bytes, javascript=False):
    """A PDF of `pages` pages of Flate-compressed text and, when image_bytes, one DCT image stream
    (random bytes) on the first page; with javascript, the catalog's /OpenAction runs a script."""
    objects = [None, None,
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               pm.stream(noise(image_bytes, "img"),
                         b" /Type /XObject /Subtype /Image /Width 800 /Height 600 /ColorSpace /DeviceRGB"
                         b" /BitsPerComponent 8 /Filter /DCTDecode")]
    kids = []
    for p in range(pages):
        lines = prose(3000, "page%d" % p).split(b"\n")
        ops = b"BT /F1 10 Tf 50 780 Td 12 TL " + b" ".join(b"(" + l.replace(b"(", b"").replace(b")", b"") + b") '"
                                                             for l in lines if l) + b" ET"
        if p == 0 and image_bytes:
            ops += b" q 400 0 0 300 100 100 cm /Im1 Do Q"
        content = zlib.compress(ops, 6)
        objects.append(pm.stream(content, b" /Filter /FlateDecode"))
        content_ref = len(objects)
        objects.append(b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
                       b" /Resources << /Font << /F1 3 0 R >> /XObject << /Im1 4 0 R >> >> >>" % content_ref)
        kids.append(len(objects))
    open_action = b""
    if javascript:
        objects.append(b"<< /Type /Action /S /JavaScript /JS (app.alert\\('Quarterly figures'\\);) >>")
        open_action = b" /OpenAction %d 0 R" % len(objects)
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R" + open_action + b" >>"
    objects[1] = b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % pages
    return pm.pdf(objects)


def word(text_bytes, picture_bytes, macro):
    """A Word package of `text_bytes` of prose and a picture; with macro, a docm with a VBA project
    (an AutoOpen procedure), else the same as a docx."""
    body = (b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>' +
            b"".join(b"<w:p><w:r><w:t>" + line + b"</w:t></w:r></w:p>"
                     for line in prose(text_bytes, "docm").split(b"\n") if line) +
            b"</w:body></w:document>")
    base = pm.ooxml_with_vba("word", pm.vba_project_bin()) if macro else ft.ooxml("word", False)
    src = zipfile.ZipFile(io.BytesIO(base))
    entries = [(i.filename, body if i.filename == "word/document.xml" else src.read(i), i.compress_type)
               for i in src.infolist()]
    entries.append(("word/media/image1.jpeg", noise(picture_bytes, "pic"), ft.S))
    return pm.zip_bytes(entries)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)

    def write(name, data):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)

    pdf = text_pdf(12, 300 << 10)
    write("memo.pdf", text_pdf(1, 0))
    write("memo-js.pdf", text_pdf(1, 0, javascript=True))
    write("report.pdf", pdf)
    write("report-js.pdf", text_pdf(12, 300 << 10, javascript=True))
    write("letter.docx", word(200 << 10, 100 << 10, False))
    write("invoice.docm", word(200 << 10, 100 << 10, True))
    write("letter.doc", ft.cfb(pm.word_streams(), pm.WORD_CLSID))
    write("invoice.doc", ft.cfb([("Macros", pm.vba_storage(pm.MACRO_SOURCE))] + pm.word_streams(), pm.WORD_CLSID))
    write("tool-64k.exe", pm.pe32(b"\x55\x89\xE5" + noise((64 << 10) - 0x200 - 3, "tool64")))
    write("setup-1m.exe", pm.pe32(b"\x55\x89\xE5" + noise((1 << 20) - 0x200 - 3, "code")))
    write("bundle.zip", pm.zip_bytes([("report.pdf", pdf, ft.D), ("tool.exe", pm.pe32(noise(300 << 10, "tool")), ft.D),
                                      ("plain.docx", ft.ooxml("word", False), ft.D)]))
    for name, size in (("text-4k.txt", 4 << 10), ("text-64k.txt", 64 << 10), ("text-1m.txt", 1 << 20),
                       ("text-8m.txt", 8 << 20)):
        write(name, prose(size, name))


if __name__ == "__main__":
    main()
