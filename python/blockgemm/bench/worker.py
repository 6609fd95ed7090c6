"""A backend family's worker process: `python -m blockgemm.bench.worker --family NAME`.

Speaks JSON lines: one request per line on stdin, one response per line on the original stdout (which the
worker keeps for itself: fd 1 is pointed at stderr, so whatever the libraries print goes to the log and
cannot corrupt the protocol). Requests:
  hello                      -> availability, versions, device
  prepare {case, backends, sets, seed, options}
                             -> per backend: built, checked (output poisoned with NaN, one call, calc_diff)
  time {backend, protocol, warm_s, replays, target_graph_us, max_calls}
                             -> the timing (GraphTimer) with NVML samples
  probe {case, layout, seed} -> FlashInfer with one input-scale layout: ok / wrong / error
  release                    -> drop the case's operands and graphs
  exit
When a CUDA error leaves the context unusable the worker answers with status 'crash' and exits: the
supervisor records it and starts a fresh worker for the next case.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from typing import Dict, Optional

FAMILY_MODULES = {
    "blockgemm": "blockgemm",
    "flashinfer": "flashinfer",
    "deepgemm": "deep_gemm",
    "cublaslt": None,
    "cublas-bf16": None,
}


class ContextDead(RuntimeError):
    pass


def _context_alive() -> bool:
    import torch

    try:
        torch.cuda.synchronize()
        return True
    except Exception:  # noqa: BLE001
        return False


def _versions() -> Dict:
    import torch

    info = {"torch": torch.__version__, "cuda_runtime": torch.version.cuda}
    try:
        import ctypes

        for name in ("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"):
            try:
                info["cublaslt"] = int(ctypes.CDLL(name).cublasLtGetVersion())
                break
            except OSError:
                continue
    except Exception:  # noqa: BLE001
        pass
    return info


class Worker:
    def __init__(self, family: str):
        self.family = family
        self.modules: Dict = {}
        self.available = False
        self.reason = ""
        self.sampler = None
        self.case_key: Optional[str] = None
        self.bank = None
        self.data = None
        self.prepared: Dict[str, Dict] = {}

    # ----------------------------------------------------------------------------- setup
    def load(self) -> None:
        import torch

        if not torch.cuda.is_available():
            self.reason = "CUDA is not available"
            return
        try:
            import blockgemm
            import blockgemm.testing  # noqa: F401  (the quantizers every worker uses)

            self.modules["blockgemm"] = blockgemm
        except Exception as error:  # noqa: BLE001
            self.reason = f"blockgemm (needed for the quantizers) cannot be imported: {error}"
            return
        try:
            if self.family == "flashinfer":
                from flashinfer.gemm import fp8_blockscale_gemm_sm90

                self.modules["flashinfer"] = fp8_blockscale_gemm_sm90
            elif self.family == "deepgemm":
                import deep_gemm

                self.modules["deepgemm"] = deep_gemm
            elif self.family == "cublaslt" and not hasattr(torch, "_scaled_mm"):
                self.reason = "torch._scaled_mm is missing"
                return
        except Exception as error:  # noqa: BLE001
            self.reason = f"{FAMILY_MODULES[self.family]} cannot be imported: {type(error).__name__}: {error}"
            return
        from .nvml import Sampler

        properties = torch.cuda.get_device_properties(0)
        bus = None
        if hasattr(properties, "pci_bus_id"):
            domain = getattr(properties, "pci_domain_id", 0)
            device = getattr(properties, "pci_device_id", 0)
            bus = f"{domain:08x}:{properties.pci_bus_id:02x}:{device:02x}.0"
        self.sampler = Sampler(bus)
        self.available = True

    def hello(self, request: Dict) -> Dict:
        import torch

        response = {
            "status": "ok",
            "family": self.family,
            "available": self.available,
            "reason": self.reason,
            "pid": os.getpid(),
        }
        if torch.cuda.is_available():
            properties = torch.cuda.get_device_properties(0)
            response["device"] = {
                "name": properties.name,
                "sm_count": properties.multi_processor_count,
                "compute_capability": f"{properties.major}.{properties.minor}",
                "memory_bytes": properties.total_memory,
                "l2_bytes": getattr(properties, "L2_cache_size", None),
            }
            response["versions"] = _versions()
            if self.sampler is not None:
                response["nvml"] = self.sampler.static_info()
        version = None
        if self.family == "flashinfer" and self.available:
            import flashinfer

            version = getattr(flashinfer, "__version__", "?")
        elif self.family == "deepgemm" and self.available:
            version = getattr(self.modules["deepgemm"], "__version__", "?")
        elif self.family == "blockgemm" and self.available:
            version = getattr(self.modules["blockgemm"], "__version__", "?")
        response["module_version"] = version
        if self.family == "blockgemm" and self.available:
            bg = self.modules["blockgemm"]
            response["grouped"] = {
                name: hasattr(bg, name)
                for name in ("grouped_gemm_contiguous", "grouped_gemm_masked", "contiguous_group_alignment")
            }
        return response

    # ----------------------------------------------------------------------------- cases
    def release(self, request: Optional[Dict] = None) -> Dict:
        import torch

        for entry in self.prepared.values():
            if entry.get("timer") is not None:
                entry["timer"].release()
        self.prepared.clear()
        if self.bank is not None:
            self.bank.clear()
        self.bank = self.data = None
        self.case_key = None
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        return {"status": "ok"}

    def prepare(self, request: Dict) -> Dict:
        import torch

        from . import dense_calls, grouped_calls
        from .operands import Bank, DenseData, check_dense
        from .shapes import case_key
        from .timing import GraphTimer

        self.release()
        case = request["case"]
        bank = Bank(int(request["sets"]))
        self.bank, self.case_key = bank, case_key(case)
        seed = int(request.get("seed", 0))
        self.data = (
            DenseData(case, seed, bank) if case["kind"] == "dense" else grouped_calls.GroupedData(case, seed, bank)
        )
        results = {}
        for backend in request["backends"]:
            started = time.perf_counter()
            entry: Dict = {"status": "error", "note": "", "check": None}
            try:
                if case["kind"] == "dense":
                    enqueue, outs, reference, note = dense_calls.build(
                        backend, self.data, self.modules, request.get("options", {})
                    )
                    check = lambda out, ref=reference: check_dense(out, ref)  # noqa: E731
                else:
                    enqueue, outs, check, note = grouped_calls.build(backend, self.data, self.modules)
                outs[0].fill_(float("nan"))
                enqueue(0)
                torch.cuda.synchronize()
                entry["check"] = check(outs[0])
                entry["note"] = note
                entry["status"] = "ok" if entry["check"]["passed"] else "check_failed"
                if entry["status"] == "ok":
                    entry["timer"] = GraphTimer(
                        enqueue,
                        bank.num_sets,
                        float(request.get("target_graph_us", 3000.0)),
                        int(request.get("max_calls", 2000)),
                    )
            except Exception as error:  # noqa: BLE001
                if not _context_alive():
                    raise ContextDead(f"{backend['name']}: {type(error).__name__}: {error}") from error
                entry["note"] = f"{type(error).__name__}: {error}".strip()[:800]
                print(
                    f"[worker {self.family}] {backend['name']} {self.case_key}:\n{traceback.format_exc()}",
                    file=sys.stderr,
                )
            entry["prepare_s"] = time.perf_counter() - started
            self.prepared[backend["name"]] = entry
            results[backend["name"]] = {k: v for k, v in entry.items() if k != "timer"}
        if hasattr(self.data, "release"):
            self.data.release()  # the fp32 references: not needed for timing
        torch.cuda.empty_cache()
        return {"status": "ok", "results": results}

    def time(self, request: Dict) -> Dict:
        name = request["backend"]
        entry = self.prepared.get(name)
        if entry is None or entry.get("timer") is None:
            return {"status": "error", "note": f"{name} was not prepared (or failed its check)"}
        try:
            result = entry["timer"].time(
                int(request.get("replays", 7)), float(request.get("warm_s", 0.0)), self.sampler
            )
        except Exception as error:  # noqa: BLE001
            if not _context_alive():
                raise ContextDead(f"{name}: {type(error).__name__}: {error}") from error
            entry["timer"] = None
            print(f"[worker {self.family}] timing {name} {self.case_key}:\n{traceback.format_exc()}", file=sys.stderr)
            return {"status": "error", "note": f"{type(error).__name__}: {error}"[:800]}
        return result

    def probe(self, request: Dict) -> Dict:
        """FlashInfer FP8 x FP8 with one input-scale layout, on one set of the case's operands."""
        import torch

        from .operands import Bank, DenseData, check_dense, mcontig_buffer
        from .probe import M_CONTIGUOUS, ROW_MAJOR, classify

        self.release()
        case, layout = request["case"], request["layout"]
        if layout not in (ROW_MAJOR, M_CONTIGUOUS):
            return {"status": "error", "note": f"unknown layout {layout}"}
        data = DenseData(case, int(request.get("seed", 0)), Bank(1))
        x8, xs = data.input_fp8()
        w8, ws = data.weight_fp8("block")
        # row-major: the documented (M, K/128); m-contiguous: the (K/128, M) view its own test passes.
        scale = xs if layout == ROW_MAJOR else mcontig_buffer(xs)[:, : case["m"]]
        out = torch.full((case["m"], case["n"]), float("nan"), dtype=torch.bfloat16, device=x8.device)
        try:
            self.modules["flashinfer"](x8, w8, scale, ws, out=out)
            torch.cuda.synchronize()
        except Exception as error:  # noqa: BLE001
            if not _context_alive():
                raise ContextDead(f"probe {layout}: {type(error).__name__}: {error}") from error
            return {
                "status": "ok",
                "outcome": {"status": "error", "diff": None, "note": f"{type(error).__name__}: {error}"[:400]},
            }
        check = check_dense(out, data.reference("block"))
        return {
            "status": "ok",
            "outcome": {"status": classify(check["diff"], check["finite"]), "diff": check["diff"], "note": ""},
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", required=True, choices=sorted(FAMILY_MODULES))
    args = parser.parse_args(argv)

    # The protocol keeps the real stdout; fd 1 (print, C++ libraries) goes to stderr from here on.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def answer(response: Dict) -> None:
        from .records import to_jsonable

        protocol.write(json.dumps(to_jsonable(response), allow_nan=False) + "\n")
        protocol.flush()

    worker = Worker(args.family)
    try:
        worker.load()
    except Exception as error:  # noqa: BLE001
        worker.reason = f"{type(error).__name__}: {error}"
    handlers = {
        "hello": worker.hello,
        "prepare": worker.prepare,
        "time": worker.time,
        "probe": worker.probe,
        "release": worker.release,
    }
    for line in sys.stdin:
        if not line.strip():
            continue
        request = json.loads(line)
        op = request.get("op")
        if op == "exit":
            answer({"id": request.get("id"), "status": "ok"})
            return 0
        try:
            if op not in handlers:
                raise ValueError(f"unknown op {op!r}")
            if op not in ("hello", "release") and not worker.available:
                response = {"status": "unavailable", "note": worker.reason}
            else:
                response = handlers[op](request)
        except ContextDead as error:
            answer({"id": request.get("id"), "status": "crash", "note": f"CUDA context unusable: {error}"[:800]})
            return 3
        except Exception as error:  # noqa: BLE001
            print(traceback.format_exc(), file=sys.stderr)
            response = {"status": "error", "note": f"{type(error).__name__}: {error}"[:800]}
        response["id"] = request.get("id")
        answer(response)
    return 0


if __name__ == "__main__":
    sys.exit(main())
