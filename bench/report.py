#!/usr/bin/env python3
"""Markdown tables from aethelos_bench's Google Benchmark JSON (medians only).

    python3 bench/report.py build/bench/mana_pool.json

Used to produce the tables in docs/performance.md. Times are CPU time per
operation in ns, cycles are TSC ticks (see bench/bench_support.h).
"""
import json
import re
import sys

SLAB_SIZES = [16, 32, 64, 128, 256, 512, 1024, 2048]
MEDIUM_SIZES = [4096, 16384, 65536]
ALLOCATORS = ["slab", "heap", "mimalloc", "jemalloc", "glibc"]


def load(path):
    with open(path) as f:
        data = json.load(f)
    medians = {}
    for b in data["benchmarks"]:
        if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
            continue
        if b.get("error_occurred"):
            continue
        name = re.sub(r"(/min_time:[^/]+)?/repeats:\d+$", "", b["run_name"])
        medians[name] = b
    return data["context"], medians


def fmt(value, digits=1):
    return "–" if value is None else f"{value:.{digits}f}"


def cpu(medians, name):
    b = medians.get(name)
    return None if b is None else b["cpu_time"]


def cycles(medians, name):
    b = medians.get(name)
    return None if b is None or "cycles" not in b else b["cycles"]


def pair_ns(medians, name):
    b = medians.get(name)
    return None if b is None or "pair_time" not in b else b["pair_time"] * 1e9


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(out)


def main():
    context, m = load(sys.argv[1] if len(sys.argv) > 1 else "build/bench/mana_pool.json")
    print(f"<!-- {context.get('date')} on {context.get('host_name')}, {context.get('num_cpus')} CPUs, "
          f"tsc {context.get('tsc_mhz')} MHz, {context.get('repetitions')} repetitions -->\n")

    print("### Alloc+free pair, ns (cycles)\n")
    rows = []
    for size in SLAB_SIZES + MEDIUM_SIZES:
        row = [f"{size} B"]
        for a in ALLOCATORS:
            name = f"pair/{size}/{a}"
            c = cpu(m, name)
            row.append("–" if c is None else f"{c:.2f} ({fmt(cycles(m, name))})")
        rows.append(row)
    print(table(["size"] + ALLOCATORS, rows))

    print("\n### Batch of 128 allocations then 128 frees, ns per pair (cycles)\n")
    rows = []
    for size in SLAB_SIZES + MEDIUM_SIZES:
        row = [f"{size} B"]
        for a in ALLOCATORS:
            name = f"batch/{size}/{a}"
            p = pair_ns(m, name)
            row.append("–" if p is None else f"{p:.2f} ({fmt(cycles(m, name))})")
        rows.append(row)
    print(table(["size"] + ALLOCATORS, rows))

    print("\n### Buddy 64 B–64 KiB, ns (cycles)\n")
    rows = []
    for size in [64, 256, 1024, 4096, 16384, 65536]:
        a, b = f"buddy/pair/{size}", f"buddy/fragmented-pair/{size}"
        rows.append([f"{size} B", f"{fmt(cpu(m, a), 2)} ({fmt(cycles(m, a))})",
                     f"{fmt(cpu(m, b), 2)} ({fmt(cycles(m, b))})"])
    w = "buddy/worst-case/64"
    rows.append(["worst case (64 B from one free 64 KiB block)", f"{fmt(cpu(m, w), 2)} ({fmt(cycles(m, w))})", ""])
    print(table(["size", "typical pair", "fragmented heap (~50% used)"], rows))

    print("\n### Frame allocator, cycles (ns)\n")
    rows = []
    for name, label in [("frame/pair/order0", "pair, order 0"), ("frame/pair/order9", "pair, order 9"),
                        ("frame/worst-case/order0", "worst case, order 0 from a free 4 MiB block"),
                        ("frame/pair-zeroed/order0", "pair, order 0, zeroed")]:
        rows.append([label, fmt(cycles(m, name)), fmt(cpu(m, name), 2)])
    print(table(["operation", "cycles", "ns"], rows))

    print("\n### Churn trace, ns per operation (one free + one allocation)\n")
    rows = []
    for a in ["heap", "mimalloc", "jemalloc", "glibc"]:
        name = f"churn/{a}"
        b = m.get(name)
        extra = "" if b is None or "heap_MiB" not in b else f"peak {b['heap_MiB']:.1f} MiB held"
        rows.append([a, fmt(cpu(m, name), 1), extra])
    print(table(["allocator", "ns/op", "note"], rows))


if __name__ == "__main__":
    main()
