"""Benchmark harness (blockgemm.bench), no torch, no GPU: the JSON record (round trip, strict JSON, git
info), the compare tool over two records, and the markdown report.

    cd python && python3 -m pytest -q tests/test_bench_records_report.py
"""

import json
import os
import shutil
import subprocess

import pytest

from bench_test_util import make_row, sample_rows  # first: makes the blockgemm package importable
from blockgemm.bench import probe as pr
from blockgemm.bench import compare, records, report, shapes, summary


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
