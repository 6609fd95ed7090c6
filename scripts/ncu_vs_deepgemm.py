"""Nsight Compute beside DeepGEMM: one M x N x K through the public call and through DeepGEMM's fp8_gemm_nt,
the same operands (made by our quantizers), each GEMM launched twice, so that `ncu -k regex:fp8_gemm` sees
both kernels on the same data. Meant to run under ncu on the GPU machine after `scripts/device_bench.sh
--setup-only` (which builds DeepGEMM into .peers-work/ and sets nothing globally: pass its PYTHONPATH), e.g.

    PYTHONPATH=.peers-work/site:.peers-work/DeepGEMM ncu --clock-control base -k regex:fp8_gemm \\
        --metrics ... python3 scripts/ncu_vs_deepgemm.py 4096 4096 7168

With --clock-control base both kernels run at the same locked clock, so their cycle counts compare the
code paths (issue 23: is the K block slower in cycles, or only in clock under the power cap?).
BLOCKGEMM_FORCE_TILE picks our tile as in the benchmark.
"""
import sys

import torch

import blockgemm
from blockgemm.testing import per_block_cast_to_fp8, per_token_cast_to_fp8


def main() -> None:
    m, n, k = (int(v) for v in sys.argv[1:4])
    torch.manual_seed(0)
    x8, x_scale = per_token_cast_to_fp8(torch.randn(m, k, device="cuda", dtype=torch.bfloat16))
    w8, w_scale = per_block_cast_to_fp8(torch.randn(n, k, device="cuda", dtype=torch.bfloat16))
    ours = torch.empty(m, n, device="cuda", dtype=torch.bfloat16)
    theirs = torch.empty_like(ours)
    try:
        import deep_gemm as dg
    except ImportError as error:  # the profile of ours alone is still worth having
        print(f"deep_gemm not importable ({error}): blockgemm only")
        dg = None
    if dg is not None:
        transform = getattr(dg, "get_mn_major_tma_aligned_tensor", None) or dg.utils.get_mn_major_tma_aligned_tensor
        dg_scale = transform(x_scale)
    for _ in range(2):
        blockgemm.fp8_blockscale_gemm_sm90(x8, w8, x_scale, w_scale, out=ours)
        if dg is not None:
            dg.fp8_gemm_nt((x8, dg_scale), (w8, w_scale), theirs)
    torch.cuda.synchronize()
    if dg is not None:
        a, b = ours.double(), theirs.double()
        diff = 1 - 2 * (a * b).sum() / (a * a + b * b).sum()
        print(f"{m}x{n}x{k}: calc_diff(blockgemm, DeepGEMM) = {diff.item():.2e}")


if __name__ == "__main__":
    main()
