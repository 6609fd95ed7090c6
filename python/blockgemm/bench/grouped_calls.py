"""Grouped (mixture-of-experts) operands and calls (inside the worker processes), issue 25.

Contiguous layout: every group's tokens one after the other. Two arrangements of the same rows:
- packed: no padding, groups given by int32 offsets (G+1,) (blockgemm's `offsets=`);
- aligned: each group starts at a multiple of the backend's alignment (blockgemm's
  contiguous_group_alignment(), DeepGEMM's get_mk_alignment_for_contiguous_layout()), padding rows zero,
  groups given by an int32 index per row with -1 for padding (blockgemm's `group_index=`, DeepGEMM's
  grouped_layout).
Masked layout: input (G, M_max, K), valid rows per group in a device int32 (G,) tensor, expected M as hint.

Weights (G, N, K) fp8 with (G, ceil(N/128), K/128) block scales. The check compares every group's valid
rows with its own dequantized fp32 product (computed group by group: no full reference is kept).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence, Tuple

from . import operands
from .dense_calls import plan_note
from .operands import Bank, DiffAccumulator, dequantize, mix_seed, randn_bf16, reference_matmul
from .shapes import GROUP, align_up, ceil_div


def packed_offsets(sizes: Sequence[int]) -> List[int]:
    """[0, s0, s0+s1, ..., sum]: group g's rows are offsets[g]..offsets[g+1]. Pure."""
    offsets = [0]
    for size in sizes:
        offsets.append(offsets[-1] + size)
    return offsets


def aligned_starts(sizes: Sequence[int], alignment: int) -> Tuple[List[int], int]:
    """Start row of each group when every group begins at a multiple of `alignment`, and the padded total.
    Pure."""
    starts, cursor = [], 0
    for size in sizes:
        starts.append(cursor)
        cursor += align_up(size, alignment) if size else 0
    return starts, cursor


class GroupedData:
    def __init__(self, case: Dict, seed: int, bank: Bank):
        self.case = case
        self.g, self.n, self.k = case["g"], case["n"], case["k"]
        self.kg = ceil_div(self.k, GROUP)
        self.bank = bank
        self.seed = seed

    # weights ------------------------------------------------------------------------------------
    def weight(self):
        if not self.bank.has("gw8"):
            import torch
            from blockgemm.testing import per_block_cast_to_fp8

            w = randn_bf16((self.g * self.n, self.k), mix_seed(self.seed, 3, self.g, self.n, self.k))
            if self.n % GROUP == 0:  # 128-row blocks never straddle two groups: one call
                w8, ws = per_block_cast_to_fp8(w)
                w8, ws = w8.view(self.g, self.n, self.k), ws.view(self.g, self.n // GROUP, self.kg)
            else:
                parts = [per_block_cast_to_fp8(w[i * self.n : (i + 1) * self.n]) for i in range(self.g)]
                w8 = torch.stack([p[0] for p in parts])
                ws = torch.stack([p[1] for p in parts])
            self.bank.put("gw8", w8)
            self.bank.put("gw8_scale", ws)
        return self.bank.base("gw8"), self.bank.base("gw8_scale")

    # contiguous ---------------------------------------------------------------------------------
    def packed_bf16(self):
        rows = sum(self.case["sizes"])
        return self.bank.base(
            "gx_packed_bf16", lambda: randn_bf16((rows, self.k), mix_seed(self.seed, 4, rows, self.k))
        )

    def packed(self):
        """Packed fp8 rows, their scales and the offsets tensor (names in the bank)."""
        if not self.bank.has("gxp8"):
            import torch
            from blockgemm.testing import per_token_cast_to_fp8

            x8, xs = per_token_cast_to_fp8(self.packed_bf16())
            self.bank.put("gxp8", x8)
            self.bank.put("gxp8_scale", xs)
            self.bank.put(
                "goffsets", torch.tensor(packed_offsets(self.case["sizes"]), dtype=torch.int32, device=operands.DEVICE)
            )
        return "gxp8", "gxp8_scale", "goffsets"

    def aligned(self, alignment: int):
        """The same rows at aligned starts (zero padding rows), quantized, and the per-row group index."""
        tag = f"gxa{alignment}"
        if not self.bank.has(tag):
            import torch
            from blockgemm.testing import per_token_cast_to_fp8

            sizes = self.case["sizes"]
            starts, total = aligned_starts(sizes, alignment)
            offsets = packed_offsets(sizes)
            packed = self.packed_bf16()
            x = torch.zeros((max(total, 1), self.k), dtype=torch.bfloat16, device=operands.DEVICE)
            index = torch.full((max(total, 1),), -1, dtype=torch.int32, device=operands.DEVICE)
            for group, (start, size) in enumerate(zip(starts, sizes)):
                x[start : start + size] = packed[offsets[group] : offsets[group] + size]
                index[start : start + size] = group
            x8, xs = per_token_cast_to_fp8(x)
            self.bank.put(tag, x8)
            self.bank.put(tag + "_scale", xs)
            self.bank.put(tag + "_index", index)
        return tag, tag + "_scale", tag + "_index"

    def check_contiguous(self, out, starts: Sequence[int]) -> Dict:
        """Every group's rows of `out` (starting at starts[g]) against its fp32 product."""
        x8, xs = self.bank.base("gxp8"), self.bank.base("gxp8_scale")
        w8, ws = self.weight()
        offsets = packed_offsets(self.case["sizes"])
        accumulator = DiffAccumulator()
        for group, size in enumerate(self.case["sizes"]):
            if size == 0:
                continue
            rows = slice(offsets[group], offsets[group] + size)
            expected = reference_matmul(dequantize(x8[rows], xs[rows], 1), dequantize(w8[group], ws[group], GROUP))
            accumulator.add(out[starts[group] : starts[group] + size], expected)
        return accumulator.result()

    # masked -------------------------------------------------------------------------------------
    def masked(self):
        if not self.bank.has("gxm8"):
            import torch
            from blockgemm.testing import per_token_cast_to_fp8

            m_max = self.case["m_max"]
            x = randn_bf16((self.g * m_max, self.k), mix_seed(self.seed, 5, self.g, m_max, self.k))
            x8, xs = per_token_cast_to_fp8(x)
            self.bank.put("gxm8", x8.view(self.g, m_max, self.k))
            self.bank.put("gxm8_scale", xs.view(self.g, m_max, self.kg))
            self.bank.put("gmasked_m", torch.tensor(self.case["masked_m"], dtype=torch.int32, device=operands.DEVICE))
        return "gxm8", "gxm8_scale", "gmasked_m"

    def check_masked(self, out) -> Dict:
        x8, xs = self.bank.base("gxm8"), self.bank.base("gxm8_scale")
        w8, ws = self.weight()
        accumulator = DiffAccumulator()
        for group, rows in enumerate(self.case["masked_m"]):
            expected = reference_matmul(
                dequantize(x8[group, :rows], xs[group, :rows], 1), dequantize(w8[group], ws[group], GROUP)
            )
            accumulator.add(out[group, :rows], expected)
        return accumulator.result()


def build(backend: Dict, data: GroupedData, modules: Dict) -> Tuple[Callable, List, Callable, str]:
    """(enqueue, outputs, check, note) of a grouped backend; check(out) compares the valid rows."""
    family, form = backend["family"], backend["form"]
    bank = data.bank
    data.weight()
    w, ws = bank.sets("gw8"), bank.sets("gw8_scale")
    if form == "masked":
        x_name, s_name, m_name = data.masked()
        x, xs, mm = bank.sets(x_name), bank.sets(s_name), bank.sets(m_name)
        outs = bank.outputs("gout_masked", (data.g, data.case["m_max"], data.n))
        expected_m = data.case["expected_m"]
        if family == "blockgemm":
            call = modules["blockgemm"].grouped_gemm_masked

            def enqueue(i):
                call(x[i], w[i], xs[i], ws[i], masked_m=mm[i], expected_m=expected_m, out=outs[i])

        else:
            dg = modules["deepgemm"]
            transform = getattr(dg, "get_mn_major_tma_aligned_tensor", None) or dg.utils.get_mn_major_tma_aligned_tensor
            sfa = bank.derived("gxm8_scale_dg", transform, s_name)

            def enqueue(i):
                dg.m_grouped_fp8_gemm_nt_masked((x[i], sfa[i]), (w[i], ws[i]), outs[i], mm[i], expected_m)

        note = f"expected_m {expected_m}"
        if family == "blockgemm":
            plan = plan_note(modules["blockgemm"], data.g, data.case["m_max"], expected_m, data.n, data.k,
                             grouped="masked")
            note = "; ".join(x for x in (note, plan) if x)
        return enqueue, outs, data.check_masked, note

    if form == "offsets":
        x_name, s_name, o_name = data.packed()
        x, xs, offs = bank.sets(x_name), bank.sets(s_name), bank.sets(o_name)
        outs = bank.outputs("gout_packed", (max(sum(data.case["sizes"]), 1), data.n))
        call = modules["blockgemm"].grouped_gemm_contiguous
        starts = packed_offsets(data.case["sizes"])[:-1]

        def enqueue(i):
            call(x[i], w[i], xs[i], ws[i], offsets=offs[i], out=outs[i])

        plan = plan_note(modules["blockgemm"], sum(data.case["sizes"]), data.g, data.n, data.k, grouped="contiguous")
        note = "; ".join(x for x in ("packed rows, offsets", plan) if x)
        return enqueue, outs, lambda out: data.check_contiguous(out, starts), note

    # form == "index": the aligned layout, each backend with its own alignment.
    data.packed()  # the check reads the packed rows
    if family == "blockgemm":
        alignment = int(modules["blockgemm"].contiguous_group_alignment())
    else:
        alignment = int(modules["deepgemm"].get_mk_alignment_for_contiguous_layout())
    x_name, s_name, i_name = data.aligned(alignment)
    x, xs, index = bank.sets(x_name), bank.sets(s_name), bank.sets(i_name)
    starts, total = aligned_starts(data.case["sizes"], alignment)
    outs = bank.outputs(f"gout_aligned{alignment}", (max(total, 1), data.n))
    if family == "blockgemm":
        call = modules["blockgemm"].grouped_gemm_contiguous

        def enqueue(i):
            call(x[i], w[i], xs[i], ws[i], group_index=index[i], out=outs[i])

    else:
        dg = modules["deepgemm"]
        transform = getattr(dg, "get_mn_major_tma_aligned_tensor", None) or dg.utils.get_mn_major_tma_aligned_tensor
        sfa = bank.derived(s_name + "_dg", transform, s_name)

        def enqueue(i):
            dg.m_grouped_fp8_gemm_nt_contiguous((x[i], sfa[i]), (w[i], ws[i]), outs[i], index[i])

    note = f"aligned to {alignment} rows ({total} rows with padding)"
    if family == "blockgemm":
        plan = plan_note(modules["blockgemm"], total, data.g, data.n, data.k, grouped="contiguous")
        note = "; ".join(x for x in (note, plan) if x)
    return enqueue, outs, lambda out: data.check_contiguous(out, starts), note
