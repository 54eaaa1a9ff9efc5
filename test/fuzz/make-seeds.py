#!/usr/bin/env python3
"""Writes the fuzzers' constructed seed inputs into test/fuzz/corpus/<fuzzer>/ (deterministic).

Not made here: the GRUB Multiboot2 blobs (corpus/multiboot2/grub-*.bin), real captures made
with capture-multiboot2.sh, and regress-*.bin files, inputs that once found a bug, kept so that
every run replays them. Run from anywhere: python3 test/fuzz/make-seeds.py
"""
import pathlib
import random
import struct

CORPUS = pathlib.Path(__file__).resolve().parent / "corpus"


def write(fuzzer, name, data):
    d = CORPUS / fuzzer
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data if isinstance(data, bytes) else data.encode("latin-1"))


# Operation-driven harnesses: any bytes are a valid program; a few lengths give libFuzzer room.
def op_seeds():
    for fuzzer in ("buddy", "slab", "heap"):
        rng = random.Random(fuzzer)
        for size in (64, 512, 2048, 4096):
            write(fuzzer, f"random-{size}.bin", bytes(rng.randrange(256) for _ in range(size)))


# Multiboot2, laid out as GRUB does (tags padded to 8 bytes), like test/unit/test_multiboot2.cpp.
def tag(kind, payload):
    out = struct.pack("<II", kind, 8 + len(payload)) + payload
    return out + b"\0" * (-len(out) % 8)


def mmap(entries, entry_size=24, version=0):
    body = struct.pack("<II", entry_size, version)
    for base, length, kind in entries:
        body += struct.pack("<QQII", base, length, kind, 0) + b"\xee" * (entry_size - 24)
    return tag(6, body)


def fb(addr, pitch, w, h, bpp, kind, extra=b""):
    return tag(8, struct.pack("<QIIIBBH", addr, pitch, w, h, bpp, kind, 0) + extra)


def rsdp_v1():
    b = bytearray(b"RSD PTR " + b"\0" + b"BOCHS " + b"\0" + struct.pack("<I", 0x07FE14D2))
    b[8] = -sum(b) & 0xFF
    return bytes(b)


def rsdp_v2():
    b = bytearray(b"RSD PTR " + b"\0" + b"OVMF  " + b"\x02" + struct.pack("<IIQ", 0x7FB7E014, 36, 0x7FB7E0E8) + b"\0\0\0\0")
    b[8] = -sum(b[:20]) & 0xFF
    b[32] = -sum(b) & 0xFF
    return bytes(b)


def blob(*tags, end=True):
    body = b"".join(tags) + (struct.pack("<II", 0, 8) if end else b"")
    return struct.pack("<II", 8 + len(body), 0) + body


def multiboot2_seeds():
    bios_map = [(0x0, 0x9FC00, 1), (0x9FC00, 0x400, 2), (0xF0000, 0x10000, 2), (0x100000, 0x7EE0000, 1),
                (0x7FE0000, 0x20000, 2), (0xFFFC0000, 0x40000, 2)]
    write("multiboot2", "built-modules-rgb.bin", blob(
        tag(1, b"log=debug hz=100 ktest=mm.*\0"), tag(2, b"GRUB 2.06\0"),
        tag(3, struct.pack("<II", 0x200000, 0x201000) + b"initrd.tar\0"),
        tag(3, struct.pack("<II", 0x300000, 0x300000) + b"\0"),
        tag(4, struct.pack("<II", 639, 129920)), tag(5, struct.pack("<III", 0x80, 0xFFFFFFFF, 0xFFFFFFFF)),
        mmap(bios_map, entry_size=32, version=0),
        fb(0xFD000000, 4096, 1024, 768, 32, 1, bytes([16, 8, 8, 8, 0, 8])),
        tag(14, rsdp_v1()), tag(15, rsdp_v2()), tag(12, struct.pack("<Q", 0x7F9EE018)), tag(18, b""),
        tag(21, struct.pack("<I", 0x100000)), tag(42, b"unknown tags are skipped")))
    write("multiboot2", "built-indexed-fb.bin", blob(
        mmap([(0x0, 0xA0000, 1), (0x100000, 0x3FF00000, 1), (0x40000000, 0x1000, 5), (0x40001000, 0x1000, 9)]),
        fb(0xA0000, 320, 320, 200, 8, 0, struct.pack("<H", 4) + bytes(range(12)))))
    write("multiboot2", "built-ega-text.bin", blob(tag(1, b"\0"), mmap(bios_map), fb(0xB8000, 160, 80, 25, 16, 2)))
    write("multiboot2", "bad-overlap.bin", blob(mmap([(0x0, 0x200000, 1), (0x100000, 0x1000, 2)])))
    write("multiboot2", "bad-no-end.bin", blob(mmap(bios_map), end=False))


def text_seeds():
    for i, line in enumerate([
        "",
        "log=debug hz=100",
        "/boot/aethelos.elf ktest=mm.* stress=20 fault=null_deref",
        "ktest log=TRACE hz=19 hz=10000 stress=86400",
        "hz=18 hz=10001 hz=abc hz= hz log log=loud stress=0 stress=99999999999999999999999 fault=nope foo=1 =x",
        "ktest=" + "x" * 80 + "\t\nlog=warning\r\fhz=250\vstress=1",
    ]):
        write("cmdline", f"line-{i}.txt", line)
    for i, line in enumerate([
        "echo hello world",
        "echo \"a \\\"quoted\\\" \\\\ word\" 'single $quoted' bare\\ space \"\"",
        "nice 3 -5\t\tthreads",
        " ".join(str(n) for n in range(17)),
        "echo 'unterminated",
        "echo trailing\\",
        "a" * 257,
    ]):
        write("shell_parser", f"line-{i}.txt", line)
    for i, stream in enumerate([
        "help\r",
        "ec\t hi there\rhar\t\r",
        "echo one\r\necho two\rx\x1b[A\x1b[A\x1b[B\x1b[B\r",
        "abcdef\x1b[D\x1b[D\x1b[3~\x7f\x08\x01X\x05Y\x1b[H\x1b[F\x1b[1~\x1b[4~\x1bOH\x1bOF\r",
        "nice 1\rnice 1 2\rmem\rps\rhelp nice\rnosuch\rhel\r\x03\x0c" + "z" * 300 + "\r",
        "t\t\th\t\x1b[99;5Z\x1b[7~\x1b[8~\x1b\x1b[C\r",
    ]):
        write("eldarin", f"keys-{i}.bin", stream)


if __name__ == "__main__":
    op_seeds()
    multiboot2_seeds()
    text_seeds()
