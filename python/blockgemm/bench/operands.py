"""Operand sets on the GPU, the dequantized reference and the check (runs inside the worker processes).

Every worker builds a case's operands from the same seeds: randn bf16 drawn with a CUDA generator seeded
from (run seed, case, operand), quantized by blockgemm.testing.per_token_cast_to_fp8 (input, and the
weight for per-row scales) and per_block_cast_to_fp8 (weight, 128x128), so every backend multiplies the
same values. Set 0 holds them; sets 1.. are copies at other addresses (all the cache needs).

torch is imported inside the functions: the module imports without it, like the rest of the package.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

from .shapes import GROUP, align_up, ceil_div

MAX_DIFF = 1e-3
# Where operands live. Only an off-GPU smoke test of this module's logic would change it.
DEVICE = "cuda"


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integers (splitmix64 over the parts): the same in every process. Pure."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = (state ^ (part & 0xFFFFFFFFFFFFFFFF)) & 0xFFFFFFFFFFFFFFFF
        state = (state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        state = z ^ (z >> 31)
    return state & 0x7FFFFFFFFFFFFFFF


def randn_bf16(shape: Sequence[int], seed: int):
    import torch

    generator = torch.Generator(device=DEVICE)
    generator.manual_seed(seed)
    return torch.randn(tuple(shape), generator=generator, device=DEVICE, dtype=torch.float32).to(torch.bfloat16)


def dequantize(values, scales, rows_per_scale: int):
    """fp32 values of an fp8 tensor (..., R, K) with scales (..., ceil(R / rows_per_scale), K/128)."""
    import torch

    v = values.float()
    s = scales.float()
    s = torch.repeat_interleave(s, GROUP, dim=-1)[..., : v.shape[-1]]
    if rows_per_scale > 1:
        s = torch.repeat_interleave(s, rows_per_scale, dim=-2)[..., : v.shape[-2], :]
    return v * s


def reference_matmul(a, b):
    """a (R, K) @ b (N, K)^T in fp32 without TF32 (the reference must be exact to ~1e-7)."""
    import torch

    previous = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    try:
        return a @ b.t()
    finally:
        torch.backends.cuda.matmul.allow_tf32 = previous


class DiffAccumulator:
    """calc_diff = 1 - 2 sum(x y) / sum(x x + y y), accumulated in float64 over row chunks (so that a
    large output never needs a float64 copy), plus whether every compared element is finite."""

    def __init__(self):
        self.xy = 0.0
        self.xx_yy = 0.0
        self.finite = True

    def add(self, got, expected, chunk_rows: int = 1024):
        import torch

        for start in range(0, got.shape[0], chunk_rows):
            x = got[start : start + chunk_rows].double()
            y = expected[start : start + chunk_rows].double()
            if not bool(torch.isfinite(x).all()):
                self.finite = False
            self.xy += float((x * y).sum())
            self.xx_yy += float((x * x + y * y).sum())

    def result(self, max_diff: float = MAX_DIFF) -> Dict:
        if self.xx_yy == 0.0:
            diff = 0.0 if self.finite else float("nan")
        else:
            diff = 1.0 - 2.0 * self.xy / self.xx_yy
        passed = self.finite and diff == diff and diff < max_diff
        return {"diff": diff, "finite": self.finite, "passed": bool(passed)}


def check_dense(out, expected, max_diff: float = MAX_DIFF) -> Dict:
    accumulator = DiffAccumulator()
    accumulator.add(out, expected)
    return accumulator.result(max_diff)


def mcontig_buffer(scales):
    """(K/128, ceil4(M)) fp32 buffer, zero-padded, holding scales (M, K/128) transposed: the M-contiguous
    layout FlashInfer's and cuBLASLt's TMA loads want (leading dimension padded to 16 bytes)."""
    import torch

    m, kg = scales.shape
    buffer = torch.zeros((kg, align_up(m, 4)), dtype=torch.float32, device=scales.device)
    buffer[:, :m] = scales.t()
    return buffer


class Bank:
    """Per-case tensors, rotated over `num_sets` sets. `put` stores a base tensor (set 0); `sets` returns the
    per-set list (set 0 plus clones, made on first request); `derived` applies a function per set;
    `outputs` allocates one output per set (shared by the worker's backends, which never run at once)."""

    def __init__(self, num_sets: int):
        if num_sets < 1:
            raise ValueError(f"Bank: num_sets must be >= 1, got {num_sets}")
        self.num_sets = num_sets
        self._base: Dict[str, object] = {}
        self._sets: Dict[str, List] = {}

    def has(self, name: str) -> bool:
        return name in self._base or name in self._sets

    def put(self, name: str, tensor) -> None:
        self._base[name] = tensor

    def base(self, name: str, make: Optional[Callable[[], object]] = None):
        if name not in self._base:
            if make is None:
                raise KeyError(f"operand {name!r} was never built")
            self._base[name] = make()
        return self._base[name]

    def sets(self, name: str, make: Optional[Callable[[], object]] = None) -> List:
        if name not in self._sets:
            base = self.base(name, make)
            self._sets[name] = [base] + [base.clone() for _ in range(self.num_sets - 1)]
        return self._sets[name]

    def derived(self, name: str, fn: Callable, *sources: str) -> List:
        if name not in self._sets:
            lists = [self.sets(source) for source in sources]
            self._sets[name] = [fn(*(values[i] for values in lists)) for i in range(self.num_sets)]
        return self._sets[name]

    def outputs(self, name: str, shape: Sequence[int], dtype=None) -> List:
        import torch

        if name not in self._sets:
            dtype = dtype or torch.bfloat16
            self._sets[name] = [torch.empty(tuple(shape), dtype=dtype, device=DEVICE) for _ in range(self.num_sets)]
        return self._sets[name]

    def clear(self) -> None:
        self._base.clear()
        self._sets.clear()


class DenseData:
    """The operands of one dense case, built lazily: bf16 input and weight, their quantizations, the
    dequantized bf16 copies for cuBLAS, and the fp32 reference per weight-scale kind."""

    def __init__(self, case: Dict, seed: int, bank: Bank):
        self.m, self.n, self.k = case["m"], case["n"], case["k"]
        self.kg = ceil_div(self.k, GROUP)
        self.bank = bank
        self.x_seed = mix_seed(seed, 1, self.m, self.n, self.k)
        self.w_seed = mix_seed(seed, 2, self.n, self.k)
        self._references: Dict[str, object] = {}

    # bf16 operands
    def x_bf16(self):
        return self.bank.base("x_bf16", lambda: randn_bf16((self.m, self.k), self.x_seed))

    def w_bf16(self):
        return self.bank.base("w_bf16", lambda: randn_bf16((self.n, self.k), self.w_seed))

    # quantized operands (blockgemm's quantizers)
    def _quantize(self, prefix: str, source, per_block: bool) -> None:
        from blockgemm.testing import per_block_cast_to_fp8, per_token_cast_to_fp8

        values, scales = (per_block_cast_to_fp8 if per_block else per_token_cast_to_fp8)(source)
        self.bank.put(prefix, values)
        self.bank.put(prefix + "_scale", scales)

    def input_fp8(self):
        if not self.bank.has("x8"):
            self._quantize("x8", self.x_bf16(), per_block=False)
        return self.bank.base("x8"), self.bank.base("x8_scale")

    def weight_fp8(self, weight_scale: str):
        prefix = "w8_block" if weight_scale == "block" else "w8_row"
        if not self.bank.has(prefix):
            self._quantize(prefix, self.w_bf16(), per_block=weight_scale == "block")
        return self.bank.base(prefix), self.bank.base(prefix + "_scale")

    def weight_names(self, weight_scale: str):
        self.weight_fp8(weight_scale)
        prefix = "w8_block" if weight_scale == "block" else "w8_row"
        return prefix, prefix + "_scale"

    def dequantized_bf16(self):
        """Input and weight (block scales) dequantized and rounded to bf16: cuBLAS multiplies the values
        the fp8 reference multiplies, so one reference checks it too."""
        import torch

        if not self.bank.has("xd_bf16"):
            x8, xs = self.input_fp8()
            w8, ws = self.weight_fp8("block")
            self.bank.put("xd_bf16", dequantize(x8, xs, 1).to(torch.bfloat16))
            self.bank.put("wd_bf16", dequantize(w8, ws, GROUP).to(torch.bfloat16))
        return "xd_bf16", "wd_bf16"

    def reference(self, weight_scale: str):
        """fp32 (M, N) reference of the fp8 operands with the given weight scales (the bf16 paths quantize
        inside exactly as the quantizers do, so they share it; bf16 x bf16 uses block scales)."""
        if weight_scale not in self._references:
            x8, xs = self.input_fp8()
            w8, ws = self.weight_fp8(weight_scale)
            rows_per_scale = GROUP if weight_scale == "block" else 1
            self._references[weight_scale] = reference_matmul(dequantize(x8, xs, 1), dequantize(w8, ws, rows_per_scale))
        return self._references[weight_scale]

    def release(self) -> None:
        self._references.clear()
