"""Where the warps of each profiled kernel stall, from an Nsight Compute report taken with the SourceCounters
section (scripts/ncu_vs_deepgemm.sh --source): prints, per kernel, the stall reasons summed over the kernel
(`--page raw`, the smsp__pcsamp_warps_issue_stalled_* counters) and the SASS instructions with the most stall
samples (`--page source --print-source sass`) with their reasons. Reads the two CSV exports:

    python3 scripts/ncu_stalls.py RAW.csv SASS.csv [--top 40]

The CSV layouts differ between ncu versions: columns are found by name (a stall-sample column, the
instruction text, the address); rows whose first cell repeats the header start the next kernel.
"""
import argparse
import csv
import sys
from typing import Dict, List, Sequence


def _number(text: str) -> float:
    try:
        return float(text.replace(",", ""))
    except ValueError:
        return 0.0


def _tables(path: str) -> List[List[List[str]]]:
    """Splits a CSV into one table per kernel (header first). Two layouts: the raw page repeats its header row
    before each kernel's row; the source page precedes each kernel's table by a `"Kernel Name","<name>"` row
    (the table's header is the row after it), whose name becomes the table's first body row's label."""
    with open(path, newline="") as handle:
        rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    tables: List[List[List[str]]] = []
    header = None
    expect_header = False
    for row in rows:
        if row[0] == "Kernel Name" and len([c for c in row if c]) <= 2:
            expect_header = True  # source page: the next row is this kernel's header
            continue
        if expect_header or header is None or row == header:
            known = ("ID", "Kernel Name", "# Address", "Address", "Source")
            if not expect_header and header is None and not any(c in known or "Sampling" in c for c in row):
                continue  # preamble (==PROF== lines, program output)
            header = row
            expect_header = False
            tables.append([row])
        else:
            tables[-1].append(row)
    return tables


def raw_stall_totals(path: str) -> None:
    """--page raw: one row per kernel, one column per metric; prints the stall counters, largest first."""
    for table in _tables(path):
        header, rows = table[0], table[1:]
        name_col = next((i for i, c in enumerate(header) if c == "Kernel Name"), None)
        # PC-sampling counts where collected (SourceCounters), else WarpStateStats' cycles per issued instruction.
        prefix = "smsp__pcsamp_warps_issue_stalled_"
        if not any(c.startswith(prefix) for c in header):
            prefix = "smsp__average_warp_latency_issue_stalled_"
        stall_cols = [i for i, c in enumerate(header) if c.startswith(prefix) and "not_issued" not in c]
        for row in rows:
            if len(row) != len(header) or not stall_cols:
                continue
            values = sorted(((_number(row[i]), header[i]) for i in stall_cols), reverse=True)
            total = sum(v for v, _ in values)
            if total == 0:
                continue  # the units row
            name = row[name_col][:90] if name_col is not None else "?"
            print(f"== {name}: {total:.0f} stall samples")
            for value, metric in values[:14]:
                if value > 0:
                    print(f"   {value / total:6.1%}  {metric.replace(prefix, '')}")


def top_instructions(path: str, top: int) -> None:
    """--page source --print-source sass: per kernel, the instructions with the most stall samples."""
    for index, table in enumerate(_tables(path)):
        header, rows = table[0], table[1:]
        samples = next((i for i, c in enumerate(header) if "Warp Stall Sampling (All" in c), None)
        if samples is None:
            samples = next((i for i, c in enumerate(header) if "ampl" in c), None)
        source = next((i for i, c in enumerate(header) if c in ("Source", "SASS")), 1 if len(header) > 1 else 0)
        address = next((i for i, c in enumerate(header) if "Address" in c), 0)
        reasons = [i for i, c in enumerate(header) if c.lower().startswith("stall") or "stalled" in c.lower()]
        if samples is None:
            print(f"== kernel {index}: no stall-sample column in {header[:8]}")
            continue
        body = [r for r in rows if len(r) == len(header)]
        total = sum(_number(r[samples]) for r in body) or 1.0
        print(f"== kernel {index}: {len(body)} instructions, {total:.0f} stall samples ({header[samples]})")
        for row in sorted(body, key=lambda r: -_number(r[samples]))[:top]:
            detail = sorted(((_number(row[i]), header[i]) for i in reasons), reverse=True)
            why = ", ".join(f"{name} {value:.0f}" for value, name in detail[:3] if value > 0)
            print(f"   {_number(row[samples]) / total:6.2%}  {row[address]:>8}  {row[source][:70]:<70}  {why}")


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("raw_csv")
    parser.add_argument("sass_csv")
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    raw_stall_totals(args.raw_csv)
    top_instructions(args.sass_csv, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
