#!/usr/bin/env python3
"""Compares a blockgemm-bench table with the anchors' H100 timings (../shared/reference/anchors_h100.md).

    scripts/anchor_compare.py bench/results/h100_2026-11-26_s6.txt [--anchors PATH]

The issues' targets are ratios over cuBLASLt block scaling measured in the same run. The anchors measured
cuBLASLt through torch._scaled_mm, and our benchmark calls cuBLASLt directly (top heuristic algorithm, 32 MiB
workspace), so the two cuBLASLt columns need not agree; this script shows how far they differ, and sets our
times beside DeepGEMM's and cuBLASLt per-tensor's absolute anchor times (same GPU model, driver and toolkit,
another day: absolute times drift by a few percent between runs). Only the FP8 x FP8 table is read.
"""
import argparse
import math
import os
import sys


def default_anchors():
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.normpath(os.path.join(here, "..", "..", "shared", "reference", "anchors_h100.md"))


def number(text):
    try:
        return float(text)
    except ValueError:
        return None  # "rejected", "n/a", "-"


def read_anchors(path):
    """(M, N, K) -> dict of per_tensor, lt_block, deepgemm (us; None where the anchor has none)."""
    anchors = {}
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.split("|")]
            # | M | N | K | bf16 | per-tensor | block | DeepGEMM | ...
            if len(cells) < 9 or not cells[1].isdigit():
                continue
            shape = tuple(int(c) for c in cells[1:4])
            anchors[shape] = {"per_tensor": number(cells[5]), "lt_block": number(cells[6]),
                              "deepgemm": number(cells[7])}
    return anchors


def read_bench(path):
    """(M, N, K) -> (ours us, cuBLASLt block us or None), from the first (FP8 x FP8) table."""
    rows = {}
    with open(path) as f:
        for line in f:
            cells = line.split("|")
            if len(cells) < 3:
                if rows and not line.strip():
                    break  # the FP8 table ends at its first blank line after data rows
                continue
            dims = cells[0].split()
            if len(dims) != 3 or not all(d.isdigit() for d in dims):
                continue
            ours = number(cells[1].split()[0])
            lt = number(cells[2].split()[0])
            if ours is not None:
                rows[tuple(int(d) for d in dims)] = (ours, lt)
    return rows


def geomean(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values)), len(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench_table")
    parser.add_argument("--anchors", default=default_anchors())
    args = parser.parse_args()
    anchors = read_anchors(args.anchors)
    bench = read_bench(args.bench_table)
    shapes = sorted(s for s in bench if s in anchors)
    if not shapes:
        sys.exit("no shape of the bench table is in the anchors")

    def ratio(a, b):
        return a / b if a is not None and b is not None else None

    print("%5s %6s %6s | %9s %9s | %9s %9s %9s | %8s %8s %8s" %
          ("M", "N", "K", "ours us", "Lt-blk", "a:Lt-blk", "a:Lt-pt", "a:DeepG",
           "Lt run/a", "DG/ours", "pt/ours"))
    for s in shapes:
        ours, lt = bench[s]
        a = anchors[s]
        cells = [ratio(lt, a["lt_block"]), ratio(a["deepgemm"], ours), ratio(a["per_tensor"], ours)]
        print("%5d %6d %6d | %9.2f %9s | %9s %9s %9s | %s" % (
            s + (ours, "%.2f" % lt if lt else "n/a",
                 *["%.2f" % a[k] if a[k] else "-" for k in ("lt_block", "per_tensor", "deepgemm")],
                 " ".join("%8.3f" % c if c is not None else "%8s" % "-" for c in cells))))

    print("\ngeometric means (DG/ours > 1: faster than DeepGEMM's anchor time; Lt run/a < 1: this run's"
          " cuBLASLt block is faster than the anchors')")
    regimes = [("M <= 32", lambda m: m <= 32), ("M 64..512", lambda m: 64 <= m <= 512),
               ("M >= 1024", lambda m: m >= 1024)]
    for name, take in regimes:
        sel = [s for s in shapes if take(s[0])]
        if not sel:
            continue
        parts = []
        for label, values in (
                ("ours over Lt-blk (this run)", [ratio(bench[s][1], bench[s][0]) for s in sel]),
                ("DeepGEMM over Lt-blk (anchors)", [ratio(anchors[s]["lt_block"], anchors[s]["deepgemm"])
                                                    for s in sel]),
                ("Lt-blk run/anchor", [ratio(bench[s][1], anchors[s]["lt_block"]) for s in sel]),
                ("DeepGEMM/ours", [ratio(anchors[s]["deepgemm"], bench[s][0]) for s in sel]),
                ("Lt-pt/ours", [ratio(anchors[s]["per_tensor"], bench[s][0]) for s in sel])):
            g = geomean(values)
            parts.append("%s %s" % (label, "%.3f (%d)" % g if g else "-"))
        print("%-10s %s" % (name, "; ".join(parts)))


if __name__ == "__main__":
    main()
