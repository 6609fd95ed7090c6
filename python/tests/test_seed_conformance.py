"""Conformance with the API page of FlashInfer's ``flashinfer.gemm.fp8_blockscale_gemm_sm90`` (the seed,
../shared/reference/seed_api.txt), statement by statement, for :func:`blockgemm.fp8_blockscale_gemm_sm90`.

Needs torch, a Hopper GPU and the built extension (skips otherwise, saying why). Results are checked against
a float64 product of the operands as the GEMM sees them (fp8 values times their scales; a bf16 operand as the
library quantizes it: per 1x128 group for the input, per 128x128 block for the weight) with
calc_diff = 1 - 2 sum(x y) / sum(x^2 + y^2) < 1e-3, on random data, never on zeros; a given `out` is filled
with NaN first and an allocated one comes from a NaN-poisoned cache block, so an unwritten element shows.

    python -m pytest -q python/tests/test_seed_conformance.py
"""

import inspect

import pytest

from gpu_env import calc_diff, require_hopper_blockgemm

torch = require_hopper_blockgemm()

import blockgemm
from blockgemm.testing import per_block_cast_to_fp8, per_token_cast_to_fp8

fp8_blockscale_gemm_sm90 = blockgemm.fp8_blockscale_gemm_sm90
DEVICE = torch.device("cuda", torch.cuda.current_device())
FP8 = torch.float8_e4m3fn
BF16 = torch.bfloat16
NAN = float("nan")

# The page's example problem, and the region around its swapAB threshold ("M < 32").
M_EXAMPLE, N_EXAMPLE, K_EXAMPLE = 16, 4096, 4096
THRESHOLD_MS = [1, 16, 31, 32, 33, 64]
# For the input-scale layouts: K/128 = 56 differs from every M above, so (K/128, M) is never square.
K_SCALES = 7168


# ---------------------------------------------------------------- helpers


def bits(t: torch.Tensor) -> torch.Tensor:
    return t.view({1: torch.uint8, 2: torch.int16, 4: torch.int32}[t.element_size()])


def assert_same_bits(a: torch.Tensor, b: torch.Tensor, label: str = "") -> None:
    assert a.shape == b.shape and a.dtype == b.dtype, label
    assert torch.equal(bits(a), bits(b)), f"{label}: {(bits(a) != bits(b)).sum().item()} elements differ"


def randn(rows: int, cols: int, seed: int) -> torch.Tensor:
    generator = torch.Generator(device=DEVICE).manual_seed(seed)
    return torch.randn(rows, cols, generator=generator, device=DEVICE, dtype=torch.float32).to(BF16)


def dequantize(q: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """fp8 values times their group's scale, in float64; the group's row count follows from the shapes."""
    rows, cols = q.shape
    row_group = 1 if scales.shape[0] == rows else 128
    s = scales.double().repeat_interleave(128, dim=1).repeat_interleave(row_group, dim=0)
    return q.double() * s[:rows, :cols]


def as_seen(x: torch.Tensor, granularity: str) -> torch.Tensor:
    """A bf16 operand as the library quantizes it inside, dequantized."""
    cast = per_token_cast_to_fp8 if granularity == "token" else per_block_cast_to_fp8
    return dequantize(*cast(x))


def poison_allocator(m: int, n: int, dtype: torch.dtype) -> None:
    torch.full((m, n), NAN, dtype=dtype, device=DEVICE)


def check(result: torch.Tensor, ref: torch.Tensor, dtype: torch.dtype = BF16, tolerance: float = 1e-3):
    assert result.shape == ref.shape, f"shape {tuple(result.shape)}, expected {tuple(ref.shape)}"
    assert result.dtype == dtype and result.device == DEVICE
    assert not torch.isnan(result).any(), "NaN in the result: some elements were not written"
    diff = calc_diff(result, ref)
    assert diff < tolerance, f"calc_diff {diff:.3g} >= {tolerance}"


def operands(combination: str, granularity: str, m: int, n: int, k: int, seed: int):
    """(args for the call, float64 reference) for a dtype combination of the page."""
    x, w = randn(m, k, seed), randn(n, k, seed + 1)
    cast = per_token_cast_to_fp8 if granularity == "token" else per_block_cast_to_fp8
    if combination == "bf16+bf16":
        return (x, w, None, None), as_seen(x, "token") @ as_seen(w, "block").T
    wq, ws = cast(w)
    if combination == "bf16+fp8":
        return (x, wq, None, ws), as_seen(x, "token") @ dequantize(wq, ws).T
    xq, xs = per_token_cast_to_fp8(x)
    return (xq, wq, xs, ws), dequantize(xq, xs) @ dequantize(wq, ws).T


def run_both_forms(args, ref, m, n, out_dtype=None):
    """Allocated (out=None) and given (out=NaN-filled) forms: both correct and bitwise equal."""
    dtype = out_dtype or BF16
    poison_allocator(m, n, dtype)
    allocated = fp8_blockscale_gemm_sm90(*args, out_dtype=out_dtype)
    check(allocated, ref, dtype)
    out = torch.full((m, n), NAN, dtype=dtype, device=DEVICE)
    returned = fp8_blockscale_gemm_sm90(*args, out=out, out_dtype=out_dtype)
    assert returned is out
    check(out, ref, dtype)
    assert_same_bits(out, allocated)


COMBINATIONS = [
    ("bf16+bf16", None),
    ("bf16+fp8", "token"),
    ("bf16+fp8", "block"),
    ("fp8+fp8", "token"),
    ("fp8+fp8", "block"),
]


# ---------------------------------------------------------------- the signature


def test_signature_is_the_pages():
    """fp8_blockscale_gemm_sm90(input, weight, input_scale=None, weight_scale=None, out=None,
    out_dtype=None) -> Tensor."""
    parameters = inspect.signature(fp8_blockscale_gemm_sm90).parameters
    assert list(parameters) == ["input", "weight", "input_scale", "weight_scale", "out", "out_dtype"]
    for name in ["input_scale", "weight_scale", "out", "out_dtype"]:
        assert parameters[name].default is None, name
    # Every argument by keyword, as the page names them.
    (xq, wq, xs, ws), ref = operands("fp8+fp8", "block", 16, 256, 256, seed=1)
    result = fp8_blockscale_gemm_sm90(
        input=xq, weight=wq, input_scale=xs, weight_scale=ws, out=None, out_dtype=None
    )
    check(result, ref)


# ---------------------------------------------------------------- dtype combinations, granularities, swapAB


@pytest.mark.parametrize("m", THRESHOLD_MS)
@pytest.mark.parametrize("combination,granularity", COMBINATIONS)
def test_dtype_combinations_around_the_swapab_threshold(combination, granularity, m):
    """BF16 + BF16, BF16 + FP8 and FP8 + FP8, each weight-scale granularity, M on both sides of 32; bf16
    output by default, `out` allocated or given."""
    n, k = 2048, 4096
    args, ref = operands(combination, granularity, m, n, k, seed=10 + m)
    run_both_forms(args, ref, m, n)


@pytest.mark.parametrize("out_dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("m", [16, 64])
def test_out_dtype(out_dtype, m):
    """out_dtype: the result's dtype, allocated or given (with out.dtype equal)."""
    n, k = 1024, 1024
    args, ref = operands("fp8+fp8", "block", m, n, k, seed=20)
    run_both_forms(args, ref, m, n, out_dtype=out_dtype)


def test_default_out_dtype_is_bfloat16():
    args, _ = operands("fp8+fp8", "token", 16, 256, 512, seed=21)
    result = fp8_blockscale_gemm_sm90(*args)
    assert result.dtype == BF16 and result.shape == (16, 256)
    args, _ = operands("bf16+bf16", None, 16, 256, 512, seed=22)
    assert fp8_blockscale_gemm_sm90(*args).dtype == BF16


def test_out_is_written_and_returned():
    """out: "Output tensor of shape (M, N). If None, will be allocated." The given one is the result."""
    m, n, k = 33, 1024, 512
    args, ref = operands("bf16+fp8", "block", m, n, k, seed=23)
    out = torch.full((m, n), NAN, dtype=BF16, device=DEVICE)
    assert fp8_blockscale_gemm_sm90(*args, out=out) is out
    check(out, ref)


# ---------------------------------------------------------------- the page's examples


def test_example_bf16_inputs():
    x, w = randn(M_EXAMPLE, K_EXAMPLE, 30), randn(N_EXAMPLE, K_EXAMPLE, 31)
    poison_allocator(M_EXAMPLE, N_EXAMPLE, BF16)
    output = fp8_blockscale_gemm_sm90(x, w)
    assert output.shape == torch.Size([16, 4096])
    check(output, as_seen(x, "token") @ as_seen(w, "block").T)


def test_example_bf16_input_fp8_weight_per_token():
    """The page's mixed example: the weight quantized with per_token_cast_to_fp8 (scales (N, K//128)) and
    passed with a bf16 input."""
    x, w = randn(M_EXAMPLE, K_EXAMPLE, 32), randn(N_EXAMPLE, K_EXAMPLE, 33)
    weight_fp8, weight_scale = per_token_cast_to_fp8(w)
    assert weight_scale.shape == (N_EXAMPLE, K_EXAMPLE // 128)
    poison_allocator(M_EXAMPLE, N_EXAMPLE, BF16)
    output = fp8_blockscale_gemm_sm90(x, weight_fp8, None, weight_scale)
    assert output.shape == torch.Size([16, 4096])
    check(output, as_seen(x, "token") @ dequantize(weight_fp8, weight_scale).T)


def test_example_fp8_weight_per_block():
    """The page's block example: weight_scale has shape (N // 128, K // 128)."""
    x, w = randn(M_EXAMPLE, K_EXAMPLE, 34), randn(N_EXAMPLE, K_EXAMPLE, 35)
    weight_fp8, weight_scale = per_block_cast_to_fp8(w)
    assert weight_scale.shape == (N_EXAMPLE // 128, K_EXAMPLE // 128)
    poison_allocator(M_EXAMPLE, N_EXAMPLE, BF16)
    output = fp8_blockscale_gemm_sm90(x, weight_fp8, None, weight_scale)
    assert output.shape == torch.Size([16, 4096])
    check(output, as_seen(x, "token") @ dequantize(weight_fp8, weight_scale).T)


# ---------------------------------------------------------------- input-scale layouts


def seed_input_scale(xs: torch.Tensor) -> torch.Tensor:
    """The seed's callers' convention: buf[:, :M] of a (K/128, ceil4(M)) fp32 buffer holding the transposed
    scales, i.e. shape (K/128, M), strides (ceil4(M), 1). The padding is NaN, so reading it would show."""
    m, k_groups = xs.shape
    padded = (m + 3) // 4 * 4
    buf = torch.full((k_groups, padded), NAN, dtype=torch.float32, device=DEVICE)
    buf[:, :m] = xs.T
    view = buf[:, :m]
    assert view.shape == (k_groups, m) and view.stride() == (padded, 1)
    return view


@pytest.mark.parametrize("m", THRESHOLD_MS)
@pytest.mark.parametrize("granularity", ["token", "block"])
def test_input_scale_layouts(m, granularity):
    """"Input scales only support per-token format: (M, K//128)" (row- or column-major), and the (K/128, M)
    view of an M-contiguous buffer padded to a multiple of 4 that the seed's callers pass: same values,
    bitwise the same result, normal and swapAB kernels alike."""
    n, k = 2048, K_SCALES
    (xq, wq, xs, ws), ref = operands("fp8+fp8", granularity, m, n, k, seed=40 + m)
    seed_view = seed_input_scale(xs)
    layouts = {
        "documented row-major (M, K/128)": xs,
        "documented column-major (M, K/128)": seed_view.t(),
        "seed's (K/128, M)": seed_view,
        "(K/128, M) column-major": xs.t(),
    }
    poison_allocator(m, n, BF16)
    expected = fp8_blockscale_gemm_sm90(xq, wq, xs, ws)
    check(expected, ref)
    for name, scale in layouts.items():
        out = torch.full((m, n), NAN, dtype=BF16, device=DEVICE)
        fp8_blockscale_gemm_sm90(xq, wq, scale, ws, out=out)
        check(out, ref)
        assert_same_bits(out, expected, name)


def test_square_input_scale_is_read_as_m_by_k_groups():
    """Where M == K/128 the two shapes coincide and the tensor is read as (M, K/128), in either layout; the
    seed's (K/128, M) buffer must then be passed transposed (buf[:, :M].t())."""
    m, n, k = 32, 1024, 4096
    (xq, wq, xs, ws), ref = operands("fp8+fp8", "block", m, n, k, seed=50)
    seed_view = seed_input_scale(xs)
    check(fp8_blockscale_gemm_sm90(xq, wq, xs, ws), ref)
    check(fp8_blockscale_gemm_sm90(xq, wq, seed_view.t(), ws), ref)
    check(fp8_blockscale_gemm_sm90(xq, wq, xs.t().contiguous().t(), ws), ref)
    # The seed's untransposed view is taken as (M, K/128): the values of xs.T, row by row.
    assert_same_bits(
        fp8_blockscale_gemm_sm90(xq, wq, seed_view, ws),
        fp8_blockscale_gemm_sm90(xq, wq, xs.T.contiguous(), ws),
    )


# ---------------------------------------------------------------- per-row weight scales: block-scale accuracy


@pytest.mark.parametrize("m", [16, 128])
@pytest.mark.parametrize("input_kind", ["fp8", "bf16"])
def test_per_row_weight_scale_accuracy_against_the_unquantized_product(m, input_kind):
    """With (N, K/128) weight scales the error against the unquantized bf16 product stays at the level of
    (128, 128) block scales (about 7e-4 here); the seed was measured 13x worse with them (8.8e-3)."""
    n, k = 2048, 7168
    x, w = randn(m, k, 60), randn(n, k, 61)
    unquantized = x.double() @ w.double().T
    input_args = (x, None) if input_kind == "bf16" else per_token_cast_to_fp8(x)
    diffs = {}
    for granularity, cast in (("token", per_token_cast_to_fp8), ("block", per_block_cast_to_fp8)):
        wq, ws = cast(w)
        result = fp8_blockscale_gemm_sm90(input_args[0], wq, input_args[1], ws)
        assert not torch.isnan(result).any()
        diffs[granularity] = calc_diff(result, unquantized)
    assert diffs["block"] < 2e-3, diffs
    assert diffs["token"] < 2e-3, diffs
    assert diffs["token"] < 1.5 * diffs["block"], diffs


# ---------------------------------------------------------------- documented errors (the seed: ValueError)


def _fp8_problem(m=16, n=256, k=256, seed=70):
    (xq, wq, xs, ws), _ = operands("fp8+fp8", "block", m, n, k, seed)
    return xq, wq, xs, ws


def test_error_k_not_divisible_by_128():
    x, w = randn(16, 127, 71), randn(256, 127, 72)
    with pytest.raises(ValueError, match="divisible by block size"):
        fp8_blockscale_gemm_sm90(x, w)


@pytest.mark.parametrize("which", ["both", "input", "weight"])
def test_error_dtype_neither_fp8_nor_bf16(which):
    x, w = randn(16, 256, 73), randn(256, 256, 74)
    x16, w16 = x.to(torch.float16), w.to(torch.float16)
    args = {"both": (x16, w16), "input": (x16, w), "weight": (x, w16)}[which]
    with pytest.raises(ValueError, match="FP8.*or BF16"):
        fp8_blockscale_gemm_sm90(*args)


def test_error_fp8_input_with_bf16_weight():
    xq, _, xs, _ = _fp8_problem()
    w = randn(256, 256, 75)
    with pytest.raises(ValueError, match="FP8 input.*BF16 weight.*not supported"):
        fp8_blockscale_gemm_sm90(xq, w, xs, None)


def test_error_fp8_weight_needs_weight_scale():
    """weight_scale: "Required if weight is FP8"."""
    x = randn(16, 256, 76)
    w8 = randn(256, 256, 77).to(FP8)
    with pytest.raises(ValueError, match="weight_scale is required when weight is FP8"):
        fp8_blockscale_gemm_sm90(x, w8, None, None)
    xq, wq, xs, _ = _fp8_problem()
    with pytest.raises(ValueError, match="weight_scale is required when weight is FP8"):
        fp8_blockscale_gemm_sm90(xq, wq, xs, None)


def test_error_fp8_input_needs_input_scale():
    """"For FP8 inputs, scaling factors must be provided"."""
    xq, wq, _, ws = _fp8_problem()
    with pytest.raises(ValueError, match="input_scale is required when input is FP8"):
        fp8_blockscale_gemm_sm90(xq, wq, None, ws)


def test_error_scale_for_bf16_operand():
    """"For BF16 inputs, quantization and scaling happen internally": a scale for them is an error."""
    x, w = randn(16, 256, 78), randn(256, 256, 79)
    with pytest.raises(ValueError, match="input_scale should not be provided for BF16"):
        fp8_blockscale_gemm_sm90(x, w, input_scale=torch.ones(16, 2, device=DEVICE))
    with pytest.raises(ValueError, match="weight_scale should not be provided for BF16"):
        fp8_blockscale_gemm_sm90(x, w, weight_scale=torch.ones(2, 2, device=DEVICE))


def test_error_wrong_scale_shapes():
    """Weight scales: (N, K//128) or (N//128, K//128); input scales (M, K//128). Anything else is refused."""
    xq, wq, xs, ws = _fp8_problem()
    with pytest.raises(ValueError, match="weight_scale"):
        fp8_blockscale_gemm_sm90(xq, wq, xs, torch.ones(3, 2, device=DEVICE))
    with pytest.raises(ValueError, match="input_scale"):
        fp8_blockscale_gemm_sm90(xq, wq, torch.ones(16, 4, device=DEVICE), ws)
    # The seed's own case: a wrong input scale beside a bf16 weight.
    with pytest.raises(ValueError):
        fp8_blockscale_gemm_sm90(xq, randn(256, 256, 80), input_scale=torch.ones(16, 4, device=DEVICE))


def test_error_out_shape_and_dtype():
    xq, wq, xs, ws = _fp8_problem()
    with pytest.raises(ValueError, match="out"):
        fp8_blockscale_gemm_sm90(xq, wq, xs, ws, out=torch.empty(16, 128, dtype=BF16, device=DEVICE))
    out = torch.empty(16, 256, dtype=BF16, device=DEVICE)
    with pytest.raises(ValueError, match="out_dtype"):
        fp8_blockscale_gemm_sm90(xq, wq, xs, ws, out=out, out_dtype=torch.float16)


def test_error_input_not_2d():
    xq, wq, xs, ws = _fp8_problem()
    with pytest.raises(ValueError, match="input"):
        fp8_blockscale_gemm_sm90(xq.view(1, 16, 256), wq, xs, ws)
