"""Summaries of a run's rows: each backend's figure per case and protocol, ratios against blockgemm,
geometric means per M regime. Pure Python.

A row (one case x one backend) carries a status and its timings; a timing counts only when the row's
check passed and the timing itself completed. A backend's figure for a protocol is the best (lowest) of
its rounds' medians. A ratio is peer time / blockgemm time: above 1 means blockgemm is faster.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from . import backends as bk
from .rotation import case_bytes, grouped_weight_bytes
from .shapes import REGIMES, case_flops, case_key, effective_m, regime

ROW_STATUSES = ("ok", "check_failed", "unsupported", "unavailable", "crash", "error", "timeout", "skipped")


def geomean(values: Iterable[float]) -> Optional[float]:
    values = [v for v in values if v is not None and v > 0 and math.isfinite(v)]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def best_us(row: Optional[Dict], protocol: str) -> Optional[float]:
    """The backend's time per call under `protocol`: the best completed round, or None when the row did not
    pass its check or has no completed timing."""
    if row is None or row.get("status") != "ok":
        return None
    times = [
        t["us"]
        for t in row.get("timings", ())
        if t.get("protocol") == protocol
        and t.get("status") == "ok"
        and isinstance(t.get("us"), (int, float))
        and t["us"] > 0
    ]
    return min(times) if times else None


def round_spread(row: Optional[Dict], protocol: str) -> Optional[float]:
    """(slowest - fastest) / fastest over the completed rounds: how much the rounds disagree."""
    if row is None or row.get("status") != "ok":
        return None
    times = [t["us"] for t in row.get("timings", ()) if t.get("protocol") == protocol and t.get("status") == "ok"]
    if len(times) < 2:
        return None
    return (max(times) - min(times)) / min(times)


def ratio(peer_us: Optional[float], ours_us: Optional[float]) -> Optional[float]:
    if peer_us is None or ours_us is None or ours_us <= 0:
        return None
    return peer_us / ours_us


def tflops(case: Dict, us: Optional[float]) -> Optional[float]:
    if us is None or us <= 0:
        return None
    return case_flops(case) / (us * 1e-6) / 1e12


def gbps(nbytes: int, us: Optional[float]) -> Optional[float]:
    if us is None or us <= 0:
        return None
    return nbytes / (us * 1e-6) / 1e9


def case_gbps(case: Dict, us: Optional[float]) -> Optional[float]:
    """Dense: all bytes of the FP8 call. Grouped: the weights' bytes (the issue's weight bandwidth)."""
    if case["kind"] == "dense":
        return gbps(case_bytes(case), us)
    return gbps(grouped_weight_bytes(case["g"], case["n"], case["k"]), us)


def index_rows(rows: Iterable[Dict]) -> Dict[Tuple[str, str], Dict[str, Dict]]:
    """(suite, case key) -> backend name -> row, keeping case order of first appearance."""
    table: Dict[Tuple[str, str], Dict[str, Dict]] = {}
    for row in rows:
        table.setdefault((row["suite"], row["key"]), {})[row["backend"]] = row
    return table


def suite_cases(rows: Iterable[Dict], suite: str) -> List[Dict]:
    seen, cases = set(), []
    for row in rows:
        if row["suite"] == suite and row["key"] not in seen:
            seen.add(row["key"])
            cases.append(row["case"])
    return cases


def suite_backends(rows: Iterable[Dict], suite: str) -> List[str]:
    names: List[str] = []
    for row in rows:
        if row["suite"] == suite and row["backend"] not in names:
            names.append(row["backend"])
    return names


def protocols_in(rows: Iterable[Dict], suite: str) -> List[str]:
    found = []
    for row in rows:
        if row["suite"] != suite:
            continue
        for timing in row.get("timings", ()):
            if timing.get("protocol") not in found:
                found.append(timing.get("protocol"))
    return [p for p in ("burst", "steady") if p in found]


def dense_regime_summaries(
    rows: Sequence[Dict], suite: str, protocol: str, reference: str, peers: Sequence[str]
) -> List[Dict]:
    """Per peer and M regime (and 'all'): the geomean of peer / reference time over the cases both ran,
    with the count and the worst (lowest) and best ratio."""
    table = index_rows(rows)
    out = []
    for peer in peers:
        by_regime: Dict[str, List[float]] = {name: [] for name in REGIMES}
        for case in suite_cases(rows, suite):
            entry = table.get((suite, case_key(case)), {})
            value = ratio(best_us(entry.get(peer), protocol), best_us(entry.get(reference), protocol))
            if value is not None:
                by_regime[regime(effective_m(case))].append(value)
        everything = [v for values in by_regime.values() for v in values]
        for name, values in list(by_regime.items()) + [("all", everything)]:
            if not values:
                continue
            out.append(
                {
                    "suite": suite,
                    "protocol": protocol,
                    "reference": reference,
                    "peer": peer,
                    "regime": name,
                    "geomean": geomean(values),
                    "count": len(values),
                    "worst": min(values),
                    "best": max(values),
                }
            )
    return out


def grouped_summaries(
    rows: Sequence[Dict], suite: str, protocol: str, pairs_by_layout: Dict[str, Sequence[Tuple[str, str]]]
) -> List[Dict]:
    """Per layout and (ours, theirs) pair: geomean of theirs / ours time over the cases both ran."""
    table = index_rows(rows)
    out = []
    for layout, pairs in pairs_by_layout.items():
        for ours, theirs in pairs:
            values = []
            for case in suite_cases(rows, suite):
                if case.get("layout") != layout:
                    continue
                entry = table.get((suite, case_key(case)), {})
                value = ratio(best_us(entry.get(theirs), protocol), best_us(entry.get(ours), protocol))
                if value is not None:
                    values.append(value)
            if values:
                out.append(
                    {
                        "suite": suite,
                        "protocol": protocol,
                        "reference": ours,
                        "peer": theirs,
                        "regime": layout,
                        "geomean": geomean(values),
                        "count": len(values),
                        "worst": min(values),
                        "best": max(values),
                    }
                )
    return out


def record_summaries(rows: Sequence[Dict], suites: Iterable[str]) -> List[Dict]:
    """Every summary a record carries: per suite and protocol, the dense regimes' geomeans against each peer
    (and blockgemm's other paths and layouts), or the grouped layouts' pairs."""
    out: List[Dict] = []
    for suite in suites:
        for protocol in protocols_in(rows, suite):
            if suite == "grouped":
                out += grouped_summaries(
                    rows, suite, protocol, {layout: bk.grouped_pairs(layout) for layout in ("contiguous", "masked")}
                )
            else:
                variants = [n for n in suite_backends(rows, suite) if n.startswith(bk.REFERENCE + "/")]
                out += dense_regime_summaries(rows, suite, protocol, bk.REFERENCE, list(bk.DENSE_PEERS) + variants)
    return out


def status_counts(rows: Iterable[Dict]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def reference_checks_passed(rows: Iterable[Dict], family: str = "blockgemm") -> bool:
    """Whether every blockgemm row that ran passed its check (the run's exit status)."""
    return all(
        row["status"] in ("ok", "unsupported", "unavailable", "skipped") for row in rows if row["family"] == family
    )
