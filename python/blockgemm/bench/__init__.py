"""blockgemm's Python benchmark: the public call as users make it, beside the peers, in one run.

    python -m blockgemm.bench --help

Times `blockgemm.fp8_blockscale_gemm_sm90` on torch tensors (operands from randn bf16 through
`blockgemm.testing`'s quantizers, every path, both weight-scale kinds, both input-scale layouts) and, when
importable, FlashInfer's `fp8_blockscale_gemm_sm90`, DeepGEMM's `fp8_gemm_nt`, cuBLASLt block scaling
(`torch._scaled_mm`) and cuBLAS bf16 (`torch.matmul`), plus the grouped (MoE) calls of blockgemm and
DeepGEMM. Each backend family runs in its own worker process, so a peer that kills its CUDA context is
recorded as a crash and the run goes on. Method: operands rotated past L2, CUDA-graph replays (median /
calls), a burst and a steady-state protocol, backends in alternating order over rounds, NVML clocks,
power and temperature beside every timing; every backend checked against the dequantized reference
before it is timed.

Modules, by concern (the pure ones import without torch; the harness's unit tests run in CI without it):
    shapes      suites and cases (pure)            rotation   operand-set counts and bytes (pure)
    backends    backend specs, support (pure)      protocol   schedule, alternation, budget (pure)
    probe       FlashInfer's layout decision (pure) summary   best times, ratios, geomeans (pure)
    records     the JSON record (pure)             report     markdown tables (pure)
    plot        PNG per suite (matplotlib, lazy)   nvml       clocks/power/temperature (pynvml, optional)
    runner      the main loop (no torch)           supervisor worker processes (no torch)
    worker      a family's process (torch)         operands, timing, dense_calls, grouped_calls (torch)
    warmup      peers' JIT warm-up before a run (torch, in child processes)
"""

__all__ = ["main"]


def main(argv=None) -> int:
    from .cli import main as _main

    return _main(argv)
