"""Benchmark harness (blockgemm.bench), no torch, no GPU: backend selection and support (backends), the
schedules, alternating rounds and the time estimate (protocol), and FlashInfer's input-scale layout-probe
decision (probe).

    cd python && python3 -m pytest -q tests/test_bench_backends_protocol_probe.py
"""

import pytest

import bench_test_util  # noqa: F401  (first: makes the blockgemm package importable)
from blockgemm.bench import backends as bk
from blockgemm.bench import probe as pr
from blockgemm.bench import protocol, shapes


# ------------------------------------------------------------------------------------------ backends


def test_default_dense_backends_are_the_five():
    names = [b["name"] for b in bk.dense_backends()]
    assert names == ["blockgemm", "flashinfer", "deepgemm", "cublaslt", "cublas-bf16"]
    assert bk.dense_backends()[0]["input_scale"] == "row" and bk.dense_backends()[0]["weight_scale"] == "block"


def test_dense_backend_variants():
    names = [
        b["name"]
        for b in bk.dense_backends(
            paths=["fp8", "bf16-fp8", "bf16-bf16"], weight_scales=["block", "row"], input_scales=["row", "mcontig"]
        )
    ]
    assert names[0] == "blockgemm"
    for expected in (
        "blockgemm/is=mcontig",
        "blockgemm/ws=row",
        "blockgemm/ws=row/is=mcontig",
        "blockgemm/bf16-fp8",
        "blockgemm/bf16-fp8/ws=row",
        "blockgemm/bf16-bf16",
        "flashinfer/bf16-fp8",
        "flashinfer/bf16-bf16",
    ):
        assert expected in names
    assert len(names) == len(set(names))
    assert "deepgemm/bf16-fp8" not in names


def test_backend_specs_drop_meaningless_scales():
    spec = bk.make_backend("blockgemm", "bf16-bf16", "row", "mcontig")
    assert spec["weight_scale"] is None and spec["input_scale"] is None and spec["name"] == "blockgemm/bf16-bf16"
    with pytest.raises(ValueError):
        bk.make_backend("cutlass")
    with pytest.raises(ValueError):
        bk.dense_backends(paths=["fp4"])


def test_supports():
    lt = bk.make_backend("cublaslt", input_scale="mcontig")
    assert not bk.supports(lt, shapes.dense_case(1, 2112, 7168))[0]
    assert "multiple of 4" in bk.supports(lt, shapes.dense_case(6, 2112, 7168))[1]
    assert bk.supports(lt, shapes.dense_case(16, 2112, 7168))[0]
    fi = bk.make_backend("flashinfer", input_scale="auto")
    assert not bk.supports(fi, shapes.dense_case(16, 2080, 7168))[0]
    assert bk.supports(bk.make_backend("blockgemm"), shapes.dense_case(1, 2080, 7168))[0]
    masked = shapes.masked_case(8, 4096, 7168, 16)
    contiguous = shapes.contiguous_case(4, 4096, 7168, "uniform", 1024, 1024)
    assert bk.supports(bk.make_backend("deepgemm", form="masked"), masked)[0]
    assert not bk.supports(bk.make_backend("deepgemm", form="masked"), contiguous)[0]
    assert not bk.supports(bk.make_backend("blockgemm"), masked)[0]
    assert not bk.supports(bk.make_backend("blockgemm", form="index"), shapes.dense_case(1, 16, 128))[0]


def test_grouped_backends_and_pairs():
    names = [b["name"] for b in bk.grouped_backends()]
    assert names == [
        "blockgemm/contig-index",
        "blockgemm/contig-offsets",
        "blockgemm/masked",
        "deepgemm/contig-index",
        "deepgemm/masked",
    ]
    for layout in ("contiguous", "masked"):
        for ours, theirs in bk.grouped_pairs(layout):
            assert ours in names and theirs in names
        assert bk.grouped_reference(layout) in names


def test_parse_list():
    assert bk.parse_list("fp8, bf16-fp8", bk.PATHS, "paths") == ["fp8", "bf16-fp8"]
    with pytest.raises(ValueError):
        bk.parse_list("fp8,int4", bk.PATHS, "paths")


# ------------------------------------------------------------------------------------------ protocol


def test_round_order_alternates():
    assert protocol.round_order(["a", "b", "c"], 0) == ["a", "b", "c"]
    assert protocol.round_order(["a", "b", "c"], 1) == ["c", "b", "a"]
    assert protocol.round_order(["a", "b", "c"], 2) == ["a", "b", "c"]


def test_schedule_covers_every_backend_each_round_and_alternates():
    steps = protocol.schedule(["a", "b", "c"], ["burst", "steady"], 2)
    assert len(steps) == 12
    assert [s[3] for s in steps[:6]] == ["a", "b", "c", "c", "b", "a"]
    assert [s[0] for s in steps] == ["burst"] * 6 + ["steady"] * 6
    assert [s[2] for s in steps[:3]] == [0, 1, 2]
    # No backend is first in every round.
    firsts = {s[3] for s in steps if s[2] == 0}
    assert firsts == {"a", "c"}
    with pytest.raises(ValueError):
        protocol.schedule(["a"], ["burst"], 0)


def test_protocols_for():
    assert protocol.protocols_for(16, ["burst", "steady"]) == ["burst"]
    assert protocol.protocols_for(512, ["burst", "steady"]) == ["burst", "steady"]
    assert protocol.protocols_for(4096, ["steady"]) == ["steady"]
    assert protocol.protocols_for(100, ["steady"], steady_min_m=64) == ["steady"]


def test_graph_call_count():
    assert protocol.graph_call_count(3000, 10, 4) == 300
    assert protocol.graph_call_count(3000, 10, 400) == 400  # every set visited
    assert protocol.graph_call_count(3000, 0.01, 2) == 2000  # capped
    assert protocol.graph_call_count(3000, 5000, 2) == 2
    assert protocol.graph_call_count(3000, 700, 1) == 5


def test_median():
    assert protocol.median([3, 1, 2]) == 2
    assert protocol.median([4, 1, 2, 3]) == 2.5
    with pytest.raises(ValueError):
        protocol.median([])


def test_estimate_fits_the_deepseek_suite_in_ten_minutes():
    cases = [{"m_effective": c["m"], "backends": 5, "probe": True} for c in shapes.deepseek_cases()]
    estimate = protocol.estimate_run(cases, ["burst", "steady"], 2, 1.0)
    assert estimate.cases == 42
    assert estimate.timings == 42 * 5 * 2 + 14 * 5 * 2
    assert estimate.steady_timings == 14 * 5 * 2
    assert 120 < estimate.total_s < 560
    assert "min" in estimate.describe()


def test_bursts_at_large_m_start_from_an_idle_card():
    assert protocol.idle_before("burst", 4096, 0.5) == 0.5
    assert protocol.idle_before("burst", 512, 0.5) == 0.5  # the steady-state threshold itself
    assert protocol.idle_before("burst", 128, 0.5) == 0.0
    assert protocol.idle_before("steady", 4096, 0.5) == 0.0  # steady state warms up instead
    assert protocol.idle_before("burst", 4096, 0.5, steady_min_m=8192) == 0.0
    with pytest.raises(ValueError):
        protocol.idle_before("burst", 4096, -1.0)
    # The idle pauses are in the estimate: 14 large-M cases x 5 backends x 2 rounds x 0.5 s.
    cases = [{"m_effective": c["m"], "backends": 5, "probe": True} for c in shapes.deepseek_cases()]
    plain = protocol.estimate_run(cases, ["burst", "steady"], 2, 1.0)
    idle = protocol.estimate_run(cases, ["burst", "steady"], 2, 1.0, burst_idle_s=0.5)
    assert abs(idle.total_s - plain.total_s - 14 * 5 * 2 * 0.5) < 1e-6
    assert idle.total_s < 560


def test_estimate_case_budget_caps():
    cases = [{"m_effective": 4096, "backends": 5, "probe": False}]
    uncapped = protocol.estimate_run(cases, ["burst", "steady"], 2, 10.0)
    capped = protocol.estimate_run(cases, ["burst", "steady"], 2, 10.0, case_budget_s=20.0)
    assert uncapped.per_case_s[0] > 100 and capped.per_case_s[0] == 20.0 and capped.capped_cases == 1


# ------------------------------------------------------------------------------------------ probe


def test_classify():
    assert pr.classify(1.4e-6, True) == pr.OK
    assert pr.classify(0.99, True) == pr.WRONG
    assert pr.classify(1e-3, True) == pr.WRONG  # the limit itself fails
    assert pr.classify(1e-6, False) == pr.WRONG
    assert pr.classify(float("nan"), True) == pr.WRONG
    assert pr.classify(None, True) == pr.WRONG


def test_decide_layout_prefers_the_documented_layout_when_correct():
    outcomes = {pr.M_CONTIGUOUS: pr.outcome(pr.OK, 1e-6), pr.ROW_MAJOR: pr.outcome(pr.OK, 2e-6)}
    assert pr.decide_layout(outcomes)[0] == pr.ROW_MAJOR
    assert pr.documented_layout_works(outcomes) is True


@pytest.mark.parametrize(
    "row_major", [pr.outcome(pr.WRONG, 0.99), pr.outcome(pr.CRASH), pr.outcome(pr.ERROR), pr.outcome(pr.NOT_RUN)]
)
def test_decide_layout_falls_back_to_m_contiguous(row_major):
    outcomes = {pr.M_CONTIGUOUS: pr.outcome(pr.OK, 1.4e-6), pr.ROW_MAJOR: row_major}
    layout, reason = pr.decide_layout(outcomes)
    assert layout == pr.M_CONTIGUOUS
    assert f"row-major: {row_major['status']}" in reason and "m-contiguous: ok" in reason


def test_decide_layout_none_when_nothing_is_correct():
    outcomes = {pr.M_CONTIGUOUS: pr.outcome(pr.WRONG, 0.5), pr.ROW_MAJOR: pr.outcome(pr.CRASH, note="illegal address")}
    layout, reason = pr.decide_layout(outcomes)
    assert layout is None and "crash" in reason and "0.5" in reason
    assert pr.decide_layout({})[0] is None
    assert pr.documented_layout_works({}) is None
    assert pr.documented_layout_works(outcomes) is False


def test_probe_order_runs_the_safe_layout_first():
    assert pr.PROBE_ORDER[0] == pr.M_CONTIGUOUS
    with pytest.raises(ValueError):
        pr.outcome("maybe")
