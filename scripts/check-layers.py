#!/usr/bin/env python3
"""Checks that every #include in src/ points down the Heartwood's layers, never up.

    scripts/check-layers.py [--root src] [--known scripts/layers-known.txt] [--list]

The rooms, bottom to top (docs/architecture.md draws them):

    lib -> arch interface -> time -> sync primitives -> mm -> sched -> blocking primitives
        -> drivers -> kernel (boot flow, shell) -> diag (ktests, stress, workloads, faults)

A file may include headers of its own room and of the rooms that ROOM_MAY_USE names for it.
arch/x86_64 is the platform: it implements the arch interface and may use the generic rooms
below the scheduler's callers; only drivers and kernel may reach into it. diag is src/diag and
every subsystem's ktests/ folder: it is linked only into the test image, and the kernel reaches it
only through kernel/diagnostics.h.

Edges that are wrong today and not yet untangled are listed, one `file -> header` per line,
in the known-edges file. The check fails on any wrong edge that is not listed (a new one), and
on any listed edge that no longer exists (so the list only ever shrinks). Exit status: 0 clean,
1 a violation, 2 a usage error.
"""
import argparse
import os
import re
import sys

ROOMS = ["lib", "arch", "arch/x86_64", "time", "sync", "mm", "sched", "blocking", "drivers", "kernel", "diag"]

# Which other rooms each room may include from.
ROOM_MAY_USE = {
    "lib": set(),
    # The interface headers pick their inline implementation (arch/cpu.h -> arch/x86_64/cpu_inline.h).
    "arch": {"lib", "arch/x86_64"},
    "arch/host": {"lib", "arch"},
    "arch/x86_64": {"lib", "arch", "time", "sync", "mm"},
    "time": {"lib", "arch"},
    "sync": {"lib", "arch", "time"},
    "mm": {"lib", "arch", "time", "sync"},
    "sched": {"lib", "arch", "time", "sync", "mm"},
    "blocking": {"lib", "arch", "time", "sync", "mm", "sched"},
    "drivers": {"lib", "arch", "arch/x86_64", "time", "sync", "mm", "sched", "blocking"},
    "kernel": {"lib", "arch", "arch/x86_64", "time", "sync", "mm", "sched", "blocking", "drivers"},
    "diag": {"lib", "arch", "arch/x86_64", "time", "sync", "mm", "sched", "blocking", "drivers", "kernel"},
}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def room_of(path):
    """The room of a path relative to src/, or None for a file outside every room."""
    parts = path.split("/")
    if parts[0] == "diag" or "ktests" in parts[:-1]:
        return "diag"
    if parts[0] == "arch":
        if len(parts) > 2 and parts[1] in ("x86_64", "host"):
            return "arch/" + parts[1]
        return "arch"
    if parts[0] in ROOM_MAY_USE:  # lib, time, sync, mm, sched, blocking, drivers, kernel
        return parts[0]
    return None


def wrong_edges(root):
    """Every (file, header, file's room, header's room) whose include points the wrong way."""
    found = []
    for directory, _, files in os.walk(root):
        for name in sorted(files):
            if not name.endswith((".h", ".cpp", ".S")):
                continue
            full = os.path.join(directory, name)
            source = os.path.relpath(full, root).replace(os.sep, "/")
            source_room = room_of(source)
            if source_room is None:
                continue
            with open(full, encoding="utf-8", errors="replace") as f:
                for line in f:
                    m = INCLUDE.match(line)
                    if not m:
                        continue
                    header = m.group(1)
                    header_room = room_of(header)
                    if header_room is None or header_room == source_room:
                        continue
                    if header_room not in ROOM_MAY_USE[source_room]:
                        found.append((source, header, source_room, header_room))
    return sorted(found)


def read_known(path):
    known = set()
    if not os.path.exists(path):
        return known
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            if "->" not in line:
                print(f"check-layers: {path}:{number}: expected 'file -> header', found '{line}'", file=sys.stderr)
                sys.exit(2)
            source, header = (part.strip() for part in line.split("->", 1))
            known.add((source, header))
    return known


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(here, "..", "src"))
    parser.add_argument("--known", default=os.path.join(here, "layers-known.txt"))
    parser.add_argument("--list", action="store_true", help="print every wrong edge as a known-edges line")
    args = parser.parse_args()
    if not os.path.isdir(args.root):
        print(f"check-layers: '{args.root}' is not a directory", file=sys.stderr)
        return 2

    edges = wrong_edges(args.root)
    if args.list:
        for source, header, _, _ in edges:
            print(f"{source} -> {header}")
        return 0

    known = read_known(args.known)
    status = 0
    for source, header, source_room, header_room in edges:
        if (source, header) in known:
            continue
        allowed = ", ".join(r for r in ROOMS if r in ROOM_MAY_USE[source_room]) or "nothing outside itself"
        print(f"check-layers: src/{source} ({source_room}) includes {header} ({header_room}): a wrong-way "
              f"dependency; {source_room} may use {allowed}", file=sys.stderr)
        status = 1
    present = {(source, header) for source, header, _, _ in edges}
    for source, header in sorted(known - present):
        print(f"check-layers: src/{source} -> {header} is listed in {os.path.basename(args.known)} but no "
              f"longer a wrong edge: delete the line", file=sys.stderr)
        status = 1
    if status == 0:
        print(f"check-layers: every include points down ({len(edges)} known wrong edges left to untangle)")
    return status


if __name__ == "__main__":
    sys.exit(main())
