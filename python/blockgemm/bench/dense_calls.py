"""The dense calls of every backend on one case's operand sets (inside the worker processes).

`build(backend, data, modules, options)` returns `(enqueue, outputs, reference, note)`: `enqueue(i)` makes
one call on set i (no allocation of its own where the API takes `out`, no host synchronisation, so it
captures into a CUDA graph), `outputs[i]` is set i's output, `reference` the fp32 result to check against.
Operand layouts are those the backend's users hold (see backends.py); transformations a backend needs
(DeepGEMM's TMA-aligned input scale, cuBLASLt's M-contiguous one) are made here, outside the timed region.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

from .operands import DenseData, mcontig_buffer
from .probe import M_CONTIGUOUS, ROW_MAJOR


def _input_scale_sets(data: DenseData, layout: str) -> List:
    """Per-set input scales (M, K/128): 'row' as the quantizer returns them, 'mcontig' as a strided view
    of a zero-padded (K/128, ceil4(M)) buffer (one buffer per set)."""
    bank = data.bank
    data.input_fp8()
    if layout == "row":
        return bank.sets("x8_scale")
    if layout == "mcontig":
        m = data.m
        bank.base("x8_scale_mc_buffer", lambda: mcontig_buffer(bank.base("x8_scale")))
        return bank.derived("x8_scale_mc", lambda buffer: buffer[:, :m].t(), "x8_scale_mc_buffer")
    raise ValueError(f"unknown input scale layout {layout!r}")


def _outputs(data: DenseData) -> List:
    return data.bank.outputs("out", (data.m, data.n))


def _blockgemm(backend: Dict, data: DenseData, modules: Dict) -> Tuple[Callable, str]:
    gemm = modules["blockgemm"].fp8_blockscale_gemm_sm90
    bank, outs = data.bank, _outputs(data)
    path = backend["path"]
    if path == "bf16-bf16":
        data.x_bf16()
        data.w_bf16()
        x, w = bank.sets("x_bf16"), bank.sets("w_bf16")
        return (lambda i: gemm(x[i], w[i], None, None, out=outs[i])), "block"
    w_name, ws_name = data.weight_names(backend["weight_scale"])
    w, ws = bank.sets(w_name), bank.sets(ws_name)
    if path == "bf16-fp8":
        data.x_bf16()
        x = bank.sets("x_bf16")
        return (lambda i: gemm(x[i], w[i], None, ws[i], out=outs[i])), backend["weight_scale"]
    data.input_fp8()
    x = bank.sets("x8")
    xs = _input_scale_sets(data, backend["input_scale"])
    return (lambda i: gemm(x[i], w[i], xs[i], ws[i], out=outs[i])), backend["weight_scale"]


def _flashinfer(backend: Dict, data: DenseData, modules: Dict, layout: str) -> Tuple[Callable, str]:
    gemm = modules["flashinfer"]
    bank, outs = data.bank, _outputs(data)
    path = backend["path"]
    if path == "bf16-bf16":
        data.x_bf16()
        data.w_bf16()
        x, w = bank.sets("x_bf16"), bank.sets("w_bf16")
        return (lambda i: gemm(x[i], w[i], None, None, out=outs[i])), "block"
    w_name, ws_name = data.weight_names("block")
    w, ws = bank.sets(w_name), bank.sets(ws_name)
    if path == "bf16-fp8":
        data.x_bf16()
        x = bank.sets("x_bf16")
        return (lambda i: gemm(x[i], w[i], None, ws[i], out=outs[i])), "block"
    data.input_fp8()
    x = bank.sets("x8")
    if layout == ROW_MAJOR:
        xs = bank.sets("x8_scale")
    elif layout == M_CONTIGUOUS:
        # What FlashInfer's own test passes: the (K/128, M) view of a (K/128, ceil4(M)) buffer.
        m = data.m
        bank.base("x8_scale_mc_buffer", lambda: mcontig_buffer(bank.base("x8_scale")))
        xs = bank.derived("x8_scale_fi", lambda buffer: buffer[:, :m], "x8_scale_mc_buffer")
    else:
        raise ValueError(f"unknown FlashInfer input scale layout {layout!r}")
    return (lambda i: gemm(x[i], w[i], xs[i], ws[i], out=outs[i])), "block"


def _deepgemm(backend: Dict, data: DenseData, modules: Dict) -> Tuple[Callable, str]:
    dg = modules["deepgemm"]
    transform = getattr(dg, "get_mn_major_tma_aligned_tensor", None) or dg.utils.get_mn_major_tma_aligned_tensor
    bank, outs = data.bank, _outputs(data)
    data.input_fp8()
    w_name, ws_name = data.weight_names("block")
    x, w, ws = bank.sets("x8"), bank.sets(w_name), bank.sets(ws_name)
    # Its TMA-aligned M-major activation scale, made once per set outside the timed region (fp8_gemm_nt
    # would otherwise transform it on every call).
    sfa = bank.derived("x8_scale_dg", transform, "x8_scale")
    return (lambda i: dg.fp8_gemm_nt((x[i], sfa[i]), (w[i], ws[i]), outs[i])), "block"


def _cublaslt(backend: Dict, data: DenseData, modules: Dict) -> Tuple[Callable, str]:
    import torch

    bank, outs = data.bank, _outputs(data)
    data.input_fp8()
    w_name, ws_name = data.weight_names("block")
    x, w, ws = bank.sets("x8"), bank.sets(w_name), bank.sets(ws_name)
    # torch._scaled_mm's block scaling (cuBLASLt VEC128_32F / BLK128x128_32F): scale_a (M, K/128) with M
    # contiguous and a leading dimension padded to 4, scale_b the block scales transposed.
    sa = _input_scale_sets(data, "mcontig")
    scaled_mm = torch._scaled_mm

    def call(i):
        scaled_mm(x[i], w[i].t(), scale_a=sa[i], scale_b=ws[i].t(), out_dtype=torch.bfloat16, out=outs[i])

    return call, "block"


def _cublas_bf16(backend: Dict, data: DenseData, modules: Dict) -> Tuple[Callable, str]:
    import torch

    bank, outs = data.bank, _outputs(data)
    x_name, w_name = data.dequantized_bf16()
    x, w = bank.sets(x_name), bank.sets(w_name)
    return (lambda i: torch.matmul(x[i], w[i].t(), out=outs[i])), "block"


def plan_note(blockgemm_module, *describe_args, grouped: str = "") -> str:
    """'plan <the kernel blockgemm's dispatcher picks>' for the record, or '' where the module cannot say."""
    name = f"describe_grouped_plan_{grouped}" if grouped else "describe_plan"
    describe = getattr(getattr(blockgemm_module, "_blockgemm_ext", None), name, None)
    try:
        return f"plan {describe(*describe_args)}" if describe is not None else ""
    except Exception:  # a harness fake, or an extension older than the call: the record goes without it
        return ""


def build(backend: Dict, data: DenseData, modules: Dict, options: Dict) -> Tuple[Callable, List, object, str]:
    family = backend["family"]
    note = ""
    if family == "blockgemm":
        enqueue, ref_kind = _blockgemm(backend, data, modules)
        note = plan_note(modules["blockgemm"], data.m, data.n, data.k, backend.get("weight_scale") == "row")
    elif family == "flashinfer":
        layout = options.get("flashinfer_input_scale") or M_CONTIGUOUS
        enqueue, ref_kind = _flashinfer(backend, data, modules, layout)
        if backend["path"] == "fp8":
            note = f"input scale {layout}"
    elif family == "deepgemm":
        enqueue, ref_kind = _deepgemm(backend, data, modules)
    elif family == "cublaslt":
        enqueue, ref_kind = _cublaslt(backend, data, modules)
    elif family == "cublas-bf16":
        enqueue, ref_kind = _cublas_bf16(backend, data, modules)
    else:
        raise ValueError(f"unknown dense family {family!r}")
    return enqueue, _outputs(data), data.reference(ref_kind), note
