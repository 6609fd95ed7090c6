"""Grouped FP8 block-scaled GEMM for mixture-of-experts layers (the C++ API of ``blockgemm/grouped.h``).

G groups (experts) in one launch; group g multiplies its rows of the input by its own weight ``weight[g]``:

* :func:`grouped_gemm_contiguous` (prefill): ``input`` (M_total, K) holds the groups' rows one after the other,
  given as int32 ``offsets`` (G + 1,) (group g owns rows ``offsets[g]:offsets[g + 1]``; no alignment needed,
  empty groups allowed) or as DeepGEMM's per-row ``group_index`` (M_total,) (-1 for padding rows). Rows
  outside every group are not written.
* :func:`grouped_gemm_masked` (decode): ``input`` (G, M_max, K); group g's first ``masked_m[g]`` rows are
  valid, the others are neither read into any result nor written.

Scales as in :func:`blockgemm.fp8_blockscale_gemm_sm90`: ``input_scale`` one fp32 per 1x128 group of each
row ((M_total, K/128), or (G, M_max, K/128) masked); ``weight_scale`` (G, ceil(N/128), K/128) per 128x128
block or (G, N, K/128) per 1x128 row group. A bf16 input is quantized inside (``input_scale`` None); the
weight must be fp8 (quantize a bf16 one once with :func:`blockgemm.testing.per_block_cast_to_fp8` per group).
Output bf16.

The group tables stay on the GPU and are read by the kernel: the calls never synchronise, so they capture
into CUDA graphs whose replays may see new counts, and run under ``torch.compile``. The kernel is memory-safe
on any table values (offsets clamped into [0, M_total] and made non-decreasing, counts clamped into
[0, M_max], indices outside [0, G) treated as padding), but wrong tables give wrong results. So
:func:`grouped_gemm_contiguous` validates its table by default — a copy to the host and a stream
synchronisation — except while a CUDA graph is being captured or ``torch.compile`` traces (then nothing is
checked); pass ``validate=False`` to skip the synchronisation in eager hot paths. Errors: offsets that
decrease or pass M_total, group indices outside [-1, G), a group's rows not in one run.
"""

# No `from __future__ import annotations`: torch.library infers the ops' schemas from the annotations.
from typing import Optional

import torch

from . import _blockgemm_ext as _ext
from ._gemm import _check_tensor, _desc, _direct, _optional_desc, _stream

__all__ = ["grouped_gemm_contiguous", "grouped_gemm_masked", "contiguous_group_alignment"]

# The library's argument errors (a ValueError); plain ValueError with an extension that predates the class.
_ArgumentError = getattr(_ext, "BlockgemmArgumentError", ValueError)

_CONTIGUOUS = "grouped_gemm_contiguous"
_MASKED = "grouped_gemm_masked"


def contiguous_group_alignment() -> int:
    """The row alignment of DeepGEMM's contiguous layout (each group's run of rows in a ``group_index`` starts
    at a multiple of it): 128. Not required here (any start works)."""
    return _ext.contiguous_group_alignment()


def _workspace(nbytes: int, device: torch.device) -> Optional[torch.Tensor]:
    # From torch's caching allocator: cheap per call, stream-ordered, and from the graph's private pool
    # under CUDA graph capture (where the library's own buffer could not grow).
    return torch.empty(nbytes, dtype=torch.uint8, device=device) if nbytes > 0 else None


def _require_dim(function: str, name: str, t: torch.Tensor, dim: int, dims: str) -> None:
    # Needed before the library sees the operands (to allocate out): the library's message format.
    if t.dim() != dim:
        raise _ArgumentError(f"{function}: {name}: expected a {dim}-D tensor {dims}, got {t.dim()}-D tensor")


def _contiguous_out_shape(input: torch.Tensor, weight: torch.Tensor) -> tuple:
    _require_dim(_CONTIGUOUS, "input", input, 2, "(M_total, K)")
    _require_dim(_CONTIGUOUS, "weight", weight, 3, "(G, N, K)")
    return (input.shape[0], weight.shape[1])


def _masked_out_shape(input: torch.Tensor, weight: torch.Tensor) -> tuple:
    _require_dim(_MASKED, "input", input, 3, "(G, M_max, K)")
    _require_dim(_MASKED, "weight", weight, 3, "(G, N, K)")
    return (input.shape[0], input.shape[1], weight.shape[1])


def _run_contiguous(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    table: torch.Tensor,
    table_kind: str,
    out: torch.Tensor,
) -> None:
    input_desc, weight_desc, table_desc = _desc(input), _desc(weight), _desc(table)
    weight_scale_desc = _optional_desc(weight_scale)
    input_scale_desc = _optional_desc(input_scale)
    nbytes = _ext.grouped_contiguous_workspace_bytes(
        input_desc, weight_desc, table_desc, table_kind, weight_scale_desc, input_scale_desc
    )
    workspace = _workspace(nbytes, input.device)
    _ext.grouped_gemm_contiguous(
        input_desc,
        weight_desc,
        input_scale_desc,
        weight_scale_desc,
        table_desc,
        table_kind,
        _desc(out),
        _stream(input),
        0 if workspace is None else workspace.data_ptr(),
        nbytes,
    )


def _run_masked(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    masked_m: torch.Tensor,
    expected_m: Optional[int],
    out: torch.Tensor,
) -> None:
    input_desc, weight_desc = _desc(input), _desc(weight)
    weight_scale_desc = _optional_desc(weight_scale)
    input_scale_desc = _optional_desc(input_scale)
    nbytes = _ext.grouped_masked_workspace_bytes(
        input_desc, weight_desc, expected_m, weight_scale_desc, input_scale_desc
    )
    workspace = _workspace(nbytes, input.device)
    _ext.grouped_gemm_masked(
        input_desc,
        weight_desc,
        input_scale_desc,
        weight_scale_desc,
        _desc(masked_m),
        expected_m,
        _desc(out),
        _stream(input),
        0 if workspace is None else workspace.data_ptr(),
        nbytes,
    )


# ---------------------------------------------------------------- custom ops (torch.compile, dispatch)


@torch.library.custom_op("blockgemm::grouped_contiguous", mutates_args=())
def _grouped_contiguous(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    table: torch.Tensor,
    table_kind: str,
    out_dtype: torch.dtype,
) -> torch.Tensor:
    out = torch.empty(_contiguous_out_shape(input, weight), dtype=out_dtype, device=input.device)
    _run_contiguous(input, weight, input_scale, weight_scale, table, table_kind, out)
    return out


@_grouped_contiguous.register_fake
def _grouped_contiguous_fake(input, weight, input_scale, weight_scale, table, table_kind, out_dtype):
    return torch.empty(_contiguous_out_shape(input, weight), dtype=out_dtype, device=input.device)


@torch.library.custom_op("blockgemm::grouped_contiguous_out", mutates_args=("out",))
def _grouped_contiguous_out(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    table: torch.Tensor,
    table_kind: str,
    out: torch.Tensor,
) -> None:
    _run_contiguous(input, weight, input_scale, weight_scale, table, table_kind, out)


@_grouped_contiguous_out.register_fake
def _grouped_contiguous_out_fake(input, weight, input_scale, weight_scale, table, table_kind, out):
    return None


@torch.library.custom_op("blockgemm::grouped_masked", mutates_args=())
def _grouped_masked(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    masked_m: torch.Tensor,
    expected_m: Optional[int],
    out_dtype: torch.dtype,
) -> torch.Tensor:
    out = torch.empty(_masked_out_shape(input, weight), dtype=out_dtype, device=input.device)
    _run_masked(input, weight, input_scale, weight_scale, masked_m, expected_m, out)
    return out


@_grouped_masked.register_fake
def _grouped_masked_fake(input, weight, input_scale, weight_scale, masked_m, expected_m, out_dtype):
    return torch.empty(_masked_out_shape(input, weight), dtype=out_dtype, device=input.device)


@torch.library.custom_op("blockgemm::grouped_masked_out", mutates_args=("out",))
def _grouped_masked_out(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    masked_m: torch.Tensor,
    expected_m: Optional[int],
    out: torch.Tensor,
) -> None:
    _run_masked(input, weight, input_scale, weight_scale, masked_m, expected_m, out)


@_grouped_masked_out.register_fake
def _grouped_masked_out_fake(input, weight, input_scale, weight_scale, masked_m, expected_m, out):
    return None


# ---------------------------------------------------------------- public functions


def _may_synchronise(t: torch.Tensor) -> bool:
    # Validation copies a table to the host: not while torch.compile traces, nor while a CUDA graph is
    # being captured on the current stream (a synchronisation would invalidate the capture).
    if torch.compiler.is_compiling() or type(t) is not torch.Tensor:
        return False
    with torch.cuda.device(t.device):
        return not torch.cuda.is_current_stream_capturing()


def _resolve_out_dtype(function: str, out: Optional[torch.Tensor], out_dtype: Optional[torch.dtype]) -> torch.dtype:
    if out_dtype is not None and not isinstance(out_dtype, torch.dtype):
        raise TypeError(f"{function}: out_dtype: expected a torch.dtype or None, got {type(out_dtype).__name__}")
    if out is not None:
        _check_tensor("out", out, function=function)
        if out_dtype is not None and out_dtype != out.dtype:
            raise _ArgumentError(f"{function}: out_dtype: expected out's dtype {out.dtype} (or None), got {out_dtype}")
        return out.dtype
    return torch.bfloat16 if out_dtype is None else out_dtype


def grouped_gemm_contiguous(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor] = None,
    weight_scale: Optional[torch.Tensor] = None,
    *,
    offsets: Optional[torch.Tensor] = None,
    group_index: Optional[torch.Tensor] = None,
    out: Optional[torch.Tensor] = None,
    out_dtype: Optional[torch.dtype] = None,
    validate: bool = True,
) -> torch.Tensor:
    """Per group g: ``out[rows of g] = input[rows of g] @ weight[g].T`` with FP8 block scaling (Hopper GPU).

    Args:
        input: (M_total, K) ``torch.float8_e4m3fn`` or ``torch.bfloat16``, row-major (16-byte row stride).
        weight: (G, N, K) ``torch.float8_e4m3fn``, contiguous groups of row-major rows.
        input_scale: (M_total, K/128) float32, row- or column-major; required for fp8 input, None for bf16.
        weight_scale: (G, ceil(N/128), K/128) per 128x128 block or (G, N, K/128) per 1x128 row group, float32.
        offsets: int32 (G + 1,) on the GPU: group g owns rows ``offsets[g]:offsets[g + 1]``. Or
        group_index: int32 (M_total,) on the GPU: each row's group, -1 for padding (DeepGEMM's layout; each
            group's rows one run, aligned to :func:`contiguous_group_alignment` there). Exactly one of the two.
        out: optional (M_total, N) bf16 row-major tensor to write (rows outside every group keep their values);
            returned. Without it a new tensor is returned whose rows outside every group are uninitialised.
        out_dtype: ``torch.bfloat16`` (the default; the grouped kernels write bf16).
        validate: check the group table first (copies it to the host and synchronises), except during CUDA
            graph capture or torch.compile tracing, where nothing is checked.

    K must be a multiple of 128 and N of 16. Runs on the current stream of the input's device.

    Raises:
        TypeError: an argument is not a tensor.
        ValueError: any invalid argument (the message names it, the expected and the given value), including
            a group table that fails validation (``blockgemm.BlockgemmArgumentError``, a ValueError).
    """
    for name, t, optional in (
        ("input", input, False),
        ("weight", weight, False),
        ("input_scale", input_scale, True),
        ("weight_scale", weight_scale, True),
        ("offsets", offsets, True),
        ("group_index", group_index, True),
    ):
        _check_tensor(name, t, optional=optional, function=_CONTIGUOUS)
    if (offsets is None) == (group_index is None):
        given = "both" if offsets is not None else "neither"
        raise _ArgumentError(f"{_CONTIGUOUS}: offsets/group_index: expected exactly one of them, got {given}")
    table, table_kind = (offsets, "offsets") if offsets is not None else (group_index, "group_index")
    dtype = _resolve_out_dtype(_CONTIGUOUS, out, out_dtype)
    if validate and _may_synchronise(table):
        # The argument checks the table's reading relies on, in the library's words; the rest are the call's.
        _contiguous_out_shape(input, weight)
        if table.dtype != torch.int32 or table.dim() != 1:
            raise _ArgumentError(
                f"{_CONTIGUOUS}: {table_kind}: expected a 1-D int32 tensor, got {table.dim()}-D {table.dtype}"
            )
        if table_kind == "offsets":
            _ext.validate_group_offsets(_desc(table), input.shape[0], _stream(table))
        else:
            _ext.validate_group_index(_desc(table), weight.shape[0], _stream(table))
    direct = _direct(input, weight, input_scale, weight_scale, table, out)
    if out is not None:
        if direct:
            _run_contiguous(input, weight, input_scale, weight_scale, table, table_kind, out)
        else:
            torch.ops.blockgemm.grouped_contiguous_out(input, weight, input_scale, weight_scale, table, table_kind, out)
        return out
    if direct:
        result = torch.empty(_contiguous_out_shape(input, weight), dtype=dtype, device=input.device)
        _run_contiguous(input, weight, input_scale, weight_scale, table, table_kind, result)
        return result
    return torch.ops.blockgemm.grouped_contiguous(input, weight, input_scale, weight_scale, table, table_kind, dtype)


def grouped_gemm_masked(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor] = None,
    weight_scale: Optional[torch.Tensor] = None,
    *,
    masked_m: torch.Tensor,
    expected_m: Optional[int] = None,
    out: Optional[torch.Tensor] = None,
    out_dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Per group g: ``out[g, :masked_m[g]] = input[g, :masked_m[g]] @ weight[g].T`` (FP8 block scaling).

    Args:
        input: (G, M_max, K) ``torch.float8_e4m3fn`` or ``torch.bfloat16``, contiguous rows.
        weight: (G, N, K) ``torch.float8_e4m3fn``.
        input_scale: (G, M_max, K/128) float32, each group's matrix row- or column-major; required for fp8
            input, None for bf16.
        weight_scale: (G, ceil(N/128), K/128) or (G, N, K/128) float32.
        masked_m: int32 (G,) on the GPU, read by the kernel (values clamped into [0, M_max]); may change
            between CUDA graph replays.
        expected_m: the typical rows per group (>= 1; default M_max): picks the kernel's tile, nothing else.
        out: optional (G, M_max, N) bf16 tensor to write (masked rows keep their values); returned. Without it
            a new tensor is returned whose masked rows are uninitialised.
        out_dtype: ``torch.bfloat16`` (the default).

    Raises:
        TypeError: an argument is not a tensor (or expected_m not an int).
        ValueError: any invalid argument (the message names it; ``blockgemm.BlockgemmArgumentError``).
    """
    for name, t, optional in (
        ("input", input, False),
        ("weight", weight, False),
        ("input_scale", input_scale, True),
        ("weight_scale", weight_scale, True),
        ("masked_m", masked_m, False),
    ):
        _check_tensor(name, t, optional=optional, function=_MASKED)
    if expected_m is not None and (isinstance(expected_m, bool) or not isinstance(expected_m, int)):
        raise TypeError(f"{_MASKED}: expected_m: expected an int or None, got {type(expected_m).__name__}")
    dtype = _resolve_out_dtype(_MASKED, out, out_dtype)
    direct = _direct(input, weight, input_scale, weight_scale, masked_m, out)
    if out is not None:
        if direct:
            _run_masked(input, weight, input_scale, weight_scale, masked_m, expected_m, out)
        else:
            torch.ops.blockgemm.grouped_masked_out(input, weight, input_scale, weight_scale, masked_m, expected_m, out)
        return out
    if direct:
        result = torch.empty(_masked_out_shape(input, weight), dtype=dtype, device=input.device)
        _run_masked(input, weight, input_scale, weight_scale, masked_m, expected_m, result)
        return result
    return torch.ops.blockgemm.grouped_masked(input, weight, input_scale, weight_scale, masked_m, expected_m, dtype)
