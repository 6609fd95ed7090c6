"""Markdown report of a run: per suite and protocol a table of every backend's time per case, blockgemm's
TFLOP/s and its ratios over the peers, then the geomeans per M regime; FlashInfer's layout probes; the
clocks the timings ran at. Pure Python.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from . import backends as bk
from .probe import PROBE_ORDER
from .shapes import REGIMES, case_key, valid_rows
from .summary import (
    best_us,
    case_gbps,
    dense_regime_summaries,
    grouped_summaries,
    index_rows,
    ratio,
    round_spread,
    suite_backends,
    suite_cases,
    protocols_in,
    tflops,
)

SUITE_TITLES = {
    "deepseek": "DeepSeek-V3 projections",
    "other": "Other models' projections",
    "shapes": "Shapes from the command line",
    "grouped": "Grouped GEMM (mixture of experts)",
}
PROTOCOL_TITLES = {
    "burst": "burst (graph replays right after the previous backend)",
    "steady": "steady state (each backend replayed >= the steady time at its shape first)",
}
STATUS_CELLS = {
    "unsupported": "n/a",
    "unavailable": "-",
    "check_failed": "FAIL",
    "crash": "crash",
    "error": "error",
    "timeout": "timeout",
    "skipped": "skip",
}
PEER_TITLES = {"flashinfer": "FlashInfer", "deepgemm": "DeepGEMM", "cublaslt": "cuBLASLt", "cublas-bf16": "cuBLAS bf16"}


def fmt(value: Optional[float], digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}"


def fmt_us(us: Optional[float]) -> str:
    if us is None:
        return "-"
    return f"{us:.2f}" if us < 10 else f"{us:.1f}"


def cell(row: Optional[Dict], protocol: str) -> str:
    """A backend's table cell: its time, or why there is none."""
    if row is None:
        return ""
    status = row.get("status")
    if status != "ok":
        text = STATUS_CELLS.get(status, status or "?")
        if status == "check_failed" and isinstance((row.get("check") or {}).get("diff"), (int, float)):
            text += f" ({row['check']['diff']:.2g})"
        return text
    us = best_us(row, protocol)
    if us is None:
        failed = [t.get("status") for t in row.get("timings", ()) if t.get("protocol") == protocol]
        return STATUS_CELLS.get(failed[-1], failed[-1]) if failed else "-"
    return fmt_us(us)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], align_right_from: int = 0) -> List[str]:
    lines = ["| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---:" if i >= align_right_from else "---" for i in range(len(header))) + "|")
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    return lines


def nvml_line(rows: Sequence[Dict], suite: str, protocol: str) -> str:
    """The range of SM clock, power and temperature over the suite's timings under one protocol."""
    values: Dict[str, List[float]] = {"sm_clock_mhz": [], "power_w": [], "temperature_c": []}
    for row in rows:
        if row["suite"] != suite:
            continue
        for timing in row.get("timings", ()):
            if timing.get("protocol") != protocol:
                continue
            nvml = timing.get("nvml") or {}
            for key in values:
                mean = (nvml.get(key) or {}).get("mean")
                if isinstance(mean, (int, float)):
                    values[key].append(mean)
    if not any(values.values()):
        return "NVML: not recorded"
    parts = []
    for key, label, unit in (
        ("sm_clock_mhz", "SM clock", "MHz"),
        ("power_w", "power", "W"),
        ("temperature_c", "temperature", "C"),
    ):
        if values[key]:
            parts.append(f"{label} {min(values[key]):.0f}-{max(values[key]):.0f} {unit}")
    return "NVML over the timed replays (per-timing means): " + ", ".join(parts)


def dense_section(rows: Sequence[Dict], suite: str, protocol: str) -> List[str]:
    table = index_rows(rows)
    names = suite_backends(rows, suite)
    peers = [p for p in bk.DENSE_PEERS if p in names]
    has_label = any(case.get("label") for case in suite_cases(rows, suite))
    header = (["model"] if has_label else []) + ["M", "N", "K"] + [f"{name} us" for name in names]
    header += [f"{bk.REFERENCE} TFLOP/s", f"{bk.REFERENCE} GB/s"]
    header += [f"vs {PEER_TITLES[p]}" for p in peers]
    body = []
    for case in suite_cases(rows, suite):
        m = case["m"]
        if protocol == "steady" and not any(
            t.get("protocol") == "steady" for r in table[(suite, case_key(case))].values() for t in r.get("timings", ())
        ):
            continue
        entry = table[(suite, case_key(case))]
        ours = best_us(entry.get(bk.REFERENCE), protocol)
        line = ([case.get("label", "")] if has_label else []) + [str(m), str(case["n"]), str(case["k"])]
        line += [cell(entry.get(name), protocol) for name in names]
        line += [fmt(tflops(case, ours), 0), fmt(case_gbps(case, ours), 0)]
        line += [fmt(ratio(best_us(entry.get(p), protocol), ours), 3) for p in peers]
        body.append(line)
    lines = [
        f"Times in us per call (best round); vs X = X's time / {bk.REFERENCE}'s (> 1: {bk.REFERENCE} faster); "
        "n/a = the backend rejects the shape, - = not run.",
        "",
    ]
    lines += markdown_table(header, body, align_right_from=1 if has_label else 0)
    regimes = list(REGIMES) + ["all"]

    def grid(others: Sequence[str], title: str, titles: Dict[str, str]) -> List[str]:
        summaries = dense_regime_summaries(rows, suite, protocol, bk.REFERENCE, others)
        if not summaries:
            return []
        body = []
        for other in others:
            cells = []
            for name in regimes:
                found = [s for s in summaries if s["peer"] == other and s["regime"] == name]
                cells.append(
                    f"{found[0]['geomean']:.3f} ({found[0]['count']}, {found[0]['worst']:.2f})" if found else "-"
                )
            body.append([titles.get(other, other)] + cells)
        return ["", title, ""] + markdown_table(["vs"] + regimes, body, align_right_from=1)

    lines += grid(
        peers, f"Speedup of {bk.REFERENCE} (peer time / {bk.REFERENCE} time), geomean (cases, worst):", PEER_TITLES
    )
    variants = [n for n in names if n.startswith(bk.REFERENCE + "/")]
    lines += grid(
        variants,
        f"{bk.REFERENCE}'s other paths and layouts (their time / {bk.REFERENCE} FP8 x FP8 "
        "with the quantizers' layouts), geomean (cases, lowest):",
        {},
    )
    return lines


def grouped_section(rows: Sequence[Dict], suite: str, protocol: str) -> List[str]:
    table = index_rows(rows)
    names = suite_backends(rows, suite)
    lines: List[str] = []
    for layout in ("contiguous", "masked"):
        cases = [c for c in suite_cases(rows, suite) if c.get("layout") == layout]
        if protocol == "steady":
            cases = [
                c
                for c in cases
                if any(
                    t.get("protocol") == "steady"
                    for r in table[(suite, case_key(c))].values()
                    for t in r.get("timings", ())
                )
            ]
        if not cases:
            continue
        layout_names = [n for n in names if (n.endswith("/masked")) == (layout == "masked")]
        reference = bk.grouped_reference(layout)
        pairs = bk.grouped_pairs(layout)
        header = [
            "G",
            "N",
            "K",
            "rows" if layout == "contiguous" else "expected M",
            "routing" if layout == "contiguous" else "rows",
        ] + [f"{n} us" for n in layout_names]
        header += [f"{reference} TFLOP/s", f"{reference} weight GB/s"] + [
            f"{theirs} / {ours}" for ours, theirs in pairs
        ]
        body = []
        for case in cases:
            entry = table[(suite, case_key(case))]
            ours = best_us(entry.get(reference), protocol)
            line = [str(case["g"]), str(case["n"]), str(case["k"])]
            line += (
                [str(valid_rows(case)), case["routing"]]
                if layout == "contiguous"
                else [str(case["expected_m"]), str(valid_rows(case))]
            )
            line += [cell(entry.get(n), protocol) for n in layout_names]
            line += [fmt(tflops(case, ours), 0), fmt(case_gbps(case, ours), 0)]
            line += [
                fmt(ratio(best_us(entry.get(theirs), protocol), best_us(entry.get(o), protocol)), 3)
                for o, theirs in pairs
            ]
            body.append(line)
        lines += (
            [
                f"{layout.capitalize()} layout (us per call, best round; a / b columns are time ratios, > 1: b "
                "faster):",
                "",
            ]
            + markdown_table(header, body)
            + [""]
        )
        summaries = grouped_summaries(rows, suite, protocol, {layout: pairs})
        if summaries:
            lines += [
                f"- {s['peer']} / {s['reference']}: geomean {s['geomean']:.3f} over {s['count']} cases "
                f"(worst {s['worst']:.3f})"
                for s in summaries
            ] + [""]
    return lines


def probe_section(probes: Sequence[Dict]) -> List[str]:
    if not probes:
        return []
    header = ["M", "N", "K"] + list(PROBE_ORDER) + ["timed with"]
    body = []
    for probe in probes:
        case = probe["case"]
        cells = []
        for layout in PROBE_ORDER:
            result = probe["outcomes"].get(layout, {})
            diff = result.get("diff")
            cells.append(result.get("status", "not-run") + (f" ({diff:.2g})" if isinstance(diff, (int, float)) else ""))
        body.append([str(case["m"]), str(case["n"]), str(case["k"])] + cells + [probe.get("chosen") or "none"])
    return [
        "",
        "### FlashInfer input-scale layout probe",
        "",
        "calc_diff against the dequantized reference per layout (ok < 1e-3; crash = its process died):",
        "",
    ] + markdown_table(header, body)


def render(record: Dict) -> str:
    device = record.get("device", {})
    versions = record.get("versions", {})
    git = record.get("git", {})
    options = record.get("options", {})
    peers = ", ".join(f"{k} {v}" for k, v in sorted(versions.get("peers", {}).items())) or "none importable"
    lines = [
        f"# blockgemm benchmark ({record.get('date_utc', '?')})",
        "",
        f"- device: {device.get('name', '?')} ({device.get('sm_count', '?')} SMs), "
        f"driver {versions.get('driver', '?')}, CUDA {versions.get('cuda_runtime', '?')}, "
        f"torch {versions.get('torch', '?')}",
        f"- peers: {peers}",
        f"- blockgemm commit {git.get('commit') or 'unknown'}"
        + (" (dirty tree)" if git.get("dirty") else "")
        + (f", tree {git['tree']}" if git.get("tree") else ""),
        f"- method: operands rotated over >= {options.get('rotation_mb', 256)} MB of independent sets; CUDA "
        f"graphs of ~{options.get('graph_us', 3000) / 1000:.0f} ms of calls; median of {options.get('replays', 7)} "
        f"replays / calls; {options.get('rounds', 2)} rounds in alternating order, best round reported; steady "
        f"state = {options.get('steady_s', 1.0)} s of replays first, for M >= {options.get('steady_min_m', 512)}; "
        f"bursts at those M after {options.get('burst_idle_s', 0.0)} s of idle card; "
        "every backend checked against the dequantized fp32 reference first (calc_diff < 1e-3, output poisoned "
        "with NaN)",
        f"- wall time {record.get('elapsed_s') or 0:.0f} s"
        + ("" if record.get("complete") else " (INCOMPLETE: stopped early)"),
    ]
    rows = record.get("rows", [])
    for suite in [s for s in ("deepseek", "other", "shapes", "grouped") if any(r["suite"] == s for r in rows)]:
        lines += ["", f"## {SUITE_TITLES[suite]}"]
        for protocol in protocols_in(rows, suite) or ["burst"]:
            lines += ["", f"### {PROTOCOL_TITLES[protocol]}", "", nvml_line(rows, suite, protocol), ""]
            lines += (
                grouped_section(rows, suite, protocol) if suite == "grouped" else dense_section(rows, suite, protocol)
            )
        spreads = [round_spread(r, p) for r in rows if r["suite"] == suite for p in ("burst", "steady")]
        spreads = [s for s in spreads if s is not None]
        if spreads:
            lines += [
                "",
                f"Rounds disagree by at most {max(spreads) * 100:.1f}% (median over rows "
                f"{sorted(spreads)[len(spreads) // 2] * 100:.1f}%).",
            ]
    lines += probe_section(record.get("probes", []))
    # Failures and skips, one line per (backend, status, note) with the cases it applies to.
    notes: Dict[tuple, List[str]] = {}
    for row in rows:
        if row.get("status") not in ("ok", "unsupported") and row.get("note"):
            notes.setdefault((row["backend"], row["status"], row["note"]), []).append(row["key"])
    if notes:
        lines += ["", "### Notes", ""]
        for (backend, status, note), keys in list(notes.items())[:60]:
            where = keys[0] if len(keys) == 1 else f"{len(keys)} cases, first {keys[0]}"
            lines.append(f"- {backend}: {status} ({where}): {note}")
        if len(notes) > 60:
            lines.append(f"- ... {len(notes) - 60} more in the JSON")
    return "\n".join(lines) + "\n"
