"""Timing protocols and the run's schedule and time budget. Pure Python.

burst:  the CUDA graph (about 3 ms of calls rotating over the operand sets) is replayed once untimed, then
        `replays` times back to back; the time per call is the median replay / calls per graph. From M >=
        `steady_min_m` the card first idles `burst_idle_s` (0.5 s): a burst there would otherwise time
        whatever clock the previous backend's load left (two runs of the same tree disagreed by 3% on a
        large-M geomean because of it), and after an idle pause every backend starts at the full clock.
steady: the same graph is first replayed for `steady_s` seconds (>= 1 s), so the card reaches the clock and
        power it holds under continuous load (the 700 W cap at large M), then timed the same way. Run for
        cases with M >= `steady_min_m` (512), where the cap binds; large-M claims use it.

Backends alternate: round r runs the backend list forward on even r and reversed on odd r, so no backend
is always first (coolest) or last; each backend's figure is the best of its rounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple

PROTOCOLS: Tuple[str, ...] = ("burst", "steady")
STEADY_MIN_M = 512
DEFAULT_ROUNDS = 2
DEFAULT_REPLAYS = 7
DEFAULT_GRAPH_US = 3000.0
DEFAULT_MAX_CALLS = 2000
DEFAULT_STEADY_S = 1.0
DEFAULT_BURST_IDLE_S = 0.5


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of nothing")
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return float(ordered[middle])
    return 0.5 * (ordered[middle - 1] + ordered[middle])


def protocols_for(m_effective: int, requested: Sequence[str], steady_min_m: int = STEADY_MIN_M) -> List[str]:
    """The protocols a case gets, in run order: burst always (if requested), steady from M >= steady_min_m."""
    chosen = []
    for protocol in PROTOCOLS:
        if protocol not in requested:
            continue
        if protocol == "steady" and m_effective < steady_min_m:
            continue
        chosen.append(protocol)
    return chosen


def idle_before(protocol: str, m_effective: int, burst_idle_s: float, steady_min_m: int = STEADY_MIN_M) -> float:
    """Seconds the card idles before a timing: burst timings of the cases large enough for the power cap
    to bind (M >= steady_min_m) start from an idle card; everything else starts at once."""
    if burst_idle_s < 0:
        raise ValueError(f"burst_idle_s must be >= 0, got {burst_idle_s}")
    return burst_idle_s if protocol == "burst" and m_effective >= steady_min_m else 0.0


def round_order(backends: Sequence[str], round_index: int) -> List[str]:
    """Backends in the order round `round_index` times them: forward on even rounds, reversed on odd."""
    ordered = list(backends)
    return ordered[::-1] if round_index % 2 else ordered


def schedule(backends: Sequence[str], protocols: Sequence[str], rounds: int) -> List[Tuple[str, int, int, str]]:
    """Every timing of one case in run order: (protocol, round, position in the round, backend). Protocols
    run one after the other (burst first, while the card is as the previous case left it), each over
    `rounds` alternating rounds."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    steps = []
    for protocol in protocols:
        for round_index in range(rounds):
            for position, backend in enumerate(round_order(backends, round_index)):
                steps.append((protocol, round_index, position, backend))
    return steps


def graph_call_count(target_us: float, per_call_us: float, num_sets: int, max_calls: int = DEFAULT_MAX_CALLS) -> int:
    """Calls captured into one graph: about `target_us` of work, at most `max_calls`, and never fewer than
    the rotation's sets (each set must be visited)."""
    if num_sets < 1:
        raise ValueError(f"num_sets must be >= 1, got {num_sets}")
    per_call = max(per_call_us, 0.5)
    wanted = int(math.ceil(target_us / per_call))
    return max(num_sets, min(max(wanted, 1), max_calls))


@dataclass
class CostModel:
    """Seconds of wall time the parts of a run take (rough H100 figures; the estimate is printed before the
    run and the measured time after it, so the model can be corrected)."""

    worker_start_s: float = 25.0  # all workers start in parallel: torch, peers' modules, CUDA contexts
    prepare_s: float = 1.5  # per case: operands, quantizers, reference, every backend's check
    probe_s: float = 1.0  # per case with FlashInfer: both input-scale layouts, in the probe process
    capture_s: float = 0.25  # per (case, backend): eager sizing call, graph capture, warm replay
    timing_overhead_s: float = 0.02  # per timing: requests, NVML, events
    graph_ms: float = 3.0  # one replay
    report_s: float = 10.0  # tables, JSON, plots


def estimate_case_seconds(
    n_backends: int,
    protocols: Sequence[str],
    rounds: int,
    steady_s: float,
    replays: int,
    probe: bool,
    model: CostModel,
    burst_idle_s: float = 0.0,
) -> float:
    """Wall time of one case; `burst_idle_s` is the idle pause before each of its burst timings (0 where
    idle_before gives none)."""
    per_replay_s = model.graph_ms / 1000.0
    seconds = model.prepare_s + (model.probe_s if probe else 0.0) + n_backends * model.capture_s
    for protocol in protocols:
        per_timing = model.timing_overhead_s + (replays + 1) * per_replay_s
        if protocol == "steady":
            per_timing += steady_s
        else:
            per_timing += burst_idle_s
        seconds += rounds * n_backends * per_timing
    return seconds


@dataclass
class Estimate:
    total_s: float
    cases: int
    timings: int
    steady_timings: int
    per_case_s: List[float] = field(default_factory=list)
    capped_cases: int = 0

    def describe(self) -> str:
        text = (
            f"estimated wall time {self.total_s:.0f} s ({self.total_s / 60:.1f} min): {self.cases} cases, "
            f"{self.timings} timings ({self.steady_timings} steady-state)"
        )
        if self.capped_cases:
            text += f", {self.capped_cases} cases capped by the per-case budget"
        return text


def estimate_run(
    cases: Sequence[Dict],
    protocols: Sequence[str],
    rounds: int,
    steady_s: float,
    replays: int = DEFAULT_REPLAYS,
    steady_min_m: int = STEADY_MIN_M,
    case_budget_s: float = float("inf"),
    model: CostModel = CostModel(),
    burst_idle_s: float = 0.0,
) -> Estimate:
    """Estimated wall time of a run. `cases` are dicts with 'm_effective', 'backends' (how many run) and
    'probe' (whether FlashInfer's layout probe runs); each case is capped at `case_budget_s`, which the run
    enforces by skipping the timings left when a case overruns it."""
    total = model.worker_start_s + model.report_s
    timings = steady = capped = 0
    per_case = []
    for case in cases:
        chosen = protocols_for(case["m_effective"], protocols, steady_min_m)
        idle = idle_before("burst", case["m_effective"], burst_idle_s, steady_min_m)
        seconds = estimate_case_seconds(
            case["backends"], chosen, rounds, steady_s, replays, case["probe"], model, burst_idle_s=idle
        )
        if seconds > case_budget_s:
            seconds = case_budget_s
            capped += 1
        per_case.append(seconds)
        total += seconds
        timings += len(chosen) * rounds * case["backends"]
        steady += ("steady" in chosen) * rounds * case["backends"]
    return Estimate(
        total_s=total,
        cases=len(per_case),
        timings=timings,
        steady_timings=steady,
        per_case_s=per_case,
        capped_cases=capped,
    )
