"""FlashInfer's input-scale layout probe: per case, which layout of `input_scale` gives a correct result.
Pure Python (the probe calls run in their own worker process; see runner.py).

FlashInfer documents `input_scale` as row-major (M, K/128), but its kernel reads it M-contiguous: its own
test passes a (K/128, M) view of a (K/128, ceil4(M)) buffer. The row-major layout gave wrong results
(calc_diff 0.99-1.0, or NaN) on an H100, and once an illegal address that killed the CUDA context, so the
probe runs in a process of its own, the M-contiguous layout first (a crash in the second call cannot lose
the first's outcome), and every outcome is recorded.
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

ROW_MAJOR = "row-major"  # (M, K/128) contiguous: the documented layout
M_CONTIGUOUS = "m-contiguous"  # (K/128, M) view of a (K/128, ceil4(M)) buffer: what its test passes

# Probe order: the layout expected to work first.
PROBE_ORDER: Tuple[str, ...] = (M_CONTIGUOUS, ROW_MAJOR)
# Timing preference: the documented layout when it is correct (what users hold), else the other.
PREFERENCE: Tuple[str, ...] = (ROW_MAJOR, M_CONTIGUOUS)

OK = "ok"  # ran, finite, calc_diff below the limit
WRONG = "wrong"  # ran, but NaN/Inf in the output or calc_diff at or above the limit
ERROR = "error"  # raised (argument rejected, ...), context still usable
CRASH = "crash"  # the process died or its CUDA context broke
NOT_RUN = "not-run"  # not probed (an earlier crash, unsupported shape, no FlashInfer)
STATUSES = (OK, WRONG, ERROR, CRASH, NOT_RUN)


def classify(diff: Optional[float], finite: bool, max_diff: float = 1e-3) -> str:
    """Outcome of a call that ran: ok only for an all-finite output with calc_diff < max_diff."""
    if not finite or diff is None or diff != diff or not diff < max_diff:
        return WRONG
    return OK


def outcome(status: str, diff: Optional[float] = None, note: str = "") -> Dict:
    if status not in STATUSES:
        raise ValueError(f"unknown probe status {status!r}")
    return {"status": status, "diff": diff, "note": note}


def decide_layout(outcomes: Dict[str, Dict], preference: Sequence[str] = PREFERENCE) -> Tuple[Optional[str], str]:
    """The layout to time FlashInfer with: the first of `preference` whose probe was ok; None when no
    layout was correct. Returns (layout, a one-line reason naming every layout's outcome)."""
    parts = []
    for layout in PROBE_ORDER:
        result = outcomes.get(layout, outcome(NOT_RUN))
        diff = result.get("diff")
        diff_text = f" {diff:.3g}" if isinstance(diff, (int, float)) else ""
        parts.append(f"{layout}: {result['status']}{diff_text}")
    summary = "; ".join(parts)
    for layout in preference:
        if outcomes.get(layout, {}).get("status") == OK:
            return layout, summary
    return None, summary


def documented_layout_works(outcomes: Dict[str, Dict]) -> Optional[bool]:
    """True/False when the documented row-major layout was probed (ok or not), None when it was not run."""
    status = outcomes.get(ROW_MAJOR, {}).get("status", NOT_RUN)
    if status == NOT_RUN:
        return None
    return status == OK
