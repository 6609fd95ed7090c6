"""Operand-set rotation: how many independent copies of a call's operands the timed graph cycles through so
that the L2 cache (50 MB on H100) never holds them, and the byte counts behind it. Pure Python.

Every set holds all of a call's operands and its output at distinct addresses. The count is sized by the
FP8 x FP8 call's bytes (input, weight, both scales, output) and handed to every backend, so all backends
rotate over the same number of sets; the BF16 operands of the other paths and of cuBLAS are twice as wide,
so those rotate over more than the target.
"""

from __future__ import annotations

from typing import Dict

from .shapes import GROUP, align_up, ceil_div

MIB = 1 << 20
GIB = 1 << 30
L2_BYTES = 50 * MIB
ROTATION_TARGET_BYTES = 256 * MIB  # 5x the H100's L2
MIN_SETS = 2
MAX_SETS = 2000
MEMORY_CAP_BYTES = 8 * GIB  # per backend process, all sets together

FP8_BYTES = 1
BF16_BYTES = 2
FP32_BYTES = 4


def rotation_sets(
    bytes_per_set: int,
    target_bytes: int = ROTATION_TARGET_BYTES,
    min_sets: int = MIN_SETS,
    max_sets: int = MAX_SETS,
    memory_cap_bytes: int = MEMORY_CAP_BYTES,
    footprint_per_set: int = 0,
) -> int:
    """Sets to rotate over: enough that together they hold >= `target_bytes` (ceil(target / bytes)), at
    least `min_sets`, at most `max_sets`, and no more than `memory_cap_bytes` allows given each set's
    allocated footprint (`footprint_per_set`, default `bytes_per_set`). `min_sets` wins over the cap: two
    sets of a huge problem are still two sets."""
    if bytes_per_set <= 0:
        raise ValueError(f"rotation_sets: bytes_per_set must be positive, got {bytes_per_set}")
    if min_sets < 1 or max_sets < min_sets:
        raise ValueError(f"rotation_sets: bad bounds min_sets={min_sets} max_sets={max_sets}")
    footprint = footprint_per_set if footprint_per_set > 0 else bytes_per_set
    wanted = ceil_div(target_bytes, bytes_per_set)
    affordable = memory_cap_bytes // footprint
    return max(min_sets, min(wanted, affordable, max_sets))


def weight_scale_rows(n: int, weight_scale: str) -> int:
    if weight_scale == "block":
        return ceil_div(n, GROUP)
    if weight_scale == "row":
        return n
    raise ValueError(f"unknown weight scale kind {weight_scale!r} (want block or row)")


def dense_call_bytes(
    m: int,
    n: int,
    k: int,
    weight_scale: str = "block",
    input_bytes: int = FP8_BYTES,
    weight_bytes: int = FP8_BYTES,
    out_bytes: int = BF16_BYTES,
) -> int:
    """Bytes one call reads and writes, each once: input, weight, their fp32 scales (fp8 operands only),
    output. The GB/s numerator and the rotation's set size."""
    kg = ceil_div(k, GROUP)
    total = m * k * input_bytes + n * k * weight_bytes + m * n * out_bytes
    if input_bytes == FP8_BYTES:
        total += m * kg * FP32_BYTES
    if weight_bytes == FP8_BYTES:
        total += weight_scale_rows(n, weight_scale) * kg * FP32_BYTES
    return total


def grouped_weight_bytes(g: int, n: int, k: int, weight_scale: str = "block") -> int:
    """The weights of all groups with their scales: what a grouped call must stream at least once."""
    return g * (n * k * FP8_BYTES + weight_scale_rows(n, weight_scale) * ceil_div(k, GROUP) * FP32_BYTES)


def grouped_call_bytes(case: Dict, weight_scale: str = "block") -> int:
    """Bytes a grouped call must move: the valid input rows with their scales, every group's weight, and
    the valid output rows."""
    from .shapes import valid_rows

    rows = valid_rows(case)
    n, k = case["n"], case["k"]
    kg = ceil_div(k, GROUP)
    return (
        rows * (k * FP8_BYTES + kg * FP32_BYTES)
        + grouped_weight_bytes(case["g"], n, k, weight_scale)
        + rows * n * BF16_BYTES
    )


def grouped_footprint_bytes(case: Dict, alignment: int = GROUP, weight_scale: str = "block") -> int:
    """Allocated bytes of one set of a grouped case (padding rows and unused masked rows included), for
    the memory cap."""
    n, k, g = case["n"], case["k"], case["g"]
    kg = ceil_div(k, GROUP)
    if case["layout"] == "contiguous":
        rows = sum(align_up(size, alignment) for size in case["sizes"])
    else:
        rows = g * case["m_max"]
    return rows * (k + kg * FP32_BYTES + n * BF16_BYTES) + grouped_weight_bytes(g, n, k, weight_scale)


def case_bytes(case: Dict) -> int:
    """The FP8 x FP8 call's bytes of a case (dense or grouped): the set size every backend rotates by."""
    if case["kind"] == "dense":
        return dense_call_bytes(case["m"], case["n"], case["k"])
    return grouped_call_bytes(case)


def case_footprint(case: Dict) -> int:
    if case["kind"] == "dense":
        # cuBLAS bf16 holds bf16 copies of both operands: the widest backend decides the footprint.
        return dense_call_bytes(case["m"], case["n"], case["k"], input_bytes=BF16_BYTES, weight_bytes=BF16_BYTES)
    return grouped_footprint_bytes(case)


def case_rotation_sets(
    case: Dict, target_bytes: int = ROTATION_TARGET_BYTES, memory_cap_bytes: int = MEMORY_CAP_BYTES
) -> int:
    return rotation_sets(
        case_bytes(case),
        target_bytes=target_bytes,
        memory_cap_bytes=memory_cap_bytes,
        footprint_per_set=case_footprint(case),
    )
