"""A stand-in for blockgemm.bench.worker (no torch, no GPU) for test_bench_cli_main_loop.py: it speaks the same
JSON-lines protocol and invents results, and it dies the way a peer can kill its process, so the tests can
drive the benchmark's main loop end to end on a CPU-only machine.

Scripted failures (environment variables):
  FAKE_CRASH_TIME=family:M   the worker of `family` kills itself (SIGSEGV) when asked to time a case with M
  FAKE_HANG_TIME=family:M    ... or stops answering
  FAKE_GROUPED=1             blockgemm reports the grouped API as present
Always: FlashInfer's row-major probe kills its process at M = 16 and is wrong elsewhere (as on the H100).
"""

import argparse
import json
import os
import signal
import sys
import time

FACTORS = {"blockgemm": 1.0, "flashinfer": 1.1, "deepgemm": 1.05, "cublaslt": 1.3, "cublas-bf16": 1.9}


def matches(variable, family, m):
    value = os.environ.get(variable, "")
    return value == f"{family}:{m}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--family", required=True)
    family = parser.parse_args().family
    case = None
    out = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        op = request["op"]
        response = {"status": "ok"}
        if op == "hello":
            response.update(
                available=True,
                family=family,
                pid=os.getpid(),
                module_version="9.9",
                device={"name": "Fake H100", "sm_count": 132},
                versions={"torch": "0.0", "cuda_runtime": "13.0"},
                nvml={"driver": "580.0"},
            )
            if family == "blockgemm":
                grouped = os.environ.get("FAKE_GROUPED") == "1"
                response["grouped"] = {
                    "grouped_gemm_contiguous": grouped,
                    "grouped_gemm_masked": grouped,
                    "contiguous_group_alignment": grouped,
                }
        elif op == "prepare":
            case = request["case"]
            response["results"] = {
                b["name"]: {
                    "status": "ok",
                    "note": "",
                    "prepare_s": 0.01,
                    "check": {"diff": 1.4e-6, "finite": True, "passed": True},
                }
                for b in request["backends"]
            }
        elif op == "time":
            m = case.get("m", 64)
            if matches("FAKE_CRASH_TIME", family, m):
                os.kill(os.getpid(), signal.SIGSEGV)
            if matches("FAKE_HANG_TIME", family, m):
                time.sleep(3600)
            flops = 2 * m * case["n"] * case["k"] if case["kind"] == "dense" else 1e12
            us = (5.0 + flops / 1e12 * 1e6 / 1000.0) * FACTORS[family] * (1.0 + 0.01 * request.get("warm_s", 0))
            response.update(
                us=us,
                replay_us=[us * 10] * request.get("replays", 7),
                calls_per_graph=10,
                eager_us=us,
                warm_s=request.get("warm_s", 0),
                warm_replays=0,
                nvml={"samples": 1, "sm_clock_mhz": {"mean": 1755.0, "min": 1755.0, "max": 1755.0}},
            )
        elif op == "probe":
            m = request["case"]["m"]
            if request["layout"] == "row-major":
                if m == 16:
                    os.kill(os.getpid(), signal.SIGABRT)
                response["outcome"] = {"status": "wrong", "diff": 0.99, "note": ""}
            else:
                response["outcome"] = {"status": "ok", "diff": 1.4e-6, "note": ""}
        elif op == "exit":
            out.write(json.dumps({"id": request.get("id"), "status": "ok"}) + "\n")
            out.flush()
            return
        response["id"] = request.get("id")
        out.write(json.dumps(response) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
