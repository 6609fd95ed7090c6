"""Benchmark harness (blockgemm.bench), no torch, no GPU: the summaries (best round, round spread, ratios,
geomeans per M regime, grouped pairs, the record's summaries, the reference checks).

    cd python && python3 -m pytest -q tests/test_bench_summaries.py
"""

import pytest

from bench_test_util import make_row, sample_rows  # first: makes the blockgemm package importable
from blockgemm.bench import backends as bk
from blockgemm.bench import rotation, shapes, summary


# ------------------------------------------------------------------------------------------ summaries


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
