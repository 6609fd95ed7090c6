"""Command line of `python -m blockgemm.bench`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional

from . import backends as bk
from .protocol import (
    DEFAULT_GRAPH_US,
    DEFAULT_MAX_CALLS,
    DEFAULT_REPLAYS,
    DEFAULT_ROUNDS,
    DEFAULT_BURST_IDLE_S,
    DEFAULT_STEADY_S,
    PROTOCOLS,
    STEADY_MIN_M,
)
from .rotation import MIB, ROTATION_TARGET_BYTES
from .shapes import SUITES, case_key, parse_int_list, parse_shape

EPILOG = """
examples:
  python -m blockgemm.bench                                   # DeepSeek-V3 suite, all five backends
  python -m blockgemm.bench --suite deepseek,grouped --out-dir results
  python -m blockgemm.bench --shape 4096x7168x16384 --shape 2048x4096x7168 --protocols steady
  python -m blockgemm.bench --paths fp8,bf16-fp8,bf16-bf16 --weight-scales block,row --input-scales row,mcontig
  python -m blockgemm.bench --estimate-only --suite other     # the time budget, nothing run
  python -m blockgemm.bench --replot results/bench.json       # tables and plots again from a record

exit status: 0 every blockgemm check passed, 1 a blockgemm check failed (or its worker crashed), 2 usage,
3 no usable worker (no GPU, or blockgemm, which every worker needs for its quantizers, not importable).
"""


def _list(allowed):
    def parse(text: str) -> List[str]:
        try:
            return bk.parse_list(text, allowed, "list")
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error))

    return parse


def _protocols(text: str) -> List[str]:
    """burst, steady, a comma list of them, or both (bench_main.cpp's spelling)."""
    return list(PROTOCOLS) if text.strip() == "both" else _list(PROTOCOLS)(text)


def _shape(text: str) -> Dict:
    try:
        return parse_shape(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))


def _ints(text: str) -> List[int]:
    try:
        return parse_int_list(text, "M list")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m blockgemm.bench",
        description="Times blockgemm.fp8_blockscale_gemm_sm90 (and the grouped calls) as users call them, beside "
        "FlashInfer, DeepGEMM, cuBLASLt block scaling and cuBLAS bf16, each in its own process.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_argument_group("what to run")
    what.add_argument(
        "--suite",
        type=_list(SUITES),
        default=None,
        help="comma list of deepseek, other, grouped (default deepseek; 'shapes' with --shape)",
    )
    what.add_argument(
        "--shape",
        type=_shape,
        action="append",
        default=[],
        metavar="MxNxK",
        help="a free shape (repeatable): the 'shapes' suite",
    )
    what.add_argument("--m-list", type=_ints, default=None, help="M values for the deepseek/other suites")
    what.add_argument("--grouped-layouts", type=_list(("contiguous", "masked")), default=["contiguous", "masked"])
    what.add_argument(
        "--backends",
        type=_list(bk.FAMILIES),
        default=list(bk.FAMILIES),
        help="comma list of " + ", ".join(bk.FAMILIES) + " (default all; peers run when importable)",
    )
    what.add_argument(
        "--paths",
        type=_list(bk.PATHS),
        default=["fp8"],
        help="operand dtypes: fp8 (always), bf16-fp8, bf16-bf16 (blockgemm and FlashInfer)",
    )
    what.add_argument(
        "--weight-scales",
        type=_list(bk.WEIGHT_SCALES),
        default=["block"],
        help="blockgemm's weight scales: block (ceil(N/128), K/128), row (N, K/128)",
    )
    what.add_argument(
        "--input-scales",
        type=_list(bk.INPUT_SCALES),
        default=["row"],
        help="blockgemm's input-scale layouts: row (as per_token_cast_to_fp8 returns it by default), mcontig "
        "(as it returns it with m_contiguous_scales=True)",
    )
    what.add_argument(
        "--no-probe",
        dest="probe",
        action="store_false",
        help="skip FlashInfer's input-scale layout probe (then time it M-contiguous)",
    )
    how = parser.add_argument_group("how to time")
    how.add_argument(
        "--protocols",
        "--protocol",
        type=_protocols,
        default=list(PROTOCOLS),
        help="burst, steady (M >= --steady-min-m only), a comma list or both (default both)",
    )
    how.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="alternating rounds per protocol (>= 2)")
    how.add_argument(
        "--steady-s",
        "--warm-seconds",
        type=float,
        default=DEFAULT_STEADY_S,
        help="seconds of replays before each steady-state timing (default 1.0)",
    )
    how.add_argument("--steady-min-m", type=int, default=STEADY_MIN_M)
    how.add_argument(
        "--burst-idle-s",
        type=float,
        default=DEFAULT_BURST_IDLE_S,
        help="seconds the card idles before each burst timing at M >= --steady-min-m (default 0.5)",
    )
    how.add_argument("--replays", type=int, default=DEFAULT_REPLAYS)
    how.add_argument("--graph-us", type=float, default=DEFAULT_GRAPH_US, help="GPU work per graph")
    how.add_argument("--max-calls", type=int, default=DEFAULT_MAX_CALLS, help="calls per graph at most")
    how.add_argument(
        "--rotation-mb",
        type=int,
        default=ROTATION_TARGET_BYTES // MIB,
        help="operand bytes rotated over per case (>= 5x L2)",
    )
    how.add_argument("--seed", type=int, default=20261207)
    budget = parser.add_argument_group("time budget")
    budget.add_argument(
        "--case-budget-s",
        type=float,
        default=60.0,
        help="a case's timings stop when it has run this long (recorded as skipped)",
    )
    budget.add_argument(
        "--deadline-s",
        type=float,
        default=560.0,
        help="no new timing starts after this much wall time; results so far are written",
    )
    budget.add_argument("--estimate-only", action="store_true", help="print the cases and the estimate, run nothing")
    budget.add_argument("--start-timeout-s", type=float, default=300.0)
    budget.add_argument("--prepare-timeout-s", type=float, default=300.0)
    budget.add_argument("--time-timeout-s", type=float, default=120.0)
    out = parser.add_argument_group("output")
    out.add_argument("--out-dir", default="bench-results")
    out.add_argument("--name", default="bench", help="file name stem: NAME.json, NAME.md, NAME_<suite>.png")
    out.add_argument("--no-plot", dest="plot", action="store_false")
    out.add_argument("--peak-tflops", type=float, default=1979.0, help="roofline's dense fp8 peak (H100: 1979)")
    out.add_argument("--hbm-tbps", type=float, default=3.35, help="roofline's HBM bandwidth (H100: 3.35)")
    out.add_argument("--replot", metavar="JSON", help="render the markdown and plots of an existing record")
    return parser


def options_from(args: argparse.Namespace) -> Dict:
    suites = list(args.suite) if args.suite else ([] if args.shape else ["deepseek"])
    if args.shape and "shapes" not in suites:
        suites.append("shapes")
    if "shapes" in suites and not args.shape:
        raise ValueError("--suite shapes needs at least one --shape")
    if args.rounds < 1 or args.replays < 1 or args.steady_s < 0 or args.graph_us <= 0 or args.max_calls < 1:
        raise ValueError("rounds, replays and max-calls must be >= 1, steady-s >= 0, graph-us > 0")
    if args.burst_idle_s < 0:
        raise ValueError(f"--burst-idle-s must be >= 0, got {args.burst_idle_s}")
    base = os.path.join(args.out_dir, args.name)
    return {
        "suites": suites,
        "shapes": args.shape,
        "m_list": args.m_list,
        "grouped_layouts": args.grouped_layouts,
        "backends": args.backends,
        "paths": args.paths,
        "weight_scales": args.weight_scales,
        "input_scales": args.input_scales,
        "probe": args.probe,
        "protocols": args.protocols,
        "rounds": args.rounds,
        "steady_s": args.steady_s,
        "steady_min_m": args.steady_min_m,
        "burst_idle_s": args.burst_idle_s,
        "replays": args.replays,
        "graph_us": args.graph_us,
        "max_calls": args.max_calls,
        "rotation_mb": args.rotation_mb,
        "rotation_bytes": args.rotation_mb * MIB,
        "seed": args.seed,
        "case_budget_s": args.case_budget_s,
        "deadline_s": args.deadline_s,
        "start_timeout_s": args.start_timeout_s,
        "prepare_timeout_s": args.prepare_timeout_s,
        "time_timeout_s": args.time_timeout_s,
        "out_dir": args.out_dir,
        "json_path": base + ".json",
        "markdown_path": base + ".md",
        "plot_prefix": base,
        "plot": args.plot,
        "peak_tflops": args.peak_tflops,
        "hbm_tbps": args.hbm_tbps,
    }


def main(argv: Optional[List[str]] = None) -> int:
    from . import runner
    from .records import load_json
    from .summary import reference_checks_passed

    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = options_from(args)
    except ValueError as error:
        parser.error(str(error))
    os.makedirs(options["out_dir"], exist_ok=True)
    if args.replot:
        record = load_json(args.replot)
        runner.finish(record, dict(options, suites=record["options"]["suites"]))
        return 0
    if options["rounds"] < 2:
        print("warning: fewer than 2 rounds: backend order is not alternated", file=sys.stderr)
    if options["steady_s"] < 1.0 and "steady" in options["protocols"]:
        print("warning: --steady-s below 1 s may not reach the steady clock", file=sys.stderr)

    planned = runner.plan_cases(options)
    estimate = runner.estimate(planned, options)
    print(
        f"blockgemm.bench: suites {', '.join(options['suites'])}; backends {', '.join(options['backends'])}; "
        f"paths {', '.join(options['paths'])}; protocols {', '.join(options['protocols'])}; "
        f"{options['rounds']} rounds; steady {options['steady_s']} s from M >= {options['steady_min_m']}"
    )
    print(
        estimate.describe() + f" (deadline {options['deadline_s']:.0f} s, per-case budget "
        f"{options['case_budget_s']:.0f} s)",
        flush=True,
    )
    if estimate.total_s > options["deadline_s"]:
        print(
            "warning: the estimate exceeds the deadline: cases past it will be recorded as skipped; fewer "
            "--rounds, --protocols burst, a shorter --m-list or one suite per run fit",
            file=sys.stderr,
        )
    if args.estimate_only:
        for suite, case in planned:
            print(f"  {suite:8s} {case_key(case)}")
        return 0

    run = runner.Runner(options, argv)
    run.record["estimate"] = {"total_s": estimate.total_s, "cases": estimate.cases, "timings": estimate.timings}
    record = run.run(planned)
    if not any(ok for ok, _ in run.available.values()):
        runner.finish(record, options)
        reasons = "; ".join(f"{family}: {why}" for family, (_, why) in run.available.items())
        print(f"blockgemm.bench: no worker was usable ({reasons})", file=sys.stderr)
        return 3
    runner.finish(record, options)
    print(f"blockgemm.bench: wall time {record['elapsed_s']:.0f} s (estimated {estimate.total_s:.0f} s)")
    return 0 if reference_checks_passed(record["rows"]) else 1
