"""Attachments through the worker lcores, end to end: mails carrying archives and documents are
sent in generated SMTP sessions, replayed through sluiced with one RX lcore and one worker lcore,
and every `file` event is checked against ground truth computed here:

- the attachment's SHA-256 (of the decoded bytes), its detected type and the type mismatch;
- every archive member, recursively: path, size, SHA-256, depth, parent's SHA-256, type — walked
  with Python's zipfile / tarfile (or the generator's own contents for 7z), never with Sluice;
- archives Sluice cannot or must not unpack: an encrypted zip and 7z (`encrypted`), a zip bomb by
  ratio and one by nesting depth (`limit_exceeded`), a truncated zip (`extraction_failed`); the
  archive itself is always reported, hashed and typed;
- the clamav-testfiles samples (Debian package): clam.exe inside zip, 7z, cab, tar.gz and bzip2
  has the SHA-256 of /usr/share/clamav-testfiles/clam.exe; documents are typed;
- what must not read as scanned whole (issue 10): a gzip of 1 KiB of zeros then clam.exe (an
  empty tar to libarchive) is reported with its decompressed stream as the member; 64 MiB of zeros
  behind that empty tar stop at the ratio; a 7-Zip archive rewritten to declare a 4 GiB LZMA
  dictionary is refused before libarchive maps it (`limit_exceeded`, counted).
"""
import base64
import email.policy
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile
import zlib
from email.message import EmailMessage

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import sluiced  # noqa: E402
import tcpgen  # noqa: E402

CLAM = "/usr/share/clamav-testfiles"
SEVEN = shutil.which("7zz") or shutil.which("7z")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def zip_bytes(members, compression=zipfile.ZIP_DEFLATED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return buf.getvalue()


def tar_gz_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def is_zip(b):
    return b[:4] == b"PK\x03\x04"


def truth_members(data, depth=1, parent=None, max_depth=5):
    """(path, size, sha256, depth, parent_sha256) of every member, depth first, from Python's
    zipfile/tarfile: the ground truth for zip and tar.gz attachments."""
    parent = parent or sha(data)
    out = []
    if is_zip(data):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            items = [(i.filename, z.read(i)) for i in z.infolist() if not i.is_dir()]
    else:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as t:
            items = [(m.name, t.extractfile(m).read()) for m in t.getmembers() if m.isfile()]
    for name, b in items:
        out.append((name, len(b), sha(b), depth, parent))
        if (is_zip(b) or b[:2] == b"\x1f\x8b") and depth < max_depth:
            out.extend(truth_members(b, depth + 1, sha(b), max_depth))
    return out


def read(path):
    with open(path, "rb") as f:
        return f.read()


def seven(args, cwd):
    subprocess.run([SEVEN] + args, cwd=cwd, check=True, capture_output=True)


def with_7z_dictionary(z, dict_size):
    """A 7z whose (plain, -mhc=off) header's LZMA coder declares `dict_size`: the coder's
    properties rewritten, the next header's and the start header's CRC32 redone (7zFormat.txt)."""
    z = bytearray(z)
    offset, size = int.from_bytes(z[12:20], "little"), int.from_bytes(z[20:28], "little")
    header = 32 + offset
    at = z.find(b"\x03\x01\x01\x05", header)  # LZMA's method ID, then 5 property bytes
    assert at > 0, "no LZMA coder in a plain header"
    z[at + 5:at + 9] = dict_size.to_bytes(4, "little")
    z[28:32] = zlib.crc32(z[header:header + size]).to_bytes(4, "little")
    z[8:12] = zlib.crc32(z[12:32]).to_bytes(4, "little")
    return bytes(z)


class Archives(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(CLAM):
            raise AssertionError(CLAM + " missing: scripts/setup installs clamav-testfiles")
        if not SEVEN:
            raise AssertionError("7zz missing: scripts/setup installs 7zip")
        cls.tmp = tempfile.mkdtemp(prefix="sluice-archives-")
        cls.clam_exe = read(os.path.join(CLAM, "clam.exe"))
        a = {}  # attachment name -> bytes
        inner2 = zip_bytes([("z.bin", os.urandom(3000))])
        inner = zip_bytes([("deep.txt", b"deep text\n" * 50), ("inner2.zip", inner2)])
        a["nested.zip"] = zip_bytes([("a.txt", b"hello\n" * 100), ("dir/b.bin", os.urandom(20000)),
                                     ("inner.zip", inner)])
        a["data.tar.gz"] = tar_gz_bytes([("docs/readme.txt", b"read me\n" * 30), ("bin/tool", cls.clam_exe)])
        # 7z and encrypted archives with the 7-Zip tool; ground truth: the files written.
        work = os.path.join(cls.tmp, "7z")
        os.makedirs(work)
        cls.seven_files = {"one.txt": b"first file\n" * 40, "two.bin": os.urandom(9000)}
        for name, data in cls.seven_files.items():
            with open(os.path.join(work, name), "wb") as f:
                f.write(data)
        seven(["a", "-t7z", "plain.7z", "one.txt", "two.bin"], work)
        seven(["a", "-tzip", "-psecret", "enc.zip", "one.txt"], work)
        seven(["a", "-t7z", "-psecret", "-mhe=on", "enc.7z", "one.txt"], work)
        seven(["a", "-t7z", "-m0=LZMA", "-mhc=off", "lzma.7z", "one.txt", "two.bin"], work)
        a["plain.7z"] = read(os.path.join(work, "plain.7z"))
        a["huge-dictionary.7z"] = with_7z_dictionary(read(os.path.join(work, "lzma.7z")), 0xFFFFFFFF)
        a["dictionary-64m.7z"] = with_7z_dictionary(read(os.path.join(work, "lzma.7z")), 64 << 20)
        a["enc.zip"] = read(os.path.join(work, "enc.zip"))
        a["enc.7z"] = read(os.path.join(work, "enc.7z"))
        # Bombs: 64 MiB of zeros (ratio ~1000 against the default 100), and zips nested 8 deep
        # (default depth 5).
        a["ratio-bomb.zip"] = zip_bytes([("zeros.bin", b"\0" * (64 << 20))])
        deep = b"bottom\n"
        for level in range(8):
            deep = zip_bytes([(f"level{level}.zip" if level else "bottom.txt", deep)])
        a["depth-bomb.zip"] = deep
        # A stream libarchive reads as an empty tar (its end blocks are zeros): the PE behind them,
        # and 64 MiB of zeros behind them.
        a["zero-led.gz"] = gzip.compress(b"\0" * 1024 + cls.clam_exe)
        a["zero-bomb.gz"] = gzip.compress(b"\0" * (64 << 20))
        whole = zip_bytes([("first.bin", os.urandom(30000)), ("second.bin", os.urandom(30000))], zipfile.ZIP_STORED)
        a["truncated.zip"] = whole[: len(whole) // 2]
        # The clamav samples: archives holding clam.exe, documents, an executable.
        for name in ("clam.zip", "clam.7z", "clam.cab", "clam.tar.gz", "clam.exe.bz2", "clam.exe",
                     "clam.pdf", "clam.ole.doc", "clam.ppt", "clam.exe.rtf"):
            a["sample-" + name] = read(os.path.join(CLAM, name))
        # A PE named invoice.pdf and declared application/pdf.
        a["invoice.pdf"] = cls.clam_exe
        cls.attachments = a

        sessions, port = [], 42000
        for i, (name, data) in enumerate(sorted(a.items())):
            m = EmailMessage(policy=email.policy.SMTP)
            m["From"], m["To"], m["Subject"] = "sender@example.org", "rcpt@example.net", name
            m.set_content("see attachment\n")
            ctype = ("application", "pdf") if name == "invoice.pdf" else ("application", "octet-stream")
            m.add_attachment(data, maintype=ctype[0], subtype=ctype[1], filename=name)
            conv = tcpgen.Conversation(client="192.0.2.10", server="192.0.2.20", cport=port + i)
            tcpgen.smtp_session(conv, [("sender@example.org", ["rcpt@example.net"], m.as_bytes())])
            sessions.append(conv.frames)
        frames = [f for s in sessions for f in s]
        cfg = os.path.join(cls.tmp, "workers.yaml")
        with open(cfg, "w") as f:
            f.write("lcores:\n  rx: [1]\n  workers: [2]\n")
        cls.ev = sluiced.replay_frames(frames, cls.tmp, "archives", args=["--config", cfg], timeout=300)
        cls.files = [e["file"] for e in cls.ev.of("file")]
        # The same capture with two worker lcores (attachments spread by id) and with none (the RX
        # lcore does the work): the same events.
        for name, workers in (("two", "[2, 3]"), ("none", "[]")):
            other = os.path.join(cls.tmp, name + ".yaml")
            with open(other, "w") as f:
                f.write("lcores:\n  rx: [1]\n  workers: %s\n" % workers)
            ev = sluiced.replay_frames(frames, cls.tmp, "archives-" + name, args=["--config", other], timeout=300)
            setattr(cls, "files_" + name, [e["file"] for e in ev.of("file")])
            setattr(cls, "stats_" + name, ev.stats)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def attachment(self, name):
        got = [f for f in self.files if f.get("filename") == name and "parent_sha256" not in f]
        self.assertEqual(len(got), 1, f"{name}: {got}")
        return got[0]

    def members(self, name):
        top = sha(self.attachments[name])
        # Members of this attachment: their parent chain leads to it (parents precede children).
        shas, out = {top}, []
        for f in self.files:
            if "parent_sha256" in f and f["parent_sha256"] in shas and f.get("archive_filename") == name:
                out.append(f)
                if "sha256" in f:
                    shas.add(f["sha256"])
        return out

    def test_every_attachment_hashed_by_the_worker(self):
        for name, data in self.attachments.items():
            with self.subTest(name=name):
                f = self.attachment(name)
                self.assertEqual(f["sha256"], sha(data))
                self.assertEqual(f["size"], len(data))
        stats = self.ev.stats
        worker = [l for l in stats["lcores"] if l["role"] == "worker"]
        self.assertEqual(len(worker), 1)
        self.assertGreaterEqual(worker[0]["worker"]["attachments"], len(self.attachments))

    def test_same_events_with_two_workers_and_without_workers(self):
        key = lambda f: json.dumps(f, sort_keys=True)
        self.assertEqual(sorted(map(key, self.files_two)), sorted(map(key, self.files)))
        self.assertEqual(sorted(map(key, self.files_none)), sorted(map(key, self.files)))
        roles = [l["role"] for l in self.stats_two["lcores"]]
        self.assertEqual(roles, ["rx", "worker", "worker"])
        # Both workers got attachments.
        self.assertTrue(all(l["worker"]["attachments"] > 0 for l in self.stats_two["lcores"][1:]))
        self.assertEqual([l["role"] for l in self.stats_none["lcores"]], ["rx"])
        self.assertEqual(self.stats_none["lcores"][0]["worker"]["attachments"], len(self.attachments))

    def test_zip_and_tar_members_match_python(self):
        for name in ("nested.zip", "data.tar.gz"):
            with self.subTest(name=name):
                got = sorted((m["filename"], m["size"], m["sha256"], m["depth"], m["parent_sha256"])
                             for m in self.members(name))
                self.assertEqual(got, sorted(truth_members(self.attachments[name])))
                self.assertNotIn("unscannable", self.attachment(name))
        self.assertEqual(self.attachment("nested.zip")["file_type"], "zip")
        tool = [m for m in self.members("data.tar.gz") if m["filename"] == "bin/tool"]
        self.assertEqual(tool[0]["file_type"], "pe")

    def test_7z_members(self):
        got = {m["filename"]: m["sha256"] for m in self.members("plain.7z")}
        self.assertEqual(got, {n: sha(b) for n, b in self.seven_files.items()})
        self.assertEqual(self.attachment("plain.7z")["file_type"], "7z")

    def test_encrypted_archives_are_unscannable(self):
        for name in ("enc.zip", "enc.7z"):
            with self.subTest(name=name):
                f = self.attachment(name)
                self.assertEqual(f["unscannable"], "encrypted")
                self.assertIn(f["file_type"], ("zip", "7z"))

    def test_bombs_stop_at_their_limits(self):
        ratio = self.attachment("ratio-bomb.zip")
        self.assertEqual(ratio["unscannable"], "limit_exceeded")
        depth = self.attachment("depth-bomb.zip")
        self.assertEqual(depth["unscannable"], "limit_exceeded")
        levels = [m["depth"] for m in self.members("depth-bomb.zip")]
        self.assertEqual(max(levels), 5, "members are listed down to archives.max_depth")

    def test_truncated_zip(self):
        f = self.attachment("truncated.zip")
        self.assertEqual(f["unscannable"], "extraction_failed")
        self.assertEqual(f["file_type"], "zip")

    def test_zero_led_stream_is_its_decompressed_stream(self):
        f = self.attachment("zero-led.gz")
        self.assertEqual(f["file_type"], "gzip")
        self.assertNotIn("unscannable", f)
        members = self.members("zero-led.gz")
        self.assertEqual([(m["filename"], m["size"], m["sha256"], m["depth"]) for m in members],
                         [("data", 1024 + len(self.clam_exe), sha(b"\0" * 1024 + self.clam_exe), 1)])
        bomb = self.attachment("zero-bomb.gz")
        self.assertEqual(bomb["unscannable"], "limit_exceeded")
        self.assertIn("max_ratio 100 reached", bomb["unscannable_detail"])

    def test_huge_declared_dictionary_is_refused_before_reading(self):
        f = self.attachment("huge-dictionary.7z")
        self.assertEqual(f["file_type"], "7z")
        self.assertEqual(f["sha256"], sha(self.attachments["huge-dictionary.7z"]))
        self.assertEqual(f["unscannable"], "limit_exceeded")
        self.assertEqual(f["unscannable_detail"],
                         "max_decoder_bytes 128 MiB: 7z LZMA dictionary of 4097 MiB, not read (depth 1)")
        self.assertEqual(self.members("huge-dictionary.7z"), [])
        # 64 MiB (what 7-Zip's ultra preset declares) is read.
        got = {m["filename"]: m["sha256"] for m in self.members("dictionary-64m.7z")}
        self.assertEqual(got, {n: sha(b) for n, b in self.seven_files.items()})
        self.assertNotIn("unscannable", self.attachment("dictionary-64m.7z"))
        worker = [l for l in self.ev.stats["lcores"] if l["role"] == "worker"][0]["worker"]
        self.assertEqual(worker["decoder_memory_refused"], 1)

    def test_clamav_samples(self):
        clam = sha(self.clam_exe)
        for name in ("clam.zip", "clam.7z", "clam.cab", "clam.tar.gz", "clam.exe.bz2"):
            with self.subTest(name=name):
                shas = [m.get("sha256") for m in self.members("sample-" + name)]
                self.assertIn(clam, shas)
        types = {"clam.exe": "pe", "clam.pdf": "pdf", "clam.ole.doc": "doc", "clam.ppt": "ppt", "clam.exe.rtf": "rtf",
                 "clam.zip": "zip", "clam.7z": "7z", "clam.cab": "cab", "clam.tar.gz": "gzip", "clam.exe.bz2": "bzip2"}
        for name, t in types.items():
            with self.subTest(name=name):
                self.assertEqual(self.attachment("sample-" + name)["file_type"], t)

    def test_type_mismatch(self):
        f = self.attachment("invoice.pdf")
        self.assertEqual(f["file_type"], "pe")
        self.assertEqual(f["type_mismatch"], ["extension", "content_type"])
        self.assertNotIn("type_mismatch", self.attachment("nested.zip"))


if __name__ == "__main__":
    unittest.main()
