#!/usr/bin/env python3
"""How far each mbarrier test runs ahead of its first consumer, from `cuobjdump -sass` output.

    cuobjdump -sass [-fun NAME] FILE.cubin | scripts/sass_waits.py [--min N]

For every `SYNCS.PHASECHK` (mbarrier try_wait / test_wait) the script finds the first later instruction whose
control word waits on the test's scoreboard, and prints how many instructions (and how many FFMAs) the warp
issues in between: 0 means the test's shared-memory round trip is exposed. bench/NOTES.md #77 moved the math
warpgroups' wait for the next stage's `full` so that ptxas issues it among the promotion's FMAs; with --min N
the script exits 1 when no test of the input has N or more FFMAs in front of its consumer (a K loop that lost
that overlap). Control bits as sm_90 encodes them in the instruction's upper word: write scoreboard in bits
110-112 (7: none), wait mask in bits 116-121.
"""
import argparse
import re
import sys

LINE = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?)\s*;?\s*/\* (0x[0-9a-f]+) \*/")
WORD = re.compile(r"/\* (0x[0-9a-f]+) \*/")


def parse(text):
    lines = text.splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = LINE.match(lines[i])
        if m and i + 1 < len(lines) and WORD.search(lines[i + 1]):
            upper = int(WORD.search(lines[i + 1]).group(1), 16)
            out.append((m.group(1), m.group(2).strip(), (upper >> 46) & 7, (upper >> 52) & 0x3F))
            i += 2
        else:
            i += 1
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--min", type=int, default=None, help="fail unless some test has this many FFMAs ahead")
    args = ap.parse_args()
    ins = parse(sys.stdin.read())
    best = 0
    for k, (addr, text, scoreboard, _) in enumerate(ins):
        if not text.startswith("SYNCS.PHASECHK") or scoreboard == 7:
            continue
        ffma = 0
        for j in range(k + 1, len(ins)):
            if ins[j][3] >> scoreboard & 1:
                print(f"{addr} {text[:48]:48s} -> {ins[j][0]} {ins[j][1][:28]:28s} {j - k - 1:4d} instr, {ffma:3d} FFMA")
                best = max(best, ffma)
                break
            ffma += ins[j][1].startswith("FFMA")
    if args.min is not None and best < args.min:
        print(f"no barrier test has {args.min} FFMAs ahead of its consumer (best {best})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
