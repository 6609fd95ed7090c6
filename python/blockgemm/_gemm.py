"""The torch side of :func:`blockgemm.fp8_blockscale_gemm_sm90`: tensor descriptors, the custom ops and the
public function (see the package docstring)."""


# No `from __future__ import annotations`: torch.library infers the ops' schemas from the annotations,
# which must stay real objects, not strings.
from typing import Optional

# torch first: it loads the CUDA runtime (libcudart.so.13) that the extension links against, so the
# extension resolves it from the process instead of needing it on the loader path.
import torch

from . import _blockgemm_ext as _ext

_FUNCTION = "fp8_blockscale_gemm_sm90"
# Below this many input rows an fp8 call never copies its input scales (heuristics.h,
# kTransposeInputScalesMinRows): small-M calls skip the workspace query, a plan on the host.
_MIN_ROWS_FOR_SCALE_COPY = 128

# Every argument error, the extension's and this module's alike: a ValueError (FlashInfer's class for each of
# its documented errors) that is also a RuntimeError. An extension built before the class existed raises
# plain ValueError; so does this module then.
BlockgemmArgumentError = getattr(_ext, "BlockgemmArgumentError", ValueError)

# torch dtype -> the extension's dtype names. Anything else is passed by its torch name, and the extension
# reports it as unsupported, naming the argument.
_DTYPE_NAMES = {
    torch.float8_e4m3fn: "float8_e4m3fn",
    torch.bfloat16: "bfloat16",
    torch.float16: "float16",
    torch.float32: "float32",
}


def _dtype_name(dtype: torch.dtype) -> str:
    name = _DTYPE_NAMES.get(dtype)
    return name if name is not None else str(dtype).removeprefix("torch.")


def _desc(t: torch.Tensor) -> tuple:
    """The extension's view of a tensor: (data_ptr, dtype, shape, strides in elements, device or -1)."""
    index = t.device.index if t.is_cuda else None
    return (t.data_ptr(), _dtype_name(t.dtype), tuple(t.shape), t.stride(), -1 if index is None else index)


def _optional_desc(t: Optional[torch.Tensor]) -> Optional[tuple]:
    return None if t is None else _desc(t)


# torch's raw current-stream query skips building a torch.cuda.Stream object (about 2 us per call); the
# public API is the fallback where the private one is missing.
_raw_current_stream = getattr(torch._C, "_cuda_getCurrentRawStream", None)


def _stream(t: torch.Tensor) -> int:
    # torch's current stream for the tensor's device: inside torch.cuda.graph() that is the capturing stream.
    if not t.is_cuda:
        return 0
    if _raw_current_stream is not None:
        return _raw_current_stream(t.device.index)
    return torch.cuda.current_stream(t.device).cuda_stream


def _check_tensor(name: str, t: object, optional: bool = False, function: str = _FUNCTION) -> None:
    if t is None and optional:
        return
    if not isinstance(t, torch.Tensor):
        expected = "a torch.Tensor or None" if optional else "a torch.Tensor"
        raise TypeError(f"{function}: {name}: expected {expected}, got {type(t).__name__}")
    if not t.is_cuda:
        raise BlockgemmArgumentError(f"{function}: {name}.device: expected a CUDA tensor, got {t.device}")


def _out_shape(input: torch.Tensor, weight: torch.Tensor) -> tuple[int, int]:
    # Needed before the library sees the operands (to allocate out), so the rank check that would name them
    # happens here, in the library's message format.
    for name, t in (("input", input), ("weight", weight)):
        if t.dim() != 2:
            raise BlockgemmArgumentError(
                f"{_FUNCTION}: {name}: expected a 2-D tensor, got {t.dim()}-D tensor"
            )
    return input.shape[0], weight.shape[0]


def _direct(*tensors: Optional[torch.Tensor]) -> bool:
    """Whether an eager call goes straight to the extension: on plain tensors outside torch.compile. The
    torch.library dispatch costs ~35 us per call (measured on H100, see python/tests), several times a small
    GEMM; under torch.compile, or with tensor subclasses (fake tensors while tracing), the registered custom
    ops carry the call instead."""
    return not torch.compiler.is_compiling() and all(t is None or type(t) is torch.Tensor for t in tensors)


def _run(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    out: torch.Tensor,
) -> None:
    input_desc, weight_desc = _desc(input), _desc(weight)
    input_scale_desc = _optional_desc(input_scale)
    workspace = None
    # bf16 operands are quantized into a workspace. Taking it from torch's caching allocator makes it cheap
    # per call and valid under CUDA graph capture (it comes from the graph's private pool), where the
    # library's own buffer could not grow. An fp8 input's row-major scales are copied M-contiguous into one
    # before a long GEMM (bench/NOTES.md #63, #71): asked only where M is large enough for that to be possible.
    nbytes = 0
    if input.is_cuda and (input.dtype == torch.bfloat16 or weight.dtype == torch.bfloat16):
        nbytes = _ext.workspace_bytes(input_desc, weight_desc)
    elif input.is_cuda and input.dim() == 2 and input.shape[0] >= _MIN_ROWS_FOR_SCALE_COPY:
        try:
            nbytes = _ext.workspace_bytes(input_desc, weight_desc, input_scale_desc)
        except Exception:  # an argument the call below reports, with its own message
            nbytes = 0
    if nbytes > 0:
        try:
            workspace = torch.empty(nbytes, dtype=torch.uint8, device=input.device)
        except torch.cuda.OutOfMemoryError:
            if input.dtype == torch.bfloat16 or weight.dtype == torch.bfloat16:
                raise
            workspace = None  # the fp8 call's workspace is optional: read the scales as given
    _ext.gemm(
        input_desc,
        weight_desc,
        input_scale_desc,
        _optional_desc(weight_scale),
        _desc(out),
        _stream(input),
        0 if workspace is None else workspace.data_ptr(),
        0 if workspace is None else workspace.numel(),
    )


def _gemm_eager(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    out_dtype: torch.dtype,
) -> torch.Tensor:
    out = torch.empty(_out_shape(input, weight), dtype=out_dtype, device=input.device)
    _run(input, weight, input_scale, weight_scale, out)
    return out


@torch.library.custom_op("blockgemm::gemm", mutates_args=())
def _gemm(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    out_dtype: torch.dtype,
) -> torch.Tensor:
    return _gemm_eager(input, weight, input_scale, weight_scale, out_dtype)


@_gemm.register_fake
def _gemm_fake(input, weight, input_scale, weight_scale, out_dtype):
    return torch.empty(_out_shape(input, weight), dtype=out_dtype, device=input.device)


@torch.library.custom_op("blockgemm::gemm_out", mutates_args=("out",))
def _gemm_out(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor],
    weight_scale: Optional[torch.Tensor],
    out: torch.Tensor,
) -> None:
    _run(input, weight, input_scale, weight_scale, out)


@_gemm_out.register_fake
def _gemm_out_fake(input, weight, input_scale, weight_scale, out):
    return None


def fp8_blockscale_gemm_sm90(
    input: torch.Tensor,
    weight: torch.Tensor,
    input_scale: Optional[torch.Tensor] = None,
    weight_scale: Optional[torch.Tensor] = None,
    out: Optional[torch.Tensor] = None,
    out_dtype: Optional[torch.dtype] = None,
) -> torch.Tensor:
    """Returns ``input @ weight.T`` computed with FP8 block scaling on a Hopper GPU.

    A drop-in for FlashInfer's ``flashinfer.gemm.fp8_blockscale_gemm_sm90``: same arguments, same dtype
    combinations, its callers' input-scale layout and error words accepted.

    Args:
        input: (M, K) ``torch.float8_e4m3fn`` or ``torch.bfloat16``, row-major (row stride >= K).
        weight: (N, K) ``torch.float8_e4m3fn`` or ``torch.bfloat16``, row-major. An fp8 input needs an fp8
            weight.
        input_scale: float32, one scale per 1x128 group of the input; required for fp8 input, None for bf16
            input. Documented shape (M, K/128), row- or column-major (e.g. ``torch.empty(K // 128, M).t()``).
            Also accepted, where M != K/128: its transpose (K/128, M) in either layout, as FlashInfer's
            callers pass it (``buf[:, :M]`` of a (K/128, ceil4(M)) buffer holding the transposed scales).
            Where M == K/128 the two shapes coincide and the tensor is read as (M, K/128): pass those scales
            as an (M, K/128) view (``buf[:, :M].t()``).
        weight_scale: (ceil(N/128), K/128) per 128x128 block or (N, K/128) per 1x128 row group, float32;
            required for fp8 weight, None for bf16 weight.
        out: optional (M, N) bf16/fp16/fp32 row-major tensor to write; returned.
        out_dtype: dtype of the result (default ``torch.bfloat16``); must equal ``out.dtype`` if both given.

    K must be a multiple of 128 and N of 16. Runs on the current stream of the operands' device, without
    host synchronisation.

    Raises:
        TypeError: an argument is not a tensor.
        BlockgemmArgumentError: any invalid argument, including CPU tensors and a GPU other than Hopper. A
            ``ValueError`` (the class FlashInfer raises for each of its documented errors) and a
            ``RuntimeError``. The message reads ``"fp8_blockscale_gemm_sm90: <argument>: expected ...,
            got ..."`` and carries FlashInfer's words where its callers match on them: "divisible by block
            size" (K), "FP8 (...) or BF16 (...)" (dtype), "FP8 input + BF16 weight is not supported",
            "input_scale is required when input is FP8", "weight_scale is required when weight is FP8",
            "input_scale should not be provided for BF16", "weight_scale should not be provided for BF16",
            "K dimension mismatch", "only supported on SM90 (Hopper) architecture".
        NotImplementedError, RuntimeError: a missing kernel, a CUDA failure.
    """
    _check_tensor("input", input)
    _check_tensor("weight", weight)
    _check_tensor("input_scale", input_scale, optional=True)
    _check_tensor("weight_scale", weight_scale, optional=True)
    direct = _direct(input, weight, input_scale, weight_scale, out)
    if out is not None:
        _check_tensor("out", out)
        if out_dtype is not None and out_dtype != out.dtype:
            raise BlockgemmArgumentError(
                f"{_FUNCTION}: out_dtype: expected out's dtype {out.dtype} (or None), got {out_dtype}"
            )
        if direct:
            _run(input, weight, input_scale, weight_scale, out)
        else:
            torch.ops.blockgemm.gemm_out(input, weight, input_scale, weight_scale, out)
        return out
    if out_dtype is not None and not isinstance(out_dtype, torch.dtype):
        raise TypeError(f"{_FUNCTION}: out_dtype: expected a torch.dtype or None, got {type(out_dtype).__name__}")
    dtype = torch.bfloat16 if out_dtype is None else out_dtype
    if direct:
        return _gemm_eager(input, weight, input_scale, weight_scale, dtype)
    return torch.ops.blockgemm.gemm(input, weight, input_scale, weight_scale, dtype)
