"""Tests of blockgemm's grouped GEMM (needs torch, a Hopper GPU and the built extension).

Run from the repository root after `pip install --no-build-isolation .`:
    python -m pytest -q python/tests/test_grouped.py
"""

import pytest

from gpu_env import calc_diff, require_hopper_blockgemm

torch = require_hopper_blockgemm()

import blockgemm
from blockgemm import testing as bgt

DEVICE = torch.device("cuda", torch.cuda.current_device())
BF16 = torch.bfloat16
I32 = torch.int32
NAN = float("nan")
# The int16 view of the bf16 NaN that torch.full(..., NAN) writes (0x7FC0): what an untouched element holds.
POISON = torch.tensor(NAN, dtype=BF16).view(torch.int16).item()


# ---------------------------------------------------------------- helpers


def randn(*shape: int, seed: int, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator(device=DEVICE).manual_seed(seed)
    return (torch.randn(*shape, generator=generator, device=DEVICE, dtype=torch.float32) * scale).to(BF16)


def expand(scales: torch.Tensor, rows: int, cols: int, row_group: int) -> torch.Tensor:
    s = scales.double().repeat_interleave(128, dim=-1)
    if row_group > 1:
        s = s.repeat_interleave(row_group, dim=-2)
    return s[..., :rows, :cols]


class Experts:
    """G fp8 expert weights (G, N, K) with per-block or per-row scales, and their dequantized values."""

    def __init__(self, g: int, n: int, k: int, kind: str = "block", seed: int = 0):
        qs, ss, deq = [], [], []
        for i in range(g):
            w = randn(n, k, seed=seed + i, scale=0.5 + i % 5)
            if kind == "block":
                q, s = bgt.per_block_cast_to_fp8(w)
                deq.append(q.double() * expand(s, n, k, 128))
            else:
                q, s = bgt.per_token_cast_to_fp8(w)
                deq.append(q.double() * expand(s, n, k, 1))
            qs.append(q)
            ss.append(s)
        self.weight = torch.stack(qs)
        self.scale = torch.stack(ss)
        self.deq = torch.stack(deq)


def quantized_rows(m: int, k: int, seed: int):
    """An fp8 (m, K) input with its scales and dequantized values, and the bf16 values it came from."""
    x = randn(m, k, seed=seed)
    q, s = bgt.per_token_cast_to_fp8(x)
    return x, q, s, q.double() * expand(s, m, k, 1)


def offsets_of(sizes, first=0):
    values = [first]
    for s in sizes:
        values.append(values[-1] + s)
    return torch.tensor(values, dtype=I32, device=DEVICE)


def check_rows(out: torch.Tensor, ref: torch.Tensor, rows: slice, where: str) -> None:
    got = out[rows]
    assert not torch.isnan(got).any(), f"{where}: NaN in a group's rows (not written)"
    if got.numel():
        diff = calc_diff(got, ref)
        assert diff < 1e-3, f"{where}: calc_diff {diff:.3g}"


def assert_poisoned(out: torch.Tensor, mask: torch.Tensor, where: str) -> None:
    untouched = out.view(torch.int16)[mask] == POISON
    assert bool(untouched.all()), f"{where}: {(~untouched).sum().item()} elements written outside every group"


# ---------------------------------------------------------------- contiguous layout


@pytest.mark.parametrize("kind", ["block", "row"])
@pytest.mark.parametrize("sizes", [[300, 0, 1, 129, 255], [3, 0, 17, 9, 30, 1, 0, 12], [700, 513], [77]])
@pytest.mark.parametrize("bf16_input", [False, True])
def test_contiguous_offsets_match_reference(kind, sizes, bf16_input):
    g, n, k, first, tail = len(sizes), 384, 512, 5, 7
    experts = Experts(g, n, k, kind, seed=10)
    m = first + sum(sizes) + tail
    x, q, s, x_deq = quantized_rows(m, k, seed=20)
    offsets = offsets_of(sizes, first)
    out = torch.full((m, n), NAN, dtype=BF16, device=DEVICE)
    args = (x, experts.weight, None, experts.scale) if bf16_input else (q, experts.weight, s, experts.scale)
    returned = blockgemm.grouped_gemm_contiguous(*args, offsets=offsets, out=out)
    assert returned is out
    torch.cuda.synchronize()
    owned = torch.zeros(m, dtype=torch.bool, device=DEVICE)
    bounds = offsets.tolist()
    for i in range(g):
        rows = slice(bounds[i], bounds[i + 1])
        owned[rows] = True
        check_rows(out, x_deq[rows] @ experts.deq[i].T, rows, f"group {i}")
    assert_poisoned(out, ~owned, "padding rows")
    # The allocating form agrees on every group's rows.
    allocated = blockgemm.grouped_gemm_contiguous(*args, offsets=offsets)
    assert allocated.shape == (m, n) and allocated.dtype == BF16
    assert torch.equal(allocated[owned].view(torch.int16), out[owned].view(torch.int16))


def test_contiguous_group_index_form():
    align = blockgemm.contiguous_group_alignment()
    assert align == 128
    sizes, n, k = [100, 0, 128, 1, 300], 256, 512
    experts = Experts(len(sizes), n, k, seed=30)
    index, spans = [], []
    for i, size in enumerate(sizes):
        spans.append((len(index), size))
        index += [i] * size
        index += [-1] * (-len(index) % align)
    m = len(index)
    _, q, s, x_deq = quantized_rows(m, k, seed=31)
    out = torch.full((m, n), NAN, dtype=BF16, device=DEVICE)
    blockgemm.grouped_gemm_contiguous(
        q, experts.weight, s, experts.scale, group_index=torch.tensor(index, dtype=I32, device=DEVICE), out=out
    )
    torch.cuda.synchronize()
    for i, (start, size) in enumerate(spans):
        rows = slice(start, start + size)
        check_rows(out, x_deq[rows] @ experts.deq[i].T, rows, f"group {i}")
    assert_poisoned(out, torch.tensor(index, device=DEVICE) < 0, "padding rows")


# ---------------------------------------------------------------- masked layout


@pytest.mark.parametrize("kind", ["block", "row"])
@pytest.mark.parametrize("expected_m", [None, 1, 16, 32, 64, 200])
@pytest.mark.parametrize("bf16_input", [False, True])
def test_masked_matches_reference(kind, expected_m, bf16_input):
    g, m_max, n, k = 6, 48, 320, 512
    counts = [0, 1, 17, 48, 60, -3]  # clamped into [0, M_max]
    experts = Experts(g, n, k, kind, seed=40)
    x, q, s, x_deq = quantized_rows(g * m_max, k, seed=41)
    masked_m = torch.tensor(counts, dtype=I32, device=DEVICE)
    out = torch.full((g, m_max, n), NAN, dtype=BF16, device=DEVICE)
    if bf16_input:
        args = (x.view(g, m_max, k), experts.weight, None, experts.scale)
    else:
        args = (q.view(g, m_max, k), experts.weight, s.view(g, m_max, k // 128), experts.scale)
    blockgemm.grouped_gemm_masked(*args, masked_m=masked_m, expected_m=expected_m, out=out)
    torch.cuda.synchronize()
    x_deq = x_deq.view(g, m_max, k)
    owned = torch.zeros(g, m_max, dtype=torch.bool, device=DEVICE)
    for i, count in enumerate(counts):
        valid = min(max(count, 0), m_max)
        owned[i, :valid] = True
        check_rows(out[i], x_deq[i, :valid] @ experts.deq[i].T, slice(0, valid), f"group {i}")
    assert_poisoned(out, ~owned, "masked rows")


def test_contiguous_row_major_scales_copied_before_a_long_plan():
    """Before a long plan the wrapper's workspace takes an M-contiguous copy of row-major input scales
    (bench/NOTES.md #71): bitwise the column-major call's, eager and replayed from a CUDA graph."""
    sizes, n, k = [2049, 2045], 4096, 7168
    g, m = len(sizes), sum(sizes)
    experts = Experts(g, n, k, seed=70)
    _, q, s, x_deq = quantized_rows(m, k, seed=71)
    offsets = offsets_of(sizes)
    desc = blockgemm._gemm._desc
    nbytes = blockgemm.grouped._ext.grouped_contiguous_workspace_bytes(
        desc(q), desc(experts.weight), desc(offsets), "offsets", desc(experts.scale))
    if nbytes == 0:
        pytest.skip("this GPU's plan for 2 x 4094x4096x7168 makes no input-scale copy (a 256-row tile)")
    ld = (m + 3) // 4 * 4
    s_cm = torch.empty((k // 128, ld), dtype=torch.float32, device=DEVICE).t()[:m]
    s_cm.copy_(s)
    expected = blockgemm.grouped_gemm_contiguous(q, experts.weight, s_cm, experts.scale, offsets=offsets)
    out = blockgemm.grouped_gemm_contiguous(q, experts.weight, s, experts.scale, offsets=offsets)
    torch.cuda.synchronize()
    assert torch.equal(out.view(torch.int16), expected.view(torch.int16))
    for i, rows in enumerate([slice(0, sizes[0]), slice(sizes[0], m)]):
        check_rows(out, x_deq[rows] @ experts.deq[i].T, rows, f"group {i}")
    graph_out = torch.full((m, n), NAN, dtype=BF16, device=DEVICE)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        blockgemm.grouped_gemm_contiguous(q, experts.weight, s, experts.scale, offsets=offsets, out=graph_out)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(graph_out.view(torch.int16), expected.view(torch.int16))


def test_masked_column_major_input_scale():
    """DeepGEMM's masked input scale is M-major per group: (G, K/128, M_max) transposed."""
    g, m_max, n, k = 4, 32, 256, 512
    experts = Experts(g, n, k, seed=50)
    _, q, s, x_deq = quantized_rows(g * m_max, k, seed=51)
    s_mn = s.view(g, m_max, k // 128).transpose(1, 2).contiguous().transpose(1, 2)
    masked_m = torch.tensor([32, 5, 0, 17], dtype=I32, device=DEVICE)
    out = blockgemm.grouped_gemm_masked(q.view(g, m_max, k), experts.weight, s_mn, experts.scale, masked_m=masked_m)
    torch.cuda.synchronize()
    for i, count in enumerate(masked_m.tolist()):
        check_rows(out[i], x_deq.view(g, m_max, k)[i, :count] @ experts.deq[i].T, slice(0, count), f"group {i}")


# ---------------------------------------------------------------- validation and errors


def contiguous_problem(g=4, m=256, n=256, k=256):
    experts = Experts(g, n, k, seed=60)
    _, q, s, _ = quantized_rows(m, k, seed=61)
    return q, experts.weight, s, experts.scale


def test_offsets_are_validated_by_default():
    q, w, s, ws = contiguous_problem()
    error = blockgemm.BlockgemmArgumentError
    assert issubclass(error, ValueError)
    with pytest.raises(ValueError, match=r"offsets\[2\].*must not decrease.*got 10"):
        bad = torch.tensor([0, 50, 10, 100, 256], dtype=I32, device=DEVICE)
        blockgemm.grouped_gemm_contiguous(q, w, s, ws, offsets=bad)
    with pytest.raises(ValueError, match=r"offsets\[4\].*<= M_total = 256.*got 300"):
        bad = torch.tensor([0, 50, 60, 100, 300], dtype=I32, device=DEVICE)
        blockgemm.grouped_gemm_contiguous(q, w, s, ws, offsets=bad)
    with pytest.raises(ValueError, match=r"group_index\[3\].*\[0, 4\) or -1.*got 4"):
        index = torch.tensor([0, 0, 1, 4] + [-1] * 252, dtype=I32, device=DEVICE)
        blockgemm.grouped_gemm_contiguous(q, w, s, ws, group_index=index)
    # validate=False skips the synchronisation; the kernel stays memory-safe on the bad table: offsets are
    # clamped into [0, M_total] and made non-decreasing as read, so groups 0, 1 (empty: 10 < 50), 2 and 3
    # own rows [0, 50), [50, 50), [50, 100), [100, 256), and every row is written exactly as those groups say.
    out = torch.full((256, 256), NAN, dtype=BF16, device=DEVICE)
    blockgemm.grouped_gemm_contiguous(
        q, w, s, ws, offsets=torch.tensor([0, 50, 10, 100, 300], dtype=I32, device=DEVICE), out=out, validate=False
    )
    clamped = torch.tensor([0, 50, 50, 100, 256], dtype=I32, device=DEVICE)
    expected = blockgemm.grouped_gemm_contiguous(q, w, s, ws, offsets=clamped)
    torch.cuda.synchronize()
    assert torch.equal(out.view(torch.int16), expected.view(torch.int16)), "clamped table: not the clamped groups"


@pytest.mark.parametrize(
    "breaker,pattern",
    [
        (lambda a: a.update(weight=torch.zeros(a["weight"].shape, dtype=BF16, device=DEVICE)),
         r"weight\.dtype.*float8_e4m3"),
        (lambda a: a.update(weight_scale=a["weight_scale"][:3]), r"weight_scale.*G = 4 groups"),
        (lambda a: a.update(offsets=a["offsets"][:4]), r"offsets.*shape \(5,\)"),
        (lambda a: a.update(offsets=a["offsets"].long()), r"offsets.*int32"),
        (lambda a: a.update(input_scale=None), r"input_scale.*None"),
        (lambda a: a.update(input=a["input"].view(1, 256, 256)), r"input.*2-D"),
        (lambda a: a.update(offsets=a["offsets"].cpu()), r"offsets\.device.*CUDA"),
    ],
)
def test_argument_errors_name_the_argument(breaker, pattern):
    q, w, s, ws = contiguous_problem()
    args = {"input": q, "weight": w, "input_scale": s, "weight_scale": ws, "offsets": offsets_of([64, 64, 64, 64])}
    breaker(args)
    with pytest.raises(ValueError, match=pattern):
        blockgemm.grouped_gemm_contiguous(
            args["input"], args["weight"], args["input_scale"], args["weight_scale"], offsets=args["offsets"]
        )


def test_exactly_one_group_table():
    q, w, s, ws = contiguous_problem()
    with pytest.raises(ValueError, match="exactly one.*neither"):
        blockgemm.grouped_gemm_contiguous(q, w, s, ws)
    with pytest.raises(ValueError, match="exactly one.*both"):
        index = torch.zeros(256, dtype=I32, device=DEVICE)
        blockgemm.grouped_gemm_contiguous(q, w, s, ws, offsets=offsets_of([64] * 4), group_index=index)


def test_masked_errors():
    g, m_max, n, k = 4, 16, 256, 256
    experts = Experts(g, n, k, seed=70)
    _, q, s, _ = quantized_rows(g * m_max, k, seed=71)
    masked_m = torch.tensor([1, 2, 3, 4], dtype=I32, device=DEVICE)
    args = (q.view(g, m_max, k), experts.weight, s.view(g, m_max, 2), experts.scale)
    with pytest.raises(ValueError, match=r"masked_m.*shape \(4,\)"):
        blockgemm.grouped_gemm_masked(*args, masked_m=masked_m[:3])
    with pytest.raises(ValueError, match=r"expected_m.*>= 1"):
        blockgemm.grouped_gemm_masked(*args, masked_m=masked_m, expected_m=0)
    with pytest.raises(TypeError, match="expected_m"):
        blockgemm.grouped_gemm_masked(*args, masked_m=masked_m, expected_m=1.5)
    with pytest.raises(ValueError, match=r"input.*3-D"):
        blockgemm.grouped_gemm_masked(q, experts.weight, s, experts.scale, masked_m=masked_m)


# ---------------------------------------------------------------- CUDA graphs and torch.compile


def warm_up(call) -> None:
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            call()
    torch.cuda.current_stream().wait_stream(side)


@pytest.mark.parametrize("bf16_input", [False, True])
def test_cuda_graph_masked_counts_change_between_replays(bf16_input):
    g, m_max, n, k = 8, 32, 512, 512
    experts = Experts(g, n, k, seed=80)
    x, q, s, x_deq = quantized_rows(g * m_max, k, seed=81)
    masked_m = torch.zeros(g, dtype=I32, device=DEVICE)
    out = torch.empty((g, m_max, n), dtype=BF16, device=DEVICE)
    if bf16_input:
        args = (x.view(g, m_max, k), experts.weight, None, experts.scale)
    else:
        args = (q.view(g, m_max, k), experts.weight, s.view(g, m_max, k // 128), experts.scale)

    def call():
        return blockgemm.grouped_gemm_masked(*args, masked_m=masked_m, expected_m=16, out=out)

    warm_up(call)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call()
    x_deq = x_deq.view(g, m_max, k)
    for counts in ([1, 2, 3, 4, 5, 6, 7, 8], [32, 0, 0, 17, 0, 0, 0, 32], [0] * 8, [9, 31, 16, 15, 1, 0, 8, 30]):
        masked_m.copy_(torch.tensor(counts, dtype=I32))
        out.fill_(NAN)
        graph.replay()
        torch.cuda.synchronize()
        owned = torch.zeros(g, m_max, dtype=torch.bool, device=DEVICE)
        for i, count in enumerate(counts):
            owned[i, :count] = True
            check_rows(out[i], x_deq[i, :count] @ experts.deq[i].T, slice(0, count), f"replay {counts} group {i}")
        assert_poisoned(out, ~owned, "masked rows")


@pytest.mark.parametrize("table_kind", ["offsets", "group_index"])
def test_cuda_graph_contiguous_tables_change_between_replays(table_kind):
    g, m, n, k = 4, 512, 256, 512
    experts = Experts(g, n, k, "row", seed=90)
    _, q, s, x_deq = quantized_rows(m, k, seed=91)
    offsets = offsets_of([128] * 4)
    index = torch.full((m,), -1, dtype=I32, device=DEVICE)
    out = torch.empty((m, n), dtype=BF16, device=DEVICE)
    table = {"offsets": offsets} if table_kind == "offsets" else {"group_index": index}

    def call():
        # validate=True: skipped while capturing
        return blockgemm.grouped_gemm_contiguous(q, experts.weight, s, experts.scale, out=out, **table)

    warm_up(call)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        call()
    for sizes in ([512, 0, 0, 0], [1, 200, 0, 300], [0, 0, 0, 0], [100, 100, 100, 100]):
        bounds = offsets_of(sizes)
        limits = bounds.tolist()
        offsets.copy_(bounds)
        rows = torch.full((m,), -1, dtype=I32)
        for i in range(g):
            rows[limits[i] : limits[i + 1]] = i
        index.copy_(rows)
        out.fill_(NAN)
        graph.replay()
        torch.cuda.synchronize()
        owned = torch.zeros(m, dtype=torch.bool, device=DEVICE)
        for i in range(g):
            span = slice(limits[i], limits[i + 1])
            owned[span] = True
            check_rows(out, x_deq[span] @ experts.deq[i].T, span, f"replay {sizes} group {i}")
        assert_poisoned(out, ~owned, "padding rows")


@pytest.mark.parametrize("backend", ["inductor", "aot_eager"])
def test_torch_compile_fullgraph_matches_eager(backend):
    g, m_max, n, k = 4, 16, 256, 512
    experts = Experts(g, n, k, seed=100)
    _, q, s, _ = quantized_rows(g * m_max, k, seed=101)
    x = randn(g * m_max, k, seed=102)
    offsets = offsets_of([10, 0, 30, 24])
    masked_m = torch.tensor([16, 3, 0, 9], dtype=I32, device=DEVICE)
    torch._dynamo.reset()

    def f(q, s, x, offsets, masked_m):
        a = blockgemm.grouped_gemm_contiguous(q, experts.weight, s, experts.scale, offsets=offsets)
        b = blockgemm.grouped_gemm_masked(
            x.view(g, m_max, k), experts.weight, None, experts.scale, masked_m=masked_m, expected_m=8
        )
        return a, b

    eager_a, eager_b = f(q, s, x, offsets, masked_m)
    compiled = torch.compile(f, fullgraph=True, backend=backend)
    for _ in range(2):  # the second call reuses the compiled graph
        a, b = compiled(q, s, x, offsets, masked_m)
        torch.testing.assert_close(a.view(torch.int16), eager_a.view(torch.int16), rtol=0, atol=0)
        for i, count in enumerate(masked_m.tolist()):
            assert torch.equal(b[i, :count].view(torch.int16), eager_b[i, :count].view(torch.int16))


# test_schema is left out: it compares every input before and after the call with torch.allclose, which
# float8 tensors may not support, and the grouped ops always take an fp8 weight.
@pytest.mark.parametrize("check", ["test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic"])
def test_opcheck_custom_ops(check):
    g, n, k = 2, 256, 256
    experts = Experts(g, n, k, seed=110)
    x = randn(64, k, seed=111)
    offsets = offsets_of([40, 24])  # every row in a group: the allocated outputs are fully written
    masked_m = torch.tensor([32, 32], dtype=I32, device=DEVICE)
    out = torch.empty((64, n), dtype=BF16, device=DEVICE)
    out3 = torch.empty((g, 32, n), dtype=BF16, device=DEVICE)
    w, ws, x3 = experts.weight, experts.scale, x.view(g, 32, k)
    ops = torch.ops.blockgemm
    cases = [
        (ops.grouped_contiguous.default, (x, w, None, ws, offsets, "offsets", BF16)),
        (ops.grouped_contiguous_out.default, (x, w, None, ws, offsets, "offsets", out)),
        (ops.grouped_masked.default, (x3, w, None, ws, masked_m, 16, BF16)),
        (ops.grouped_masked_out.default, (x3, w, None, ws, masked_m, 16, out3)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args, test_utils=(check,))


def test_example_moe_layer_runs():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "moe_layer.py"
    spec = importlib.util.spec_from_file_location("moe_layer", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tokens=64, hidden=512, intermediate=256, experts=8, top_k=2, check=True)


def test_plan_descriptions_name_the_kernel():
    # What the benchmark records beside each blockgemm row: the dispatcher's tile. The masked e = 256 plan is a
    # 128-row tile of the cost model (not #75's forced 128x128, bench/NOTES.md #75); the dense plan names one too.
    ext = blockgemm._blockgemm_ext
    masked = ext.describe_grouped_plan_masked(64, 384, 256, 4096, 7168)
    assert "BLOCK_M=128" in masked and "BLOCK_N=128 multicast=1" not in masked, masked
    assert "BLOCK_M=" in ext.describe_grouped_plan_contiguous(8 * 1024, 8, 4096, 7168)
    assert "BLOCK_M=" in ext.describe_plan(4096, 4096, 7168)
    assert ext.describe_plan(4096, 4096, 7168, per_row_weight_scale=True) != ""
