"""Warms the peers' just-in-time compilation before a benchmark run, so that no timing (and no check's time
limit) pays for it: `python -m blockgemm.bench.warmup [--suite ...] [--jobs N]` with the benchmark's suite
options.

FlashInfer builds its module with nvcc on first use (~85 s on the 16-core GPU machine, cached under
FLASHINFER_WORKSPACE_BASE), then compiles a kernel per shape (cached under TRTLLM_DG_CACHE_DIR); DeepGEMM
compiles a kernel per shape (cached under DG_JIT_CACHE_DIR; concurrent processes share it safely). The
main process (no torch) runs child processes: FlashInfer's module build and DeepGEMM's cases in parallel,
then FlashInfer's cases once its module exists. Each child calls every assigned case once on throwaway
operands and prints the seconds it took; a failure is printed and the case skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Dict, List

from .shapes import GROUP, align_up, case_key, ceil_div


def _fp8(shape, seed):
    import torch

    generator = torch.Generator(device="cuda")
    generator.manual_seed(seed)
    return torch.randn(shape, generator=generator, device="cuda").to(torch.float8_e4m3fn)


def _ones(shape):
    import torch

    return torch.ones(shape, dtype=torch.float32, device="cuda")


def warm_flashinfer(case: Dict, paths: List[str]) -> None:
    import torch
    from flashinfer.gemm import fp8_blockscale_gemm_sm90 as gemm

    m, n, k = case["m"], case["n"], case["k"]
    kg = ceil_div(k, GROUP)
    out = torch.empty((m, n), dtype=torch.bfloat16, device="cuda")
    w8, ws = _fp8((n, k), 2), _ones((ceil_div(n, GROUP), kg))
    if "fp8" in paths:
        scale = torch.ones((kg, align_up(m, 4)), dtype=torch.float32, device="cuda")[:, :m]
        gemm(_fp8((m, k), 1), w8, scale, ws, out=out)
    x = torch.randn((m, k), device="cuda", dtype=torch.bfloat16)
    if "bf16-fp8" in paths:
        gemm(x, w8, None, ws, out=out)
    if "bf16-bf16" in paths:
        gemm(x, torch.randn((n, k), device="cuda", dtype=torch.bfloat16), None, None, out=out)


def warm_deepgemm(case: Dict) -> None:
    import torch
    import deep_gemm as dg

    from .grouped_calls import aligned_starts

    transform = getattr(dg, "get_mn_major_tma_aligned_tensor", None) or dg.utils.get_mn_major_tma_aligned_tensor
    n, k = case["n"], case["k"]
    kg = ceil_div(k, GROUP)
    if case["kind"] == "dense":
        m = case["m"]
        out = torch.empty((m, n), dtype=torch.bfloat16, device="cuda")
        dg.fp8_gemm_nt(
            (_fp8((m, k), 1), transform(_ones((m, kg)))), (_fp8((n, k), 2), _ones((ceil_div(n, GROUP), kg))), out
        )
        return
    g = case["g"]
    weights = (_fp8((g, n, k), 2), _ones((g, ceil_div(n, GROUP), kg)))
    if case["layout"] == "masked":
        m_max = case["m_max"]
        out = torch.empty((g, m_max, n), dtype=torch.bfloat16, device="cuda")
        masked_m = torch.tensor(case["masked_m"], dtype=torch.int32, device="cuda")
        dg.m_grouped_fp8_gemm_nt_masked(
            (_fp8((g, m_max, k), 1), transform(_ones((g, m_max, kg)))), weights, out, masked_m, case["expected_m"]
        )
        return
    starts, total = aligned_starts(case["sizes"], int(dg.get_mk_alignment_for_contiguous_layout()))
    index = torch.full((total,), -1, dtype=torch.int32, device="cuda")
    for group, (start, size) in enumerate(zip(starts, case["sizes"])):
        index[start : start + size] = group
    out = torch.empty((total, n), dtype=torch.bfloat16, device="cuda")
    dg.m_grouped_fp8_gemm_nt_contiguous((_fp8((total, k), 1), transform(_ones((total, kg)))), weights, out, index)


def child(family: str, cases: List[Dict], paths: List[str]) -> int:
    import torch

    failures = 0
    for case in cases:
        started = time.perf_counter()
        try:
            if family == "flashinfer":
                warm_flashinfer(case, paths)
            else:
                warm_deepgemm(case)
            torch.cuda.synchronize()
            print(f"warm {family} {case_key(case)}: {time.perf_counter() - started:.1f} s", flush=True)
        except Exception as error:  # noqa: BLE001
            failures += 1
            print(
                f"warm {family} {case_key(case)}: FAILED after {time.perf_counter() - started:.1f} s: "
                f"{type(error).__name__}: {str(error)[:300]}",
                flush=True,
            )
            try:
                torch.cuda.synchronize()
            except Exception:  # noqa: BLE001 (the context is gone: nothing more this process can do)
                return 2
        torch.cuda.empty_cache()
    return 1 if failures else 0


def split(items: List[Dict], parts: int) -> List[List[Dict]]:
    """Round-robin over `parts` lists, largest first, so each child gets a similar share. Pure."""
    from .rotation import case_bytes

    ordered = sorted(items, key=case_bytes, reverse=True)
    out: List[List[Dict]] = [[] for _ in range(max(1, min(parts, len(ordered))))]
    for index, item in enumerate(ordered):
        out[index % len(out)].append(item)
    return [part for part in out if part]


def spawn(family: str, cases: List[Dict], paths: List[str], workdir: str, tag: str) -> subprocess.Popen:
    path = os.path.join(workdir, f"{family}_{tag}.json")
    with open(path, "w") as handle:
        json.dump({"cases": cases, "paths": paths}, handle)
    return subprocess.Popen([sys.executable, "-m", "blockgemm.bench.warmup", "--child", family, "--cases-file", path])


def importable(module: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True, text=True)
    if probe.returncode != 0:
        print(f"warmup: {module} not importable, skipped: {probe.stderr.strip().splitlines()[-1:]}")
    return probe.returncode == 0


def main(argv=None) -> int:
    from . import runner
    from .cli import build_parser, options_from

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--child" in argv:
        parser = argparse.ArgumentParser()
        parser.add_argument("--child", required=True)
        parser.add_argument("--cases-file", required=True)
        args = parser.parse_args(argv)
        with open(args.cases_file) as handle:
            spec = json.load(handle)
        return child(args.child, spec["cases"], spec["paths"])

    parser = build_parser()
    parser.add_argument(
        "--jobs",
        type=int,
        default=max(1, (os.cpu_count() or 8) - 2),
        help="child processes at once (nvcc is single-threaded per kernel)",
    )
    args = parser.parse_args(argv)
    options = options_from(args)
    planned = runner.plan_cases(options)
    dense = [case for _, case in planned if case["kind"] == "dense"]
    fi_cases = [c for c in dense if c["n"] % 64 == 0] if "flashinfer" in options["backends"] else []
    dg_cases = [case for _, case in planned] if "deepgemm" in options["backends"] else []
    if fi_cases and not importable("flashinfer"):
        fi_cases = []
    if dg_cases and not importable("deep_gemm"):
        dg_cases = []
    started = time.perf_counter()
    failed = 0
    with tempfile.TemporaryDirectory() as workdir:
        running = []
        module_child = None
        if fi_cases:  # builds the module (one process), then the rest in parallel below
            module_child = spawn("flashinfer", fi_cases[:1], options["paths"], workdir, "module")
        dg_parts = split(dg_cases, max(1, args.jobs - (1 if fi_cases else 0)))
        running += [spawn("deepgemm", part, [], workdir, f"part{i}") for i, part in enumerate(dg_parts)]
        if module_child is not None:
            failed |= module_child.wait()
            print(f"warmup: FlashInfer module ready after {time.perf_counter() - started:.0f} s", flush=True)
            fi_parts = split(fi_cases[1:], max(1, args.jobs // 2))
            running += [
                spawn("flashinfer", part, options["paths"], workdir, f"part{i}") for i, part in enumerate(fi_parts)
            ]
        for process in running:
            failed |= process.wait()
    print(
        f"warmup: {len(fi_cases)} FlashInfer and {len(dg_cases)} DeepGEMM cases in "
        f"{time.perf_counter() - started:.0f} s{' (some failed: see above)' if failed else ''}",
        flush=True,
    )
    return 0  # a warm-up failure is not fatal: the run records what fails


if __name__ == "__main__":
    sys.exit(main())
