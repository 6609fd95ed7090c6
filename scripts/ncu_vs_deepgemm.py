"""The workload of scripts/ncu_vs_deepgemm.sh: one M x N x K through the public call and through DeepGEMM's
fp8_gemm_nt, on the same operands (made by our quantizers), each GEMM launched twice so that ncu can skip the
first pair; prints calc_diff between the two outputs. BLOCKGEMM_FORCE_TILE picks our tile as in the benchmark.
Needs DeepGEMM importable (scripts/device_bench.sh --setup-only builds it into .peers-work/); without it, only
our kernel runs.
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
