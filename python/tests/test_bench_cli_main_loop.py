"""Benchmark harness (blockgemm.bench), no torch, no GPU: every bench module imports without torch, the small
pure helpers (NVML summary, grouped layouts, seeds, roofline, warm-up split), the CLI's option handling and
the runner's plan, and the main loop end to end against bench_fake_worker.py (crashing, hanging and missing
peers, the grouped suite, the deadline).

    cd python && python3 -m pytest -q tests/test_bench_cli_main_loop.py
"""

import os
import sys

import pytest

import bench_test_util  # noqa: F401  (first: makes the blockgemm package importable)
from blockgemm.bench import records, rotation, shapes, summary
from blockgemm.bench.grouped_calls import aligned_starts, packed_offsets
from blockgemm.bench.nvml import summarize_samples
from blockgemm.bench.operands import mix_seed
from blockgemm.bench.plot import roofline_tflops
from blockgemm.bench.warmup import split


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
