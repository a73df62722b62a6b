#!/usr/bin/python3
"""Writes stored4.rar (RAR 4.x) and stored5.rar (RAR 5.0) beside this script, built by hand from the
format descriptions (RAR 3.x/4.x technote.txt; "RAR 5.0 archive format" on rarlab.com), because no
RAR writer is available here (rar is non-free, libarchive reads RAR but cannot write it). Every
member is stored (RAR 4 method 0x30, RAR 5 compression method 0), so the archives are readable by
any RAR reader without a decompressor.

Both hold the same two files, "hello.txt" then "dir/data.bin", and nothing else. Three variants
add the directory "dir" as its own entry between the two files, as archivers record a folder:
stored4_dir.rar, stored5_dir.rar, and stored5_dir_no_data_area.rar, whose directory header leaves
out the data area (header flag 0x0002 clear, no "Data size" field), which the RAR 5.0 format allows
("Optional field, present only if 0x0002 header flag is set"). Every other RAR 5 file header sets
the flag, with a data size of 0 for the directory, because libarchive 3.6.2 refuses a file header
without it ("no data found in file/service block", a fatal error).

Prints, for every regular file, the line `path size sha256` that
tests/unit/pipeline/archive_test.cpp holds as constants, and the size of each archive.
Deterministic: fixed contents and dates, the same bytes on every run.

    /usr/bin/python3 make_rar_samples.py            # write the archives, print the ground truth
    /usr/bin/python3 make_rar_samples.py --verify   # also read them back with libarchive (ctypes)
"""
import ctypes
import ctypes.util
import hashlib
import os
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_python_samples import stream  # noqa: E402  (the same reproducible bytes)

HERE = os.path.dirname(os.path.abspath(__file__))


HELLO = b"".join(b"hello from a stored RAR member, line %d\n" % i for i in range(12))
DATA = stream("rar-data", 5000)
FILES = [("hello.txt", HELLO), ("dir/data.bin", DATA)]  # regular files, in archive order
DIRECTORY = "dir"  # stored between the two files, as its own entry

# 2024-01-02 03:04:06 UTC: DOS date/time for RAR 4 (2-second resolution), Unix time for RAR 5.
YEAR, MONTH, DAY, HOUR, MINUTE, SECOND = 2024, 1, 2, 3, 4, 6
UNIX_TIME = 1704164646


def crc32(b: bytes) -> int:
    return zlib.crc32(b) & 0xFFFFFFFF


# ---- RAR 4.x ------------------------------------------------------------------------------------
# Every block: HEAD_CRC (2), HEAD_TYPE (1), HEAD_FLAGS (2), HEAD_SIZE (2), then the type's fields.
# HEAD_CRC is the low 16 bits of the CRC32 of the header from HEAD_TYPE to its end (HEAD_SIZE
# bytes in all, HEAD_CRC included). A file header's data (PACK_SIZE bytes) follows the header.

RAR4_MARKER = b"Rar!\x1a\x07\x00"  # itself a block: CRC 0x6152, type 0x72, flags 0x1a21, size 7
MAIN_HEAD, FILE_HEAD, ENDARC_HEAD = 0x73, 0x74, 0x7B
LONG_BLOCK = 0x8000            # ADD_SIZE present (for a file header: PACK_SIZE); always set in one
SKIP_IF_UNKNOWN = 0x4000       # older versions ignore the block
LHD_DIRECTORY = 0x00E0         # dictionary bits 7 6 5 all set: the entry is a directory
LHD_WINDOW_64K = 0x0000        # dictionary bits 0 0 0: 64 KB (irrelevant for stored data)
HOST_WIN32 = 2
ATTR_ARCHIVE, ATTR_DIRECTORY = 0x20, 0x10  # MS-DOS/Windows attributes (HOST_OS 2)
UNP_VER = 29                   # RAR 2.9 (3.x) format
METHOD_STORE = 0x30


def rar4_block(head_type: int, flags: int, fields: bytes) -> bytes:
    head_size = 7 + len(fields)
    rest = struct.pack("<BHH", head_type, flags, head_size) + fields
    return struct.pack("<H", crc32(rest) & 0xFFFF) + rest


def dos_datetime() -> int:
    date = (YEAR - 1980) << 9 | MONTH << 5 | DAY
    time = HOUR << 11 | MINUTE << 5 | SECOND // 2
    return date << 16 | time


def rar4_file(name: str, data: bytes, directory: bool = False) -> bytes:
    # RAR 4 archives made on Windows store "\" between path components.
    raw_name = name.replace("/", "\\").encode("ascii")
    flags = LONG_BLOCK | (LHD_DIRECTORY if directory else LHD_WINDOW_64K)
    fields = struct.pack(
        "<IIBIIBBHI",
        len(data),                # PACK_SIZE (stored: the data itself)
        len(data),                # UNP_SIZE
        HOST_WIN32,               # HOST_OS
        crc32(data),              # FILE_CRC
        dos_datetime(),           # FTIME
        UNP_VER if not directory else 20,  # UNP_VER
        METHOD_STORE,             # METHOD
        len(raw_name),            # NAME_SIZE
        ATTR_DIRECTORY if directory else ATTR_ARCHIVE,  # ATTR
    ) + raw_name
    return rar4_block(FILE_HEAD, flags, fields) + data


def make_rar4(with_directory: bool = False) -> bytes:
    out = bytearray(RAR4_MARKER)
    out += rar4_block(MAIN_HEAD, 0, struct.pack("<HI", 0, 0))  # RESERVED1 (2), RESERVED2 (4)
    out += rar4_file(*FILES[0])
    if with_directory:
        out += rar4_file(DIRECTORY, b"", directory=True)
    out += rar4_file(*FILES[1])
    out += rar4_block(ENDARC_HEAD, SKIP_IF_UNKNOWN, b"")
    return bytes(out)


# ---- RAR 5.0 ------------------------------------------------------------------------------------
# Every header: CRC32 (uint32) of the header from "Header size" to its end; Header size (vint: bytes
# from Header type to the end of the extra area); Header type (vint); Header flags (vint); [Extra
# area size (vint), flag 0x0001]; [Data size (vint), flag 0x0002]; the type's fields; [extra area];
# then the data area. vint: 7 bits per byte, low bits first, high bit set on all but the last byte.

RAR5_SIGNATURE = b"Rar!\x1a\x07\x01\x00"
HEAD_MAIN, HEAD_FILE, HEAD_END = 1, 2, 5
HFL_DATA = 0x0002
FILE_DIRECTORY, FILE_UTIME, FILE_CRC32 = 0x0001, 0x0002, 0x0004
HOST5_WINDOWS = 0
COMP_VERSION = 0       # bits 0-5: algorithm version 0 (RAR 5.0)
COMP_METHOD_STORE = 0  # bits 7-9: 0 = no compression
COMP_DICT_128K = 0     # bits 10-13: dictionary 128 KB << N


def vint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def rar5_header(head_type: int, flags: int, fields: bytes, data: bytes = b"", data_area: bool = False) -> bytes:
    """data_area: write the Data size field (header flag 0x0002) even when data is empty."""
    data_area = data_area or bool(data)
    body = vint(head_type) + vint(flags | (HFL_DATA if data_area else 0))
    if data_area:
        body += vint(len(data))
    body += fields
    sized = vint(len(body)) + body
    return struct.pack("<I", crc32(sized)) + sized + data


def rar5_file(name: str, data: bytes, directory: bool = False, data_area: bool = True) -> bytes:
    file_flags = FILE_UTIME | (FILE_DIRECTORY if directory else FILE_CRC32)
    compression = COMP_VERSION | COMP_METHOD_STORE << 7 | COMP_DICT_128K << 10
    fields = vint(file_flags) + vint(len(data))                       # file flags, unpacked size
    fields += vint(ATTR_DIRECTORY if directory else ATTR_ARCHIVE)      # attributes (Windows host)
    fields += struct.pack("<I", UNIX_TIME)                             # mtime (FILE_UTIME)
    if not directory:
        fields += struct.pack("<I", crc32(data))                       # data CRC32 (FILE_CRC32)
    fields += vint(compression) + vint(HOST5_WINDOWS)
    raw_name = name.encode("utf-8")                                    # "/" on every host
    fields += vint(len(raw_name)) + raw_name
    return rar5_header(HEAD_FILE, 0, fields, data, data_area)


def make_rar5(with_directory: bool = False, directory_data_area: bool = True) -> bytes:
    out = bytearray(RAR5_SIGNATURE)
    out += rar5_header(HEAD_MAIN, 0, vint(0))  # archive flags: not a volume, not solid
    out += rar5_file(*FILES[0])
    if with_directory:
        out += rar5_file(DIRECTORY, b"", directory=True, data_area=directory_data_area)
    out += rar5_file(*FILES[1])
    out += rar5_header(HEAD_END, 0, vint(0))   # end of archive flags: last volume
    return bytes(out)


# ---- reading back with libarchive (--verify) ------------------------------------------------------

def libarchive_list(blob: bytes):
    """[(path, size, bytes)] of the regular files libarchive reads from blob, and its last error."""
    path = ctypes.util.find_library("archive") or "libarchive.so.13"
    la = ctypes.CDLL(path)
    la.archive_read_new.restype = ctypes.c_void_p
    la.archive_error_string.restype = ctypes.c_char_p
    la.archive_error_string.argtypes = [ctypes.c_void_p]
    la.archive_entry_pathname.restype = ctypes.c_char_p
    la.archive_entry_pathname.argtypes = [ctypes.c_void_p]
    la.archive_entry_size.restype = ctypes.c_int64
    la.archive_entry_size.argtypes = [ctypes.c_void_p]
    la.archive_entry_filetype.restype = ctypes.c_uint
    la.archive_entry_filetype.argtypes = [ctypes.c_void_p]
    la.archive_read_open_memory.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    la.archive_read_next_header.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p)]
    la.archive_read_data.restype = ctypes.c_ssize_t
    la.archive_read_data.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t]
    for f in ("archive_read_support_format_rar", "archive_read_support_format_rar5", "archive_read_free"):
        getattr(la, f).argtypes = [ctypes.c_void_p]
    a = la.archive_read_new()
    la.archive_read_support_format_rar(a)
    la.archive_read_support_format_rar5(a)
    buf = ctypes.create_string_buffer(blob, len(blob))
    members, error = [], None
    if la.archive_read_open_memory(a, buf, len(blob)) != 0:
        error = la.archive_error_string(a)
    else:
        entry = ctypes.c_void_p()
        while True:
            r = la.archive_read_next_header(a, ctypes.byref(entry))
            if r == 1:  # ARCHIVE_EOF
                break
            if r < -10:  # below ARCHIVE_WARN
                error = la.archive_error_string(a)
                break
            name = la.archive_entry_pathname(entry).decode("utf-8", "replace")
            if la.archive_entry_filetype(entry) != 0o100000:
                members.append((name + " (not a file)", la.archive_entry_size(entry), b""))
                continue
            data = bytearray()
            chunk = ctypes.create_string_buffer(65536)
            while True:
                n = la.archive_read_data(a, chunk, len(chunk))
                if n < 0:
                    error = la.archive_error_string(a)
                    break
                if n == 0:
                    break
                data += chunk.raw[:n]
            members.append((name, la.archive_entry_size(entry), bytes(data)))
            if error:
                break
    la.archive_read_free(a)
    return members, error


def main() -> None:
    archives = {
        "stored4.rar": make_rar4(),
        "stored5.rar": make_rar5(),
        "stored4_dir.rar": make_rar4(with_directory=True),
        "stored5_dir.rar": make_rar5(with_directory=True),
        "stored5_dir_no_data_area.rar": make_rar5(with_directory=True, directory_data_area=False),
    }
    for fname, blob in archives.items():
        with open(os.path.join(HERE, fname), "wb") as f:
            f.write(blob)
        print(f"{fname} {len(blob)} bytes")
        for name, data in FILES:
            print(f"  {name!r} {len(data)} {hashlib.sha256(data).hexdigest()}")
    if "--verify" not in sys.argv[1:]:
        return
    ok = True
    for fname, blob in archives.items():
        members, error = libarchive_list(blob)
        print(f"libarchive {fname}: error={error!r}")
        for name, size, data in members:
            print(f"  {name} {size} {hashlib.sha256(data).hexdigest() if data else '-'}")
        got = [(n, s, d) for n, s, d in members if not n.endswith("(not a file)")]
        if fname == "stored5_dir_no_data_area.rar":  # libarchive 3.6.2 stops at the directory's header
            ok &= error == b"no data found in file/service block" and got == [(n, len(d), d) for n, d in FILES[:1]]
        else:
            ok &= error is None and got == [(n, len(d), d) for n, d in FILES]
    print("verify:", "ok" if ok else "MISMATCH")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
