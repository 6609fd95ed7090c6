#!/usr/bin/env python3
"""Side-by-side table of ab_sweep.sh results: for each shape and plan, every variant's median time over the
rounds, and each variant's geometric mean relative to the first one named.

    scripts/ab_table.py DIR NAME [NAME ...]      (reads DIR/ab_NAME.txt)
"""
import math
import re
import statistics
import sys

SHAPE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+) \|")
PLAN = re.compile(r"^\s+([\d.]+) us\s+model\s+[\d.]+\s+fp8_gemm_1d2d( swapAB)? BLOCK_M=(\d+) BLOCK_N=(\d+) multicast=(\d+) k_splits=(\d+)")


def load(path):
    times, shape = {}, None
    for line in open(path):
        m = SHAPE.match(line)
        if m:
            shape = "x".join(m.groups())
            continue
        m = PLAN.match(line)
        if m and shape:
            us, swap, bm, bn, mc, ks = m.groups()
            plan = f"{'s' if swap else ''}{bm}x{bn}" + (f"mc{mc}" if mc != "1" else "") + (f"k{ks}" if ks != "1" else "")
            times.setdefault((shape, plan), []).append(float(us))
    return {key: statistics.median(v) for key, v in times.items()}


def main():
    directory, names = sys.argv[1], sys.argv[2:]
    runs = [load(f"{directory}/ab_{name}.txt") for name in names]
    keys = [k for k in runs[0] if all(k in r for r in runs[1:])]
    if not keys:
        sys.exit("ab_table.py: the variants share no shape x plan")
    print(f"{'shape':>18} {'plan':>10} " + " ".join(f"{n:>10}" for n in names))
    logs = [[] for _ in names]
    best = [{} for _ in names]
    for shape, plan in keys:
        row = [r[(shape, plan)] for r in runs]
        print(f"{shape:>18} {plan:>10} " + " ".join(f"{t:10.2f}" for t in row))
        for i, t in enumerate(row):
            logs[i].append(math.log(t / row[0]))
            best[i][shape] = min(best[i].get(shape, 1e30), t)
    print("geomean vs first, all plans:  " + " ".join(f"{math.exp(sum(l) / len(l)):.3f}" for l in logs))
    shapes = list(best[0])
    print("geomean vs first, best plan:  " + " ".join(
        f"{math.exp(sum(math.log(b[s] / best[0][s]) for s in shapes) / len(shapes)):.3f}" for b in best))


if __name__ == "__main__":
    main()
