"""Suites and shapes: the DeepSeek-V3 projections, other models' projections, free shapes, and the grouped
(mixture-of-experts) cases. Pure Python (no torch): the harness's unit tests import it without a GPU.

A dense case is ``{"kind": "dense", "m", "n", "k"}`` (plus an optional ``label``); a grouped case is
``{"kind": "grouped", "layout": "contiguous" | "masked", "g", "n", "k", ...}`` with the per-group row counts
spelled out (``sizes`` for contiguous, ``masked_m`` for masked), so that every backend and every worker
process sees exactly the same problem.
"""

from __future__ import annotations

import re
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

GROUP = 128  # the K (and weight N) quantization group of every operand here

# DeepSeek-V3's projections (N, K): the suite of ../shared/reference/anchors_h100.md and bench_main.cpp.
DEEPSEEK_NK: Tuple[Tuple[int, int], ...] = (
    (2112, 7168),
    (576, 7168),
    (24576, 1536),
    (32768, 512),
    (7168, 16384),
    (4096, 7168),
    (7168, 2048),
)
# The M list of the anchors' second measurement (2026-12-07); bench_main.cpp's C++ suite adds 2..48.
DEEPSEEK_M: Tuple[int, ...] = (1, 16, 64, 128, 512, 4096)

# Other models' projections (bench/NOTES.md "Shapes outside the suite", scripts/device_plan_sweep.sh).
OTHER_MODELS: Tuple[Tuple[str, int, int], ...] = (
    ("Llama-3-8B/Mixtral qkv", 6144, 4096),
    ("Llama-3-8B/Mixtral o", 4096, 4096),
    ("Llama-3-8B/Mixtral gate_up", 28672, 4096),
    ("Llama-3-8B/Mixtral down", 4096, 14336),
    ("Llama-3-70B qkv", 10240, 8192),
    ("Llama-3-70B o", 8192, 8192),
    ("Llama-3-70B gate_up", 57344, 8192),
    ("Llama-3-70B down", 8192, 28672),
    ("Qwen2.5-7B qkv", 4608, 3584),
    ("Qwen2.5-7B o", 3584, 3584),
    ("Qwen2.5-7B gate_up", 37888, 3584),
    ("Qwen2.5-7B down", 3584, 18944),
    ("Qwen3-MoE expert gate_up", 1536, 2048),
    ("Qwen3-MoE expert down", 2048, 768),
    ("5120-hidden gate_up", 35840, 5120),
    ("5120-hidden down", 5120, 17920),
)
OTHER_M: Tuple[int, ...] = (1, 32, 128, 512, 2048)

# Grouped GEMM (issue 25): DeepSeek-V3's experts, gate+up fused (N = 4096) and down (N = 7168).
GROUPED_NK: Tuple[Tuple[int, int], ...] = ((4096, 7168), (7168, 2048))
CONTIGUOUS_G: Tuple[int, ...] = (4, 8, 32)
# Routing of the contiguous layout: every group the same size, or sizes spread geometrically over
# [1024, 8192] (a skewed router: a few hot experts, many cold ones).
CONTIGUOUS_ROUTINGS: Tuple[Tuple[str, int, int], ...] = (
    ("uniform", 1024, 1024),
    ("uniform", 4096, 4096),
    ("skewed", 1024, 8192),
)
MASKED_G: Tuple[int, ...] = (8, 32, 64)
MASKED_EXPECTED_M: Tuple[int, ...] = (16, 64, 256)

SUITES = ("deepseek", "other", "grouped", "shapes")

# M regimes of the summaries (README's table): decode, mid, prefill.
REGIMES: Tuple[str, ...] = ("M <= 32", "M 64..512", "M >= 1024")


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def align_up(value: int, alignment: int) -> int:
    return ceil_div(value, alignment) * alignment


def regime(m: int) -> str:
    """The summary regime of a row count: M <= 32, 32 < M < 1024 (labelled 64..512), M >= 1024."""
    if m <= 32:
        return REGIMES[0]
    if m < 1024:
        return REGIMES[1]
    return REGIMES[2]


def dense_case(m: int, n: int, k: int, label: str = "") -> Dict:
    for name, value in (("M", m), ("N", n), ("K", k)):
        if not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    case = {"kind": "dense", "m": m, "n": n, "k": k}
    if label:
        case["label"] = label
    return case


_SHAPE_RE = re.compile(r"^\s*(\d+)\s*[xX,]\s*(\d+)\s*[xX,]\s*(\d+)\s*$")


def parse_shape(text: str) -> Dict:
    """'MxNxK' (or 'M,N,K') -> a dense case."""
    match = _SHAPE_RE.match(text)
    if match is None:
        raise ValueError(f"bad shape {text!r}: want MxNxK, e.g. 4096x7168x16384")
    m, n, k = (int(group) for group in match.groups())
    return dense_case(m, n, k)


def parse_int_list(text: str, what: str = "list") -> List[int]:
    values = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit() or int(item) <= 0:
            raise ValueError(f"bad {what} entry {item!r}: want positive integers separated by commas")
        values.append(int(item))
    if not values:
        raise ValueError(f"empty {what}")
    return values


def deepseek_cases(m_list: Optional[Sequence[int]] = None) -> List[Dict]:
    ms = DEEPSEEK_M if m_list is None else m_list
    return [dense_case(m, n, k) for n, k in DEEPSEEK_NK for m in ms]


def other_model_cases(m_list: Optional[Sequence[int]] = None) -> List[Dict]:
    ms = OTHER_M if m_list is None else m_list
    return [dense_case(m, n, k, label) for label, n, k in OTHER_MODELS for m in ms]


def skewed_sizes(g: int, low: int, high: int) -> List[int]:
    """g row counts spread geometrically from `low` to `high`, interleaved so that hot and cold groups
    alternate (deterministic: every process builds the same routing)."""
    if g <= 0 or low <= 0 or high < low:
        raise ValueError(f"skewed_sizes: bad arguments g={g} low={low} high={high}")
    if g == 1:
        return [low]
    ratio = high / low
    ladder = [int(round(low * ratio ** (i / (g - 1)))) for i in range(g)]
    # Interleave the ladder's ends: low, high, second lowest, second highest, ...
    order: List[int] = []
    lo, hi = 0, g - 1
    while lo <= hi:
        order.append(ladder[lo])
        if lo != hi:
            order.append(ladder[hi])
        lo += 1
        hi -= 1
    return order


def masked_counts(g: int, expected_m: int, seed: int = 0) -> List[int]:
    """Valid rows per group of a masked case: expected_m * u, u in [0.7, 1.3], from a small LCG (the
    spread DeepGEMM's own tests use), at least 1. Deterministic in (g, expected_m, seed)."""
    if g <= 0 or expected_m <= 0:
        raise ValueError(f"masked_counts: bad arguments g={g} expected_m={expected_m}")
    state = (seed * 6364136223846793005 + 1442695040888963407 + expected_m * 1000003 + g) & (2**64 - 1)
    counts = []
    for _ in range(g):
        state = (state * 6364136223846793005 + 1442695040888963407) & (2**64 - 1)
        u = 0.7 + 0.6 * ((state >> 11) / float(2**53))
        counts.append(max(1, int(expected_m * u)))
    return counts


def contiguous_case(g: int, n: int, k: int, routing: str, low: int, high: int) -> Dict:
    if routing == "uniform":
        sizes = [low] * g
        name = f"uniform-{low}"
    elif routing == "skewed":
        sizes = skewed_sizes(g, low, high)
        name = f"skewed-{low}..{high}"
    else:
        raise ValueError(f"unknown routing {routing!r}")
    return {"kind": "grouped", "layout": "contiguous", "g": g, "n": n, "k": k, "routing": name, "sizes": sizes}


def masked_case(g: int, n: int, k: int, expected_m: int, seed: int = 0) -> Dict:
    counts = masked_counts(g, expected_m, seed)
    return {
        "kind": "grouped",
        "layout": "masked",
        "g": g,
        "n": n,
        "k": k,
        "expected_m": expected_m,
        "masked_m": counts,
        "m_max": align_up(max(counts), GROUP),
    }


def grouped_cases(layouts: Iterable[str] = ("contiguous", "masked")) -> List[Dict]:
    layouts = tuple(layouts)
    cases: List[Dict] = []
    for n, k in GROUPED_NK:
        if "contiguous" in layouts:
            for g in CONTIGUOUS_G:
                for routing, low, high in CONTIGUOUS_ROUTINGS:
                    cases.append(contiguous_case(g, n, k, routing, low, high))
        if "masked" in layouts:
            for g in MASKED_G:
                for expected_m in MASKED_EXPECTED_M:
                    cases.append(masked_case(g, n, k, expected_m))
    return cases


def valid_rows(case: Dict) -> int:
    """Rows that carry results: M of a dense case, the sum over groups of a grouped one."""
    if case["kind"] == "dense":
        return case["m"]
    if case["layout"] == "contiguous":
        return sum(case["sizes"])
    return sum(case["masked_m"])


def effective_m(case: Dict) -> int:
    """The M that decides a case's regime and whether it gets the steady-state protocol."""
    return valid_rows(case)


def case_flops(case: Dict) -> int:
    return 2 * valid_rows(case) * case["n"] * case["k"]


def case_key(case: Dict) -> str:
    """A short unique name of a case, used as its key in results and tables."""
    if case["kind"] == "dense":
        return f"{case['m']}x{case['n']}x{case['k']}"
    if case["layout"] == "contiguous":
        return f"contig G={case['g']} {case['routing']} {case['n']}x{case['k']}"
    return f"masked G={case['g']} m~{case['expected_m']} {case['n']}x{case['k']}"


def suite_cases(
    suite: str,
    m_list: Optional[Sequence[int]] = None,
    shapes: Sequence[Dict] = (),
    grouped_layouts: Iterable[str] = ("contiguous", "masked"),
) -> List[Dict]:
    if suite == "deepseek":
        return deepseek_cases(m_list)
    if suite == "other":
        return other_model_cases(m_list)
    if suite == "grouped":
        return grouped_cases(grouped_layouts)
    if suite == "shapes":
        return [dict(case) for case in shapes]
    raise ValueError(f"unknown suite {suite!r} (want one of {', '.join(SUITES)})")
