#!/usr/bin/python3
"""Writes py_sample.zip and py_sample.tar beside this script with Python's zipfile and tarfile (an
implementation independent of libarchive) and prints, for every regular member, the line
`path size sha256` that tests/unit/pipeline/archive_test.cpp holds as constants. Deterministic: the
same bytes on every run (fixed contents, dates, owners)."""
import hashlib
import io
import os
import tarfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))


def stream(seed: str, n: int) -> bytes:
    """n bytes of SHA-256 counter output: incompressible, reproducible."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(f"{seed}:{i}".encode()).digest()
        i += 1
    return bytes(out[:n])


TEXT = b"".join(b"line %05d of a compressible text member\n" % i for i in range(2000))
MEMBERS = [  # (path, bytes): regular files of both archives, in order
    ("readme.txt", TEXT),
    ("bin/random.bin", stream("random", 70000)),
    ("bin/empty", b""),
    ("d\u00e9j\u00e0 vu/\u00e9t\u00e9.txt", "caf\u00e9 cr\u00e8me\n".encode()),
    ("deep/" + "x" * 120 + "/long.dat", stream("long", 1000)),
]


def write_zip(path: str) -> None:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(zipfile.ZipInfo("bin/", date_time=(2024, 1, 2, 3, 4, 6)), b"")
        for i, (name, data) in enumerate(MEMBERS):
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 2, 3, 4, 6))
            info.compress_type = zipfile.ZIP_STORED if i == 1 else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, data)


def write_tar(path: str) -> None:
    def info(name, kind=tarfile.REGTYPE, size=0, link=""):
        t = tarfile.TarInfo(name)
        t.type, t.size, t.linkname = kind, size, link
        t.mtime, t.mode, t.uid, t.gid, t.uname, t.gname = 1704164646, 0o644, 1000, 1000, "u", "g"
        return t

    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        t.addfile(info("bin/", tarfile.DIRTYPE))
        for name, data in MEMBERS:
            t.addfile(info(name, size=len(data)), io.BytesIO(data))
        t.addfile(info("bin/link-to-random", tarfile.SYMTYPE, link="random.bin"))
        t.addfile(info("bin/hard-random", tarfile.LNKTYPE, link="bin/random.bin"))
        t.addfile(info("dev-null", tarfile.CHRTYPE))


def main() -> None:
    write_zip(os.path.join(HERE, "py_sample.zip"))
    write_tar(os.path.join(HERE, "py_sample.tar"))
    for fname in ("py_sample.zip", "py_sample.tar"):
        print(fname)
        if fname.endswith(".zip"):
            with zipfile.ZipFile(os.path.join(HERE, fname)) as z:
                items = [(i.filename, z.read(i)) for i in z.infolist() if not i.is_dir()]
        else:
            with tarfile.open(os.path.join(HERE, fname)) as t:
                items = [(m.name, t.extractfile(m).read()) for m in t.getmembers() if m.isreg()]
        for name, data in items:
            print(f"  {name!r} {len(data)} {hashlib.sha256(data).hexdigest()}")


if __name__ == "__main__":
    main()
