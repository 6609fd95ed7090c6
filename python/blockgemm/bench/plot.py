"""One PNG per suite: TFLOP/s against M (log scale), one panel per (N, K) (per layout and shape for the
grouped suite), one line per backend, the FP8 roofline min(peak, bytes-bound) drawn in. Burst figures are
solid lines; steady-state figures (M >= 512) hollow markers on dashed lines. matplotlib is imported
lazily: without it the plots are skipped with a message.
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence

from .rotation import case_bytes, grouped_call_bytes
from .shapes import case_key, effective_m
from .summary import best_us, index_rows, suite_backends, suite_cases, tflops

H100_PEAK_FP8_TFLOPS = 1979.0  # dense, datasheet
H100_HBM_TBPS = 3.35


def roofline_tflops(flops: float, nbytes: float, peak_tflops: float, hbm_tbps: float) -> float:
    """min(peak, bytes at full HBM bandwidth): the best a call moving `nbytes` and doing `flops` can reach."""
    if nbytes <= 0:
        return peak_tflops
    seconds = max(flops / (peak_tflops * 1e12), nbytes / (hbm_tbps * 1e12))
    return flops / seconds / 1e12


def panels(rows: Sequence[Dict], suite: str) -> Dict[str, List[Dict]]:
    """Cases grouped into panels: by (N, K) for dense suites, by layout and (N, K) (and routing) for the
    grouped one; cases sorted by their M within a panel."""
    out: Dict[str, List[Dict]] = {}
    for case in suite_cases(rows, suite):
        if case["kind"] == "dense":
            title = f"N={case['n']} K={case['k']}" + (f" ({case['label']})" if case.get("label") else "")
        elif case["layout"] == "contiguous":
            title = f"contiguous {case['routing']} N={case['n']} K={case['k']}"
        else:
            title = f"masked G={case['g']} N={case['n']} K={case['k']}"
        out.setdefault(title, []).append(case)
    for cases in out.values():
        cases.sort(key=effective_m)
    return out


def case_x(case: Dict) -> float:
    """The x coordinate of a case: M (dense), rows over all groups (grouped)."""
    return float(effective_m(case))


def _bytes(case: Dict) -> int:
    return case_bytes(case) if case["kind"] == "dense" else grouped_call_bytes(case)


def plot_suite(
    record: Dict, suite: str, path: str, peak_tflops: float = H100_PEAK_FP8_TFLOPS, hbm_tbps: float = H100_HBM_TBPS
) -> Optional[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as error:
        print(f"plot skipped for {suite}: matplotlib is not importable ({error})")
        return None
    rows = [r for r in record["rows"] if r["suite"] == suite]
    groups = panels(rows, suite)
    if not groups:
        return None
    table = index_rows(rows)
    names = suite_backends(rows, suite)
    columns = min(3, len(groups))
    lines_count = math.ceil(len(groups) / columns)
    figure, axes = plt.subplots(lines_count, columns, figsize=(6 * columns, 4.2 * lines_count), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (title, cases) in enumerate(groups.items()):
        axis = axes[index // columns][index % columns]
        xs = [case_x(c) for c in cases]
        roof = [roofline_tflops(2 * effective_m(c) * c["n"] * c["k"], _bytes(c), peak_tflops, hbm_tbps) for c in cases]
        axis.plot(xs, roof, color="black", linewidth=1, linestyle=":", label="fp8 roofline")
        for number, name in enumerate(names):
            color = colors[number % len(colors)]
            for protocol, style, marker, fill in (("burst", "-", "o", color), ("steady", "--", "s", "none")):
                points = [
                    (case_x(c), tflops(c, best_us(table[(suite, case_key(c))].get(name), protocol))) for c in cases
                ]
                points = [(x, y) for x, y in points if y is not None]
                if points:
                    axis.plot(
                        [p[0] for p in points],
                        [p[1] for p in points],
                        linestyle=style,
                        marker=marker,
                        color=color,
                        markerfacecolor=fill,
                        markersize=4,
                        linewidth=1.2,
                        label=name if protocol == "burst" else f"{name} (steady)",
                    )
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_title(title, fontsize=9)
        axis.set_xlabel("M (rows, all groups)" if suite == "grouped" else "M")
        axis.set_ylabel("TFLOP/s")
        axis.grid(True, which="both", linewidth=0.3)
    for index in range(len(groups), lines_count * columns):
        axes[index // columns][index % columns].axis("off")
    handles, labels = [], []
    for axis in axes.flat:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            if label not in labels:
                handles.append(handle)
                labels.append(label)
    figure.legend(handles, labels, loc="lower center", ncol=min(6, len(labels)), fontsize=8, frameon=False)
    device = record.get("device", {}).get("name", "?")
    figure.suptitle(
        f"{suite}: TFLOP/s on {device} ({record.get('date_utc', '')}); roofline {peak_tflops:.0f} TFLOP/s, "
        f"{hbm_tbps:.2f} TB/s",
        fontsize=10,
    )
    figure.tight_layout(rect=(0, 0.06, 1, 0.96))
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_suites(
    record: Dict, prefix: str, peak_tflops: float = H100_PEAK_FP8_TFLOPS, hbm_tbps: float = H100_HBM_TBPS
) -> List[str]:
    written = []
    suites = []
    for row in record.get("rows", []):
        if row["suite"] not in suites:
            suites.append(row["suite"])
    for suite in suites:
        path = plot_suite(record, suite, f"{prefix}_{suite}.png", peak_tflops, hbm_tbps)
        if path:
            written.append(path)
    return written
