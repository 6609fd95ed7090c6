"""blockgemm: FP8 block-scaled GEMM for NVIDIA Hopper (SM90) as PyTorch custom ops.

    out (M, N) = input (M, K) @ weight (N, K)^T

with DeepSeek-style scales: ``input_scale`` (M, K/128) fp32, one per 1x128 group along K; ``weight_scale``
(ceil(N/128), K/128) for 128x128 blocks or (N, K/128) for 1x128 row groups (told apart by shape). bf16
operands are quantized inside (their scale must be None).

The public entry point is :func:`fp8_blockscale_gemm_sm90`. It dispatches to two ``torch.library`` custom
ops, ``torch.ops.blockgemm.gemm`` (allocates ``out``) and ``torch.ops.blockgemm.gemm_out`` (writes a given
``out``), so it works under ``torch.compile(fullgraph=True)`` and CUDA graph capture.

Argument checking is the C++ library's: its messages name the argument, the expected and the given value,
and arrive as ``ValueError`` (``NotImplementedError`` for unsupported cases, ``RuntimeError`` for CUDA
failures). Only what the library cannot see is checked here: that arguments are tensors and live on a GPU.
"""

__version__ = "0.1.0"

try:
    import torch  # noqa: F401  (loads the CUDA runtime the extension links against; see _gemm)
except ImportError as _error:
    # Without torch only the pure-Python parts (the benchmark's harness logic, blockgemm.bench) import; the
    # GEMM needs torch tensors.
    _MISSING_TORCH = _error
    __all__ = []

    def __getattr__(name: str):
        raise AttributeError(f"blockgemm.{name}: needs PyTorch, which cannot be imported ({_MISSING_TORCH})")

else:
    from ._gemm import BlockgemmArgumentError, fp8_blockscale_gemm_sm90
    from .grouped import contiguous_group_alignment, grouped_gemm_contiguous, grouped_gemm_masked

    __all__ = ["BlockgemmArgumentError", "fp8_blockscale_gemm_sm90"]
    __all__ += ["contiguous_group_alignment", "grouped_gemm_contiguous", "grouped_gemm_masked"]
