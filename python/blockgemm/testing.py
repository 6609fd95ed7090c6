"""GPU quantizers for tests and for preparing fp8 operands of :func:`blockgemm.fp8_blockscale_gemm_sm90`.

Both take a 2-D CUDA tensor. bfloat16 is the quantizers' input format; float32 and float16 inputs are first
rounded to bfloat16 (``x.to(torch.bfloat16)``), so their result is that of the rounded values. The math is
the C++ library's (bitwise equal to its CPU reference): per group, amax (NaN-propagating) clamped below to
1e-4, scale = amax / 448, value = fp8 e4m3 of x / scale, round-to-nearest-even, saturating at +-448.
Scales are returned row-major (per_token_cast_to_fp8 can return them M-contiguous instead); dequantize with
``q.float() * scale`` of the element's group.
"""

from typing import Tuple

import torch

from ._gemm import _desc, _stream
from . import _blockgemm_ext as _ext

__all__ = ["per_token_cast_to_fp8", "per_block_cast_to_fp8"]

_GROUP = 128


def _prepare(function: str, x: object) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{function}: x: expected a torch.Tensor, got {type(x).__name__}")
    if not x.is_cuda:
        raise ValueError(f"{function}: x.device: expected a CUDA tensor, got {x.device}")
    if x.dim() != 2:
        raise ValueError(f"{function}: x: expected a 2-D tensor, got {x.dim()}-D tensor")
    if x.dtype in (torch.float32, torch.float16):
        x = x.to(torch.bfloat16)
    elif x.dtype != torch.bfloat16:
        raise ValueError(f"{function}: x.dtype: expected bfloat16 (or float32/float16), got {x.dtype}")
    # The kernels read through raw pointers: no autograd history is needed, and they want unit column
    # stride with 16-byte aligned rows, which a contiguous copy of a strided view provides.
    return x.detach().contiguous()


def _cast(function: str, x: object, row_group: int, m_contiguous: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    x = _prepare(function, x)
    rows, cols = x.shape
    out = torch.empty((rows, cols), dtype=torch.float8_e4m3fn, device=x.device)
    scale_rows, scale_cols = (rows + row_group - 1) // row_group, (cols + _GROUP - 1) // _GROUP
    if m_contiguous:
        # (M, K/128) with strides (1, ceil4(M)): a column of a K block's scales is 16-byte aligned and
        # contiguous, which the GEMM's 128-row tiles copy into shared memory in one bulk copy per stage.
        padded = (scale_rows + 3) // 4 * 4
        scales = torch.empty((scale_cols, padded), dtype=torch.float32, device=x.device).t()[:scale_rows]
    else:
        scales = torch.empty((scale_rows, scale_cols), dtype=torch.float32, device=x.device)
    cast = _ext.per_token_cast if row_group == 1 else _ext.per_block_cast
    cast(_desc(x), _desc(out), _desc(scales), _stream(x))
    return out, scales


def per_token_cast_to_fp8(x: torch.Tensor, *, m_contiguous_scales: bool = False) -> Tuple[torch.Tensor, torch.Tensor]:
    """x (M, K) -> (fp8 e4m3fn (M, K), float32 scales (M, ceil(K/128))), one scale per 1x128 group.

    The layout ``input_scale`` (and a per-row ``weight_scale``) of the GEMM expects. K must be a multiple
    of 8. Asynchronous on the current stream.

    With ``m_contiguous_scales=True`` the same scale values come as a view with strides (1, ceil4(M)) of a
    (ceil(K/128), ceil4(M)) buffer (DeepGEMM's TMA-aligned layout): the GEMM's 128-row tiles then read a
    stage's input scales in one bulk copy, and the call skips the copy it makes of row-major ones before
    long plans (bench/NOTES.md #63, #67). For an activation ``input_scale``; a per-row ``weight_scale`` is
    read in either layout.
    """
    return _cast("per_token_cast_to_fp8", x, 1, m_contiguous=bool(m_contiguous_scales))


def per_block_cast_to_fp8(x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """x (N, K) -> (fp8 e4m3fn (N, K), float32 scales (ceil(N/128), ceil(K/128))), one per 128x128 block.

    The layout of a per-block ``weight_scale``. K must be a multiple of 8. Asynchronous on the current
    stream.
    """
    return _cast("per_block_cast_to_fp8", x, _GROUP)
