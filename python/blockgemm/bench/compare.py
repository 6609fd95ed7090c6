"""Two records of the same suite side by side: does the benchmark reproduce itself?

    python -m blockgemm.bench.compare RUN1.json RUN2.json [--tolerance 0.03] [--out FILE.md]

Matches the two records' summaries (peer / blockgemm geomeans per suite, protocol, peer and M regime or grouped
layout) and blockgemm's own time per case, and prints a markdown table of both runs with run 2 / run 1. The
geomeans are recomputed over the timings both runs have (same suite, case, backend and protocol): a run cut
short by its deadline would otherwise compare a different set of cases (`--as-recorded` compares the
summaries the records carry). Exit status 0 when every geomean present in both agrees within the tolerance,
1 when one does not, 2 on bad input. Pure Python (no torch), so CI tests it.
"""

import argparse
import copy
import math
import sys
from typing import Dict, List, Optional, Sequence, Tuple

from . import records, summary

SummaryKey = Tuple[str, str, str, str, str]  # suite, protocol, reference, peer, regime


def summary_key(entry: Dict) -> SummaryKey:
    return (entry["suite"], entry["protocol"], entry["reference"], entry["peer"], entry["regime"])


def _row_key(row: Dict) -> Tuple[str, str, str]:
    return (row["suite"], row["key"], row["backend"])


def matched_records(run1: Dict, run2: Dict) -> Tuple[Dict, Dict, Dict[str, int]]:
    """Copies of both records that keep, per (suite, case, backend), only the protocols both runs timed, with
    their summaries recomputed; and how many such timings were matched or found in one run only."""
    first = {_row_key(r): r for r in run1.get("rows", ())}
    second = {_row_key(r): r for r in run2.get("rows", ())}
    counts = {"matched": 0, "run1_only": 0, "run2_only": 0}
    kept1, kept2 = [], []
    for key in list(first) + [k for k in second if k not in first]:
        a, b = first.get(key), second.get(key)
        protocols = {t.get("protocol") for r in (a, b) if r for t in r.get("timings", ())}
        both = set()
        for protocol in protocols:
            in1 = summary.best_us(a, protocol) is not None
            in2 = summary.best_us(b, protocol) is not None
            if in1 and in2:
                both.add(protocol)
                counts["matched"] += 1
            elif in1 or in2:
                counts["run1_only" if in1 else "run2_only"] += 1
        for row, kept in ((a, kept1), (b, kept2)):
            if row is None or not both:
                continue
            row = copy.deepcopy(row)
            row["timings"] = [t for t in row.get("timings", ()) if t.get("protocol") in both]
            kept.append(row)
    out = []
    for record, rows in ((run1, kept1), (run2, kept2)):
        suites = []
        for row in rows:
            if row["suite"] not in suites:
                suites.append(row["suite"])
        matched = dict(record)
        matched["rows"] = rows
        matched["summaries"] = summary.record_summaries(rows, suites)
        out.append(matched)
    return out[0], out[1], counts


def compare_summaries(run1: Dict, run2: Dict, tolerance: float) -> List[Dict]:
    """One row per summary present in either record, in run 1's order (then run 2's extra ones): both
    geomeans, their ratio, and whether neither exceeds the other by more than the tolerance (None where one
    run lacks it)."""
    first = {summary_key(s): s for s in run1.get("summaries", ())}
    second = {summary_key(s): s for s in run2.get("summaries", ())}
    keys = list(first) + [k for k in second if k not in first]
    rows = []
    for key in keys:
        a, b = first.get(key), second.get(key)
        g1 = a["geomean"] if a else None
        g2 = b["geomean"] if b else None
        agreement = g2 / g1 if g1 and g2 else None
        rows.append(
            {
                "key": key,
                "run1": a,
                "run2": b,
                "ratio": agreement,
                # Symmetric: neither run's geomean more than `tolerance` above the other's.
                "within": None if agreement is None else max(agreement, 1.0 / agreement) <= 1.0 + tolerance,
            }
        )
    return rows


def case_time_ratios(run1: Dict, run2: Dict, protocol: str, backend: str = "blockgemm") -> List[float]:
    """Run 2 / run 1 of one backend's best time per case, over the cases both runs timed under `protocol`."""
    first, second = summary.index_rows(run1.get("rows", ())), summary.index_rows(run2.get("rows", ()))
    out = []
    for key, entry in first.items():
        t1 = summary.best_us(entry.get(backend), protocol)
        t2 = summary.best_us(second.get(key, {}).get(backend), protocol)
        if t1 and t2:
            out.append(t2 / t1)
    return out


def _fmt(entry: Optional[Dict]) -> str:
    if not entry:
        return "-"
    return f"{entry['geomean']:.3f} ({entry['count']}, {entry['worst']:.2f})"


def render(
    run1: Dict,
    run2: Dict,
    rows: Sequence[Dict],
    tolerance: float,
    names: Sequence[str],
    counts: Optional[Dict[str, int]] = None,
) -> str:
    if counts is None:
        basis = "as each run's `bench.md` reports them"
    else:
        basis = (
            f"over the {counts['matched']} timings (case, backend, protocol) both runs have"
            f" (run 1 alone: {counts['run1_only']}, run 2 alone: {counts['run2_only']})"
        )
    lines = [
        "# Two runs of the Python benchmark compared",
        "",
        f"Run 1: `{names[0]}` ({run1.get('date_utc', '?')}, commit {run1.get('git', {}).get('commit', '?')}); "
        f"run 2: `{names[1]}` ({run2.get('date_utc', '?')}, commit {run2.get('git', {}).get('commit', '?')}).",
        f"Geomean of peer time / blockgemm time (> 1: blockgemm faster), cases and worst case, {basis}; "
        f"agreement within {tolerance:.0%} is the criterion.",
        "",
        "| suite | protocol | vs | regime | run 1 geomean (cases, worst) | run 2 geomean (cases, worst) "
        "| run 2 / run 1 | within |",
        "|---|---|---|---|---:|---:|---:|---|",
    ]
    for row in rows:
        suite, protocol, _, peer, regime = row["key"]
        ratio = "-" if row["ratio"] is None else f"{row['ratio']:.3f}"
        within = {None: "-", True: "yes", False: "**no**"}[row["within"]]
        lines.append(
            f"| {suite} | {protocol} | {peer} | {regime} | {_fmt(row['run1'])} | {_fmt(row['run2'])} "
            f"| {ratio} | {within} |"
        )
    lines.append("")
    for protocol in ("burst", "steady"):
        ratios = case_time_ratios(run1, run2, protocol)
        if ratios:
            median = sorted(ratios)[len(ratios) // 2]
            lines.append(
                f"blockgemm's own time per case, {protocol}, run 2 / run 1 over {len(ratios)} cases: median "
                f"{median:.3f}, range {min(ratios):.3f}..{max(ratios):.3f}."
            )
    judged = [r for r in rows if r["within"] is not None]
    failed = [r for r in judged if not r["within"]]
    lines.append("")
    misses = ", ".join(f"{r['key'][1]} vs {r['key'][3]} {r['key'][4]} ({r['ratio']:.3f})" for r in failed)
    verdict = f"{len(judged) - len(failed)} of {len(judged)} geomeans agree within {tolerance:.0%}"
    lines.append(verdict + (f"; outside: {misses}" if failed else "."))
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m blockgemm.bench.compare", description=__doc__.split("\n")[0])
    parser.add_argument("run1")
    parser.add_argument("run2")
    parser.add_argument(
        "--tolerance", type=float, default=0.03, help="largest excess of either run's geomean over the other's"
    )
    parser.add_argument("--out", help="also write the markdown here")
    parser.add_argument(
        "--as-recorded", action="store_true", help="compare the records' own summaries, whatever cases each has"
    )
    args = parser.parse_args(argv)
    if not (0 < args.tolerance < 1) or math.isnan(args.tolerance):
        parser.error(f"--tolerance must lie in (0, 1), got {args.tolerance}")
    try:
        run1, run2 = records.load_json(args.run1), records.load_json(args.run2)
    except (OSError, ValueError) as error:
        print(f"blockgemm.bench.compare: {error}", file=sys.stderr)
        return 2
    counts = None
    if not args.as_recorded:
        run1, run2, counts = matched_records(run1, run2)
    rows = compare_summaries(run1, run2, args.tolerance)
    text = render(run1, run2, rows, args.tolerance, (args.run1, args.run2), counts)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write(text)
    if not any(r["within"] is not None for r in rows):
        print("blockgemm.bench.compare: the records share no summary", file=sys.stderr)
        return 2
    return 0 if all(r["within"] is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
