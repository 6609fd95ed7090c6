"""Unit tests of the Python benchmark's own logic (blockgemm.bench): no torch, no GPU, so they run in CI.

    cd python && python3 -m pytest -q tests/test_bench_harness.py

They cover the pure modules: suites and cases, operand-set rotation counts, backend selection and support,
schedules (alternating rounds), the time estimate, FlashInfer's layout-probe decision, summaries (best
round, ratios, geomeans per M regime), the JSON record's round trip, the markdown report and the CLI's
option handling. The torch side (workers, timing, calls) runs only on the GPU machine.
"""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest

try:  # the installed package (CI and scripts/test.sh run pytest from outside the checkout)
    import blockgemm.bench  # noqa: F401
except ImportError:  # else the source tree: its bench package imports without torch and the extension
    sys.modules.pop("blockgemm", None)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from blockgemm.bench import backends as bk  # noqa: E402
from blockgemm.bench import probe as pr  # noqa: E402
from blockgemm.bench import compare, protocol, records, report, rotation, shapes, summary  # noqa: E402
from blockgemm.bench.grouped_calls import aligned_starts, packed_offsets  # noqa: E402
from blockgemm.bench.nvml import summarize_samples  # noqa: E402
from blockgemm.bench.operands import mix_seed  # noqa: E402
from blockgemm.bench.plot import roofline_tflops  # noqa: E402
from blockgemm.bench.warmup import split  # noqa: E402

MIB = 1 << 20
GIB = 1 << 30


BENCH_MODULES = (
    "shapes",
    "rotation",
    "backends",
    "protocol",
    "probe",
    "summary",
    "records",
    "report",
    "plot",
    "nvml",
    "runner",
    "supervisor",
    "cli",
    "worker",
    "operands",
    "timing",
    "dense_calls",
    "grouped_calls",
    "warmup",
    "compare",
    "__main__",
)


def test_bench_modules_import_without_torch():
    # CI has no torch: no module of the package may import it at module level. Checked in a fresh
    # interpreter where importing torch raises, so the test means the same where torch is installed.
    import subprocess

    modules = [f"blockgemm.bench.{name}" for name in BENCH_MODULES if name != "__main__"]
    code = (
        "import sys, importlib\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch blocked by the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print('ok')\n"
    )
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


# ------------------------------------------------------------------------------------------ shapes


def test_deepseek_suite_shapes():
    cases = shapes.deepseek_cases()
    assert len(cases) == 7 * 6
    assert {(c["n"], c["k"]) for c in cases} == set(shapes.DEEPSEEK_NK)
    assert sorted({c["m"] for c in cases}) == [1, 16, 64, 128, 512, 4096]
    assert shapes.case_key(cases[0]) == "1x2112x7168"
    assert len(shapes.deepseek_cases([2, 3])) == 14


def test_other_models_suite_has_labels_and_16_pairs():
    cases = shapes.other_model_cases()
    assert len({(c["n"], c["k"]) for c in cases}) == 16
    assert all(c.get("label") for c in cases)
    assert sorted({c["m"] for c in cases}) == [1, 32, 128, 512, 2048]


@pytest.mark.parametrize(
    "text,expected",
    [("4096x7168x16384", (4096, 7168, 16384)), ("1,576,7168", (1, 576, 7168)), (" 8 X 256 x 128 ", (8, 256, 128))],
)
def test_parse_shape(text, expected):
    case = shapes.parse_shape(text)
    assert (case["m"], case["n"], case["k"]) == expected and case["kind"] == "dense"


@pytest.mark.parametrize("text", ["4096x7168", "0x1x128", "ax2x3", "1x2x3x4", ""])
def test_parse_shape_rejects(text):
    with pytest.raises(ValueError):
        shapes.parse_shape(text)


def test_parse_int_list():
    assert shapes.parse_int_list("1, 16,64") == [1, 16, 64]
    for bad in ("", "1,x", "0", "-3"):
        with pytest.raises(ValueError):
            shapes.parse_int_list(bad)


@pytest.mark.parametrize(
    "m,name",
    [
        (1, "M <= 32"),
        (32, "M <= 32"),
        (33, "M 64..512"),
        (512, "M 64..512"),
        (1023, "M 64..512"),
        (1024, "M >= 1024"),
        (4096, "M >= 1024"),
    ],
)
def test_regime(m, name):
    assert shapes.regime(m) == name


def test_skewed_sizes_span_and_interleave():
    sizes = shapes.skewed_sizes(8, 1024, 8192)
    assert len(sizes) == 8 and min(sizes) == 1024 and max(sizes) == 8192
    assert sizes[0] == 1024 and sizes[1] == 8192  # cold, hot, ...
    assert shapes.skewed_sizes(1, 1024, 8192) == [1024]
    assert sorted(shapes.skewed_sizes(5, 10, 10)) == [10] * 5


def test_masked_counts_deterministic_and_in_range():
    counts = shapes.masked_counts(64, 16)
    assert counts == shapes.masked_counts(64, 16)
    assert all(int(16 * 0.7) <= c <= int(16 * 1.3) and c >= 1 for c in counts)
    assert counts != shapes.masked_counts(64, 16, seed=1)
    assert all(c >= 1 for c in shapes.masked_counts(8, 1))


def test_grouped_cases_match_issue_25():
    cases = shapes.grouped_cases()
    contiguous = [c for c in cases if c["layout"] == "contiguous"]
    masked = [c for c in cases if c["layout"] == "masked"]
    assert {c["g"] for c in contiguous} == {4, 8, 32} and {c["g"] for c in masked} == {8, 32, 64}
    assert {c["expected_m"] for c in masked} == {16, 64, 256}
    assert {(c["n"], c["k"]) for c in cases} == {(4096, 7168), (7168, 2048)}
    assert all(1024 <= s <= 8192 for c in contiguous for s in c["sizes"])
    assert any(c["routing"].startswith("skewed") for c in contiguous)
    for c in masked:
        assert c["m_max"] % 128 == 0 and c["m_max"] >= max(c["masked_m"])
    assert len({shapes.case_key(c) for c in cases}) == len(cases)


def test_valid_rows_and_flops():
    dense = shapes.dense_case(4, 256, 128)
    assert shapes.valid_rows(dense) == 4 and shapes.case_flops(dense) == 2 * 4 * 256 * 128
    contiguous = shapes.contiguous_case(2, 256, 128, "uniform", 100, 100)
    assert shapes.valid_rows(contiguous) == 200
    masked = shapes.masked_case(4, 256, 128, 16)
    assert shapes.valid_rows(masked) == sum(masked["masked_m"])


def test_suite_cases_dispatch():
    assert len(shapes.suite_cases("shapes", shapes=[shapes.dense_case(1, 16, 128)])) == 1
    with pytest.raises(ValueError):
        shapes.suite_cases("nope")


# ------------------------------------------------------------------------------------------ rotation


def test_rotation_sets_basic_arithmetic():
    assert rotation.rotation_sets(256 * MIB) == 2  # min 2 even when one set covers the target
    assert rotation.rotation_sets(300 * MIB) == 2
    assert rotation.rotation_sets(100 * MIB) == 3  # ceil(256 / 100)
    assert rotation.rotation_sets(64 * MIB) == 4
    assert rotation.rotation_sets(1) == rotation.MAX_SETS
    assert rotation.rotation_sets(10 * MIB, target_bytes=512 * MIB) == 52


def test_rotation_sets_total_exceeds_l2_many_times():
    for nbytes in (1 * MIB, 3 * MIB, 7 * MIB + 5, 49 * MIB, 51 * MIB, 200 * MIB):
        sets = rotation.rotation_sets(nbytes)
        assert sets >= 2 and sets * nbytes >= rotation.ROTATION_TARGET_BYTES > 5 * rotation.L2_BYTES - 1


def test_rotation_sets_memory_cap_and_minimum():
    # A cap that affords 3 sets of the footprint wins over the target...
    assert rotation.rotation_sets(10 * MIB, memory_cap_bytes=30 * MIB) == 3
    # ... unless it would go below the minimum of two sets.
    assert rotation.rotation_sets(10 * GIB, memory_cap_bytes=8 * GIB) == 2
    assert rotation.rotation_sets(1 * MIB, footprint_per_set=1 * rotation.GIB, memory_cap_bytes=4 * rotation.GIB) == 4


@pytest.mark.parametrize("bad", [0, -5])
def test_rotation_sets_rejects_nonpositive(bad):
    with pytest.raises(ValueError):
        rotation.rotation_sets(bad)


def test_dense_call_bytes():
    # M=1, N=2112, K=7168: input 7168 + weight 2112*7168 + scales (56 + 17*56)*4 + out 2*2112
    assert rotation.dense_call_bytes(1, 2112, 7168) == 7168 + 2112 * 7168 + (56 + 17 * 56) * 4 + 2 * 2112
    per_row = rotation.dense_call_bytes(1, 2112, 7168, weight_scale="row")
    assert per_row - rotation.dense_call_bytes(1, 2112, 7168) == (2112 - 17) * 56 * 4
    bf16 = rotation.dense_call_bytes(4, 256, 128, input_bytes=2, weight_bytes=2)
    assert bf16 == 4 * 128 * 2 + 256 * 128 * 2 + 4 * 256 * 2  # no scales for bf16 operands


def test_case_rotation_sets_of_the_suite():
    small = shapes.dense_case(1, 576, 7168)
    assert rotation.case_rotation_sets(small) == math.ceil(rotation.ROTATION_TARGET_BYTES / rotation.case_bytes(small))
    big = shapes.dense_case(4096, 7168, 16384)
    assert rotation.case_rotation_sets(big) == 2
    for case in shapes.deepseek_cases() + shapes.grouped_cases():
        sets = rotation.case_rotation_sets(case)
        assert 2 <= sets <= rotation.MAX_SETS
        assert sets * rotation.case_bytes(case) >= rotation.ROTATION_TARGET_BYTES


def test_grouped_bytes():
    case = shapes.contiguous_case(2, 256, 128, "uniform", 100, 100)
    weights = 2 * (256 * 128 + 2 * 1 * 4)
    assert rotation.grouped_weight_bytes(2, 256, 128) == weights
    assert rotation.grouped_call_bytes(case) == 200 * (128 + 4) + weights + 200 * 256 * 2
    assert rotation.grouped_footprint_bytes(case) == 2 * 128 * (128 + 4 + 256 * 2) + weights


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


# ------------------------------------------------------------------------------------------ summaries


def make_row(suite, case, backend, status="ok", burst=None, steady=None, family=None):
    timings = []
    for protocol_name, values in (("burst", burst), ("steady", steady)):
        for index, value in enumerate(values or ()):
            timings.append(
                {
                    "protocol": protocol_name,
                    "round": index,
                    "position": 0,
                    "status": "ok" if value is not None else "error",
                    "us": value,
                }
            )
    return {
        "suite": suite,
        "case": case,
        "key": shapes.case_key(case),
        "backend": backend,
        "family": family or backend.split("/")[0],
        "status": status,
        "note": "",
        "check": {"diff": 1e-6},
        "timings": timings,
    }


def sample_rows():
    rows = []
    for m, ours, peer in ((16, 10.0, 12.0), (128, 20.0, 21.0), (4096, 100.0, 90.0)):
        case = shapes.dense_case(m, 2112, 7168)
        rows.append(
            make_row(
                "deepseek", case, "blockgemm", burst=[ours * 1.05, ours], steady=[ours * 1.2] if m >= 512 else None
            )
        )
        rows.append(
            make_row(
                "deepseek", case, "flashinfer", burst=[peer, peer * 1.01], steady=[peer * 1.1] if m >= 512 else None
            )
        )
        rows.append(make_row("deepseek", case, "cublaslt", status="unsupported" if m == 16 else "ok", burst=[peer * 2]))
    return rows


def test_best_us_takes_the_best_completed_round_of_a_passing_row():
    row = make_row("s", shapes.dense_case(1, 16, 128), "blockgemm", burst=[5.0, 4.0, None])
    assert summary.best_us(row, "burst") == 4.0
    assert summary.best_us(row, "steady") is None
    row["status"] = "check_failed"
    assert summary.best_us(row, "burst") is None
    assert summary.best_us(None, "burst") is None
    assert summary.round_spread(make_row("s", shapes.dense_case(1, 16, 128), "b", burst=[4.0, 5.0]), "burst") == 0.25


def test_geomean_and_ratio():
    assert summary.geomean([2.0, 8.0]) == pytest.approx(4.0)
    assert summary.geomean([]) is None
    assert summary.geomean([None, 1.0, float("nan"), -1]) == 1.0
    assert summary.ratio(12.0, 10.0) == pytest.approx(1.2)
    assert summary.ratio(None, 10.0) is None and summary.ratio(1.0, 0) is None


def test_tflops_and_bandwidth():
    case = shapes.dense_case(4096, 7168, 16384)
    assert summary.tflops(case, 745.0) == pytest.approx(2 * 4096 * 7168 * 16384 / 745e-6 / 1e12)
    assert summary.gbps(1e9, 1e6) == pytest.approx(1.0)
    grouped = shapes.masked_case(8, 4096, 7168, 16)
    assert summary.case_gbps(grouped, 100.0) == pytest.approx(rotation.grouped_weight_bytes(8, 4096, 7168) / 1e-4 / 1e9)


def test_dense_regime_summaries():
    rows = sample_rows()
    found = summary.dense_regime_summaries(rows, "deepseek", "burst", "blockgemm", ["flashinfer", "cublaslt"])
    by = {(s["peer"], s["regime"]): s for s in found}
    assert by[("flashinfer", "M <= 32")]["geomean"] == pytest.approx(1.2)
    assert by[("flashinfer", "M 64..512")]["geomean"] == pytest.approx(21.0 / 20.0)
    assert by[("flashinfer", "M >= 1024")]["geomean"] == pytest.approx(0.9)
    assert by[("flashinfer", "all")]["count"] == 3
    assert by[("flashinfer", "all")]["geomean"] == pytest.approx((1.2 * 1.05 * 0.9) ** (1 / 3))
    assert by[("flashinfer", "all")]["worst"] == pytest.approx(0.9)
    assert ("cublaslt", "M <= 32") not in by  # unsupported there
    assert by[("cublaslt", "all")]["count"] == 2
    steady = summary.dense_regime_summaries(rows, "deepseek", "steady", "blockgemm", ["flashinfer"])
    assert [s["regime"] for s in steady] == ["M >= 1024", "all"]
    assert steady[0]["geomean"] == pytest.approx(99.0 / 120.0)


def test_grouped_summaries():
    contiguous = shapes.contiguous_case(4, 4096, 7168, "uniform", 1024, 1024)
    masked = shapes.masked_case(8, 4096, 7168, 16)
    rows = [
        make_row("grouped", contiguous, "blockgemm/contig-index", burst=[100.0]),
        make_row("grouped", contiguous, "blockgemm/contig-offsets", burst=[102.0]),
        make_row("grouped", contiguous, "deepgemm/contig-index", burst=[110.0]),
        make_row("grouped", masked, "blockgemm/masked", burst=[50.0]),
        make_row("grouped", masked, "deepgemm/masked", burst=[60.0]),
    ]
    found = summary.grouped_summaries(
        rows, "grouped", "burst", {layout: bk.grouped_pairs(layout) for layout in ("contiguous", "masked")}
    )
    by = {(s["reference"], s["peer"]): s["geomean"] for s in found}
    assert by[("blockgemm/contig-index", "deepgemm/contig-index")] == pytest.approx(1.1)
    assert by[("blockgemm/contig-offsets", "blockgemm/contig-index")] == pytest.approx(100 / 102)
    assert by[("blockgemm/masked", "deepgemm/masked")] == pytest.approx(1.2)


def test_record_summaries_cover_every_suite_protocol_and_variant():
    # What the runner stores in a record and the compare tool recomputes: the dense regimes against every peer
    # present and blockgemm's own variants (here a per-row weight scale), per protocol; the grouped pairs.
    rows = sample_rows()
    rows.append(make_row("deepseek", shapes.dense_case(16, 2112, 7168), "blockgemm/ws=row", burst=[11.0]))
    contiguous = shapes.contiguous_case(4, 4096, 7168, "uniform", 1024, 1024)
    rows.append(make_row("grouped", contiguous, "blockgemm/contig-index", burst=[100.0]))
    rows.append(make_row("grouped", contiguous, "deepgemm/contig-index", burst=[110.0]))
    found = summary.record_summaries(rows, ["deepseek", "grouped"])
    keys = {(s["suite"], s["protocol"], s["peer"], s["regime"]) for s in found}
    assert ("deepseek", "burst", "flashinfer", "M >= 1024") in keys
    assert ("deepseek", "steady", "flashinfer", "M >= 1024") in keys
    assert ("deepseek", "burst", "blockgemm/ws=row", "M <= 32") in keys
    assert ("grouped", "burst", "deepgemm/contig-index", "contiguous") in keys
    peers = ["flashinfer", "deepgemm", "cublaslt", "cublas-bf16", "blockgemm/ws=row"]
    dense = summary.dense_regime_summaries(rows, "deepseek", "burst", "blockgemm", peers)
    assert [s for s in found if s["suite"] == "deepseek" and s["protocol"] == "burst"] == dense
    assert summary.record_summaries([], ["deepseek"]) == []


def test_reference_checks_passed():
    rows = sample_rows()
    assert summary.reference_checks_passed(rows)
    rows.append(
        make_row(
            "deepseek", shapes.dense_case(1, 16, 128), "blockgemm/ws=row", status="check_failed", family="blockgemm"
        )
    )
    assert not summary.reference_checks_passed(rows)
    assert summary.status_counts(rows)["check_failed"] == 1


# ------------------------------------------------------------------------------------------ records


def test_json_round_trip(tmp_path):
    record = records.new_record({"suites": ["deepseek"], "rounds": 2}, ["--suite", "deepseek"])
    record["rows"] = sample_rows()
    record["rows"][0]["timings"][0]["nvml"] = {"sm_clock_mhz": {"mean": 1755.0, "min": 1740, "max": 1770}}
    record["rows"][0]["check"] = {"diff": float("nan"), "finite": False, "passed": False}
    record["extra"] = (1, 2)
    path = tmp_path / "out" / "bench.json"
    records.write_json(str(path), record)
    loaded = records.load_json(str(path))
    assert loaded["rows"][0]["check"]["diff"] is None  # NaN written as null
    assert loaded["extra"] == [1, 2]
    expected = json.loads(json.dumps(records.to_jsonable(record)))
    assert loaded == expected
    assert summary.best_us(loaded["rows"][1], "burst") == summary.best_us(record["rows"][1], "burst")
    assert not os.path.exists(str(path) + ".tmp")


def _record_with(rows):
    record = records.new_record({"suites": ["deepseek"], "rounds": 2}, ["--suite", "deepseek"])
    record["rows"] = rows
    record["summaries"] = summary.dense_regime_summaries(rows, "deepseek", "burst", "blockgemm", ["flashinfer"])
    return record


def _scaled_rows(factor_at_4096):
    # sample_rows() with blockgemm's time at M = 4096 multiplied by the factor.
    rows = sample_rows()
    for row in rows:
        if row["family"] == "blockgemm" and row["case"]["m"] == 4096:
            for timing in row["timings"]:
                if timing["us"] is not None:
                    timing["us"] *= factor_at_4096
    return rows


def test_compare_two_runs_within_and_outside_the_tolerance(tmp_path, capsys):
    run1 = _record_with(sample_rows())
    same = compare.compare_summaries(run1, _record_with(sample_rows()), 0.03)
    assert same and all(r["within"] and r["ratio"] == pytest.approx(1.0) for r in same)
    # blockgemm 2.9% slower at M = 4096 in run 2: its geomeans there drop by 1/1.029 (within 3% both ways).
    close = {r["key"][4]: r for r in compare.compare_summaries(run1, _record_with(_scaled_rows(1.029)), 0.03)}
    assert close["M >= 1024"]["ratio"] == pytest.approx(1 / 1.029) and close["M >= 1024"]["within"]
    # 3.1% slower: run 1's geomean exceeds run 2's by 3.1%, outside; the other regimes unchanged.
    far = {r["key"][4]: r for r in compare.compare_summaries(run1, _record_with(_scaled_rows(1.031)), 0.03)}
    assert far["M >= 1024"]["within"] is False
    assert far["M <= 32"]["within"] and far["M 64..512"]["within"]
    # The per-case times of blockgemm, run 2 / run 1.
    ratios = compare.case_time_ratios(run1, _record_with(_scaled_rows(1.031)), "burst")
    assert sorted(ratios) == pytest.approx([1.0, 1.0, 1.031])
    # The CLI: exit 0 when all agree, 1 when one does not, 2 when nothing matches; the table names the misses.
    paths = []
    for name, record in (("a", run1), ("b", _record_with(sample_rows())), ("c", _record_with(_scaled_rows(1.031)))):
        paths.append(str(tmp_path / f"{name}.json"))
        records.write_json(paths[-1], record)
    assert compare.main([paths[0], paths[1]]) == 0
    assert compare.main([paths[0], paths[2], "--out", str(tmp_path / "cmp.md")]) == 1
    text = (tmp_path / "cmp.md").read_text()
    assert "**no**" in text and "outside: burst vs flashinfer M >= 1024" in text
    empty = _record_with(sample_rows())
    empty["rows"], empty["summaries"] = [], []
    records.write_json(str(tmp_path / "e.json"), empty)
    assert compare.main([paths[0], str(tmp_path / "e.json")]) == 2
    assert compare.main([paths[0], str(tmp_path / "missing.json")]) == 2
    with pytest.raises(SystemExit):
        compare.main([paths[0], paths[1], "--tolerance", "0"])
    capsys.readouterr()


def test_compare_matches_the_cases_both_runs_timed(tmp_path, capsys):
    # Run 1 was cut short by its deadline: it lacks the M = 4096 case, where run 2's blockgemm is 10% slower.
    # As recorded, the M >= 1024 regime exists in run 2 only and "all" differs; matched, both runs' geomeans
    # cover the same two cases and agree exactly.
    short = [r for r in sample_rows() if r["case"]["m"] != 4096]
    run1, run2 = _record_with(short), _record_with(_scaled_rows(1.10))
    as_recorded = {r["key"][4]: r for r in compare.compare_summaries(run1, run2, 0.03) if r["key"][3] == "flashinfer"}
    assert as_recorded["M >= 1024"]["within"] is None and as_recorded["all"]["within"] is False
    m1, m2, counts = compare.matched_records(run1, run2)
    # M = 16 and 128: blockgemm and FlashInfer in burst, cuBLASLt at 128 (it rejects M = 16); M = 4096 in run
    # 2 alone: blockgemm and FlashInfer in burst and steady, cuBLASLt in burst.
    assert counts == {"matched": 5, "run1_only": 0, "run2_only": 5}
    matched = {r["key"][4]: r for r in compare.compare_summaries(m1, m2, 0.03) if r["key"][3] == "flashinfer"}
    assert "M >= 1024" not in matched
    assert matched["all"]["ratio"] == pytest.approx(1.0) and matched["all"]["run2"]["count"] == 2
    assert as_recorded["all"]["run2"]["count"] == 3
    # A protocol only one run timed for a case is dropped from both (run 2 alone times M = 128 steady, on
    # its three backends).
    steady = _scaled_rows(1.0)
    for row in steady:
        if row["case"]["m"] == 128:
            row["timings"].append(dict(row["timings"][0], protocol="steady"))
    _, m2s, counts = compare.matched_records(_record_with(sample_rows()), _record_with(steady))
    assert counts["run2_only"] == 3 and all(
        t["protocol"] != "steady" for r in m2s["rows"] if r["case"]["m"] == 128 for t in r["timings"]
    )
    paths = [str(tmp_path / "short.json"), str(tmp_path / "slow.json")]
    records.write_json(paths[0], run1)
    records.write_json(paths[1], run2)
    assert compare.main(paths) == 0
    assert "over the 5 timings" in capsys.readouterr().out
    assert compare.main(paths + ["--as-recorded"]) == 1
    capsys.readouterr()


def test_load_json_rejects_other_files(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"tool": "something-else"}))
    with pytest.raises(ValueError):
        records.load_json(str(path))
    path.write_text(json.dumps({"tool": records.TOOL, "schema": 999}))
    with pytest.raises(ValueError):
        records.load_json(str(path))


def test_to_jsonable_strict():
    value = records.to_jsonable({1: [float("inf"), 2.5, (3, None)], "b": True})
    assert value == {"1": [None, 2.5, [3, None]], "b": True}
    json.dumps(value, allow_nan=False)


def test_git_info_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("BLOCKGEMM_GIT_COMMIT", "abc123")
    info = records.git_info(str(tmp_path))  # not a git tree
    assert info["commit"] == "abc123" and info["source"] == "BLOCKGEMM_GIT_COMMIT"


def test_git_info_names_the_tree_of_the_files_as_they_are(tmp_path):
    """A copy whose git metadata is older than its files (the device machine's) names the tree the files make,
    which `git log --format='%H %T'` maps to the commit that has it; the stash list is untouched."""
    if shutil.which("git") is None:
        pytest.skip("no git on this machine")

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (tmp_path / "a.txt").write_text("one\n")
    git("add", "a.txt")
    git("commit", "-qm", "one")
    (tmp_path / "a.txt").write_text("two\n")
    info = records.git_info(str(tmp_path))
    assert info["dirty"] is True
    git("commit", "-qam", "two")  # the commit the files belong to
    assert info["tree"] == git("rev-parse", "HEAD^{tree}").strip()
    assert git("stash", "list") == ""
    clean = records.git_info(str(tmp_path))
    assert clean["dirty"] is False and clean["tree"] == info["tree"]


# ------------------------------------------------------------------------------------------ report


def test_report_renders_tables_ratios_and_geomeans():
    record = records.new_record({"rounds": 2, "replays": 7, "steady_s": 1.0}, [])
    record["rows"] = sample_rows()
    record["rows"][0]["timings"][0]["nvml"] = {"sm_clock_mhz": {"mean": 1755.0}, "power_w": {"mean": 500.0}}
    record["device"] = {"name": "NVIDIA H100 80GB HBM3", "sm_count": 132}
    record["probes"] = [
        {
            "case": shapes.dense_case(16, 2112, 7168),
            "chosen": pr.M_CONTIGUOUS,
            "outcomes": {pr.M_CONTIGUOUS: pr.outcome(pr.OK, 1.4e-6), pr.ROW_MAJOR: pr.outcome(pr.CRASH)},
        }
    ]
    record["complete"] = True
    text = report.render(record)
    assert "## DeepSeek-V3 projections" in text
    assert "| M | N | K | blockgemm us | flashinfer us | cublaslt us |" in text
    assert "| 16 | 2112 | 7168 | 10.0 | 12.0 | n/a |" in text
    assert "vs FlashInfer" in text and "1.200" in text
    assert "### steady state" in text
    assert "M <= 32" in text and "1.200 (1, 1.20)" in text
    assert "SM clock 1755-1755 MHz" in text
    assert (
        "FlashInfer input-scale layout probe" in text
        and "| 16 | 2112 | 7168 | ok (1.4e-06) | crash | m-contiguous |" in text
    )
    assert "INCOMPLETE" not in text


def test_report_lists_blockgemm_variants_against_the_reference():
    record = records.new_record({}, [])
    case = shapes.dense_case(128, 2112, 7168)
    record["rows"] = [
        make_row("deepseek", case, "blockgemm", burst=[10.0]),
        make_row("deepseek", case, "blockgemm/bf16-fp8", burst=[12.5], family="blockgemm"),
        make_row("deepseek", case, "flashinfer", burst=[11.0]),
    ]
    text = report.render(record)
    assert "| 128 | 2112 | 7168 | 10.0 | 12.5 | 11.0 |" in text
    assert (
        "other paths and layouts" in text
        and "| blockgemm/bf16-fp8 | - | 1.250 (1, 1.25) | - | 1.250 (1, 1.25) |" in text
    )


def test_report_cells_for_failures():
    case = shapes.dense_case(16, 2112, 7168)
    failed = make_row("deepseek", case, "blockgemm", status="check_failed")
    failed["check"] = {"diff": 0.99}
    assert report.cell(failed, "burst") == "FAIL (0.99)"
    assert report.cell(make_row("deepseek", case, "deepgemm", status="crash"), "burst") == "crash"
    assert report.cell(make_row("deepseek", case, "deepgemm", burst=[None]), "burst") == "error"
    assert report.cell(make_row("deepseek", case, "deepgemm", burst=[3.456]), "burst") == "3.46"
    assert report.fmt_us(123.456) == "123.5"


def test_report_grouped_section():
    contiguous = shapes.contiguous_case(4, 4096, 7168, "uniform", 1024, 1024)
    record = records.new_record({}, [])
    record["rows"] = [
        make_row("grouped", contiguous, "blockgemm/contig-index", burst=[100.0]),
        make_row("grouped", contiguous, "blockgemm/contig-offsets", status="unavailable"),
        make_row("grouped", contiguous, "deepgemm/contig-index", burst=[110.0]),
    ]
    text = report.render(record)
    assert "Contiguous layout" in text and "uniform-1024" in text
    assert "deepgemm/contig-index / blockgemm/contig-index: geomean 1.100" in text


def test_markdown_table_shape():
    lines = report.markdown_table(["a", "b"], [["1", "2"]], align_right_from=1)
    assert lines == ["| a | b |", "|---|---:|", "| 1 | 2 |"]


# ------------------------------------------------------------------------------------------ misc pure helpers


def test_nvml_summary():
    samples = [
        {"sm_clock_mhz": 1400.0, "power_w": 690.0, "throttle": ["sw_power_cap"]},
        {"sm_clock_mhz": 1600.0, "power_w": 650.0, "temperature_c": 60.0},
    ]
    out = summarize_samples(samples)
    assert out["samples"] == 2
    assert out["sm_clock_mhz"] == {"mean": 1500.0, "min": 1400.0, "max": 1600.0}
    assert out["temperature_c"]["mean"] == 60.0 and out["throttle"] == ["sw_power_cap"]
    assert summarize_samples([]) == {"samples": 0}


def test_grouped_layout_helpers():
    assert packed_offsets([3, 0, 5]) == [0, 3, 3, 8]
    starts, total = aligned_starts([3, 0, 129, 128], 128)
    assert starts == [0, 128, 128, 384] and total == 512


def test_mix_seed_deterministic_and_distinct():
    assert mix_seed(1, 2, 3) == mix_seed(1, 2, 3)
    assert mix_seed(1, 2, 3) != mix_seed(1, 3, 2)
    assert 0 <= mix_seed(2**70, -1) < 2**63


def test_roofline():
    # 4096^3 fp8: compute-bound at the peak.
    flops, nbytes = 2 * 4096**3, 3 * 4096**2
    assert roofline_tflops(flops, nbytes, 1979, 3.35) == pytest.approx(1979)
    # M = 1: bandwidth-bound, 2 flops per weight byte.
    assert roofline_tflops(2 * 7168 * 2112, 7168 * 2112, 1979, 3.35) == pytest.approx(2 * 3.35)


def test_warmup_split_balances():
    cases = shapes.deepseek_cases()
    parts = split(cases, 4)
    assert len(parts) == 4 and sum(len(p) for p in parts) == len(cases)
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
    assert split(cases[:2], 8) == [[c] for c in sorted(cases[:2], key=rotation.case_bytes, reverse=True)]


def test_cli_options_and_estimate(capsys, tmp_path):
    from blockgemm.bench import cli, runner

    args = cli.build_parser().parse_args(["--shape", "64x4096x7168", "--rounds", "3", "--out-dir", str(tmp_path)])
    options = cli.options_from(args)
    assert options["suites"] == ["shapes"] and options["rounds"] == 3
    assert options["json_path"] == os.path.join(str(tmp_path), "bench.json")
    planned = runner.plan_cases(options)
    assert [shapes.case_key(c) for _, c in planned] == ["64x4096x7168"]
    assert cli.main(["--estimate-only", "--suite", "deepseek", "--out-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "estimated wall time" in out and "4096x7168x16384" in out
    assert cli.build_parser().parse_args(["--protocol", "both"]).protocols == ["burst", "steady"]
    assert cli.build_parser().parse_args(["--protocols", "steady", "--warm-seconds", "2"]).steady_s == 2.0
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["--paths", "fp4"])
    with pytest.raises(SystemExit):
        cli.main(["--suite", "shapes"])


def test_runner_plans_backends_and_probe():
    from blockgemm.bench import cli, runner

    options = cli.options_from(cli.build_parser().parse_args([]))
    case = shapes.dense_case(16, 2112, 7168)
    assert [b["name"] for b in runner.backends_for(case, options)] == [
        "blockgemm",
        "flashinfer",
        "deepgemm",
        "cublaslt",
        "cublas-bf16",
    ]
    assert runner.wants_probe(case, options)
    assert not runner.wants_probe(shapes.dense_case(16, 2080, 7168), options)  # FlashInfer cannot run it
    estimate = runner.estimate(runner.plan_cases(options), options)
    assert estimate.total_s < options["deadline_s"]


# ------------------------------------------------------------------------------------------ main loop, fake workers

FAKE_WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_fake_worker.py")


def run_fake(monkeypatch, tmp_path, args, env=None):
    """The benchmark's main process against bench_fake_worker.py (no torch): returns (exit status, record)."""
    from blockgemm.bench import cli, supervisor

    monkeypatch.setattr(supervisor, "WORKER_COMMAND", [sys.executable, FAKE_WORKER])
    for key, value in (env or {}).items():
        monkeypatch.setenv(key, value)
    status = cli.main(args + ["--out-dir", str(tmp_path), "--no-plot", "--steady-s", "0"])
    return status, records.load_json(os.path.join(str(tmp_path), "bench.json"))


def test_main_loop_end_to_end_with_a_crashing_peer(monkeypatch, tmp_path, capsys):
    shapes_args = [
        "--shape",
        "1x2112x7168",
        "--shape",
        "16x2112x7168",
        "--shape",
        "128x2112x7168",
        "--shape",
        "4096x2112x7168",
    ]
    status, record = run_fake(
        monkeypatch, tmp_path, shapes_args + ["--time-timeout-s", "20"], {"FAKE_CRASH_TIME": "deepgemm:128"}
    )
    assert status == 0  # every blockgemm check passed; a peer's crash does not fail the run
    assert record["complete"] and record["device"]["name"] == "Fake H100"
    rows = {(r["key"], r["backend"]): r for r in record["rows"]}
    assert len(rows) == 4 * 5
    assert rows[("1x2112x7168", "cublaslt")]["status"] == "unsupported"
    # The crash is recorded where it happened...
    crashed = rows[("128x2112x7168", "deepgemm")]
    assert crashed["status"] == "crash" and "SIGSEGV" in crashed["note"]
    # ... and the run went on: DeepGEMM's worker was restarted for the next case.
    assert rows[("4096x2112x7168", "deepgemm")]["status"] == "ok"
    assert summary.best_us(rows[("4096x2112x7168", "deepgemm")], "steady") is not None
    # Alternating rounds: every backend timed once per round, the order reversed on odd rounds.
    ok = rows[("16x2112x7168", "blockgemm")]["timings"]
    assert [(t["protocol"], t["round"], t["position"]) for t in ok] == [("burst", 0, 0), ("burst", 1, 4)]
    large = rows[("4096x2112x7168", "flashinfer")]["timings"]
    assert [(t["protocol"], t["round"], t["position"]) for t in large] == [
        ("burst", 0, 1),
        ("burst", 1, 3),
        ("steady", 0, 1),
        ("steady", 1, 3),
    ]
    assert all(t["nvml"]["sm_clock_mhz"]["mean"] == 1755.0 for t in large)
    # FlashInfer's probe: the row-major call killed the probe process at M = 16, M-contiguous was chosen.
    probes = {p["key"]: p for p in record["probes"]}
    assert probes["16x2112x7168"]["outcomes"]["row-major"]["status"] == "crash"
    assert probes["16x2112x7168"]["chosen"] == "m-contiguous"
    assert probes["128x2112x7168"]["outcomes"]["row-major"]["status"] == "wrong"
    assert probes["128x2112x7168"]["documented_layout_works"] is False
    # Summaries and the report.
    by = {(s["peer"], s["regime"], s["protocol"]): s for s in record["summaries"]}
    assert by[("flashinfer", "M <= 32", "burst")]["geomean"] == pytest.approx(1.1, rel=1e-3)
    assert by[("cublaslt", "M <= 32", "burst")]["count"] == 1
    text = open(os.path.join(str(tmp_path), "bench.md")).read()
    assert "| 128 | 2112 | 7168 |" in text and "crash" in text and "FlashInfer input-scale layout probe" in text
    assert "Fake H100" in text


def test_main_loop_times_out_a_hanging_peer_and_skips_grouped_without_the_api(monkeypatch, tmp_path):
    status, record = run_fake(
        monkeypatch,
        tmp_path,
        ["--shape", "64x576x7168", "--backends", "blockgemm,cublaslt", "--time-timeout-s", "2", "--rounds", "2"],
        {"FAKE_HANG_TIME": "cublaslt:64"},
    )
    assert status == 0
    row = [r for r in record["rows"] if r["backend"] == "cublaslt"][0]
    assert row["status"] == "timeout"
    assert [t["status"] for t in row["timings"]] == ["timeout", "skipped"]
    status, record = run_fake(
        monkeypatch,
        tmp_path,
        ["--suite", "grouped", "--backends", "blockgemm", "--grouped-layouts", "masked", "--protocols", "burst"],
    )
    assert status == 0
    assert {r["status"] for r in record["rows"]} == {"unavailable"}
    assert "issue 25" in record["rows"][0]["note"]


def test_main_loop_grouped_suite_when_the_api_exists(monkeypatch, tmp_path):
    status, record = run_fake(
        monkeypatch, tmp_path, ["--suite", "grouped", "--protocols", "burst", "--rounds", "2"], {"FAKE_GROUPED": "1"}
    )
    assert status == 0
    names = {r["backend"] for r in record["rows"] if r["status"] == "ok"}
    assert names == {
        "blockgemm/contig-index",
        "blockgemm/contig-offsets",
        "blockgemm/masked",
        "deepgemm/contig-index",
        "deepgemm/masked",
    }
    assert len(record["rows"]) == 18 * 3 + 18 * 2  # contiguous: 2 blockgemm forms + DeepGEMM; masked: 1 + 1
    steady = [t for r in record["rows"] for t in r["timings"] if t["protocol"] == "steady"]
    assert not steady  # --protocols burst
    text = open(os.path.join(str(tmp_path), "bench.md")).read()
    assert "Contiguous layout" in text and "Masked layout" in text
    assert "deepgemm/masked / blockgemm/masked: geomean 1.050" in text


def test_main_loop_deadline_records_skipped_cases(monkeypatch, tmp_path):
    status, record = run_fake(
        monkeypatch, tmp_path, ["--shape", "64x576x7168", "--shape", "128x576x7168", "--deadline-s", "0"]
    )
    assert status == 0 and not record["complete"]
    assert {r["status"] for r in record["rows"]} == {"skipped"}
    assert "INCOMPLETE" in open(os.path.join(str(tmp_path), "bench.md")).read()
