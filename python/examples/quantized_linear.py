"""A bf16 nn.Linear replaced by blockgemm with an fp8 weight quantized once per 128x128 block.

    python python/examples/quantized_linear.py [--batch 64] [--iterations 200]

The layer is DeepSeek-V3's q_a/kv_a projection shape (7168 -> 2112). The input stays bf16: blockgemm
quantizes it per 1x128 group inside each call, so the layer's interface does not change. Prints the error
against the bf16 layer (calc_diff: 0 when equal) and the speedup, timed with CUDA events.
"""

import argparse

import torch

import blockgemm
from blockgemm.testing import per_block_cast_to_fp8


class Fp8Linear(torch.nn.Module):
    """y = x @ W^T with W stored as fp8 e4m3 plus one fp32 scale per 128x128 block."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        if linear.bias is not None:
            raise ValueError("Fp8Linear: bias is not supported")
        # Quantized once: the weight is static, so its cost is not part of a forward pass.
        weight, scale = per_block_cast_to_fp8(linear.weight.detach().to(torch.bfloat16))
        self.register_buffer("weight", weight)
        self.register_buffer("weight_scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # blockgemm takes a 2-D input: fold leading dimensions into rows.
        rows = x.reshape(-1, x.shape[-1])
        y = blockgemm.fp8_blockscale_gemm_sm90(rows, self.weight, weight_scale=self.weight_scale)
        return y.reshape(*x.shape[:-1], y.shape[-1])


def calc_diff(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double(), y.double()
    return (1 - 2 * (x * y).sum() / (x * x + y * y).sum()).item()


def time_ms(fn, iterations: int) -> float:
    for _ in range(10):  # warm-up: allocator, cuBLAS heuristics, lazy module loading
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(iterations):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iterations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 64, 512, 4096])
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()

    torch.manual_seed(0)
    device = torch.device("cuda")
    linear = torch.nn.Linear(7168, 2112, bias=False, device=device, dtype=torch.bfloat16)
    fp8_linear = Fp8Linear(linear)

    print(f"{torch.cuda.get_device_name()}: Linear({linear.in_features}, {linear.out_features}), "
          f"bf16 input, {args.iterations} iterations")
    print(f"{'batch':>6} {'calc_diff':>10} {'bf16 ms':>9} {'fp8 ms':>9} {'speedup':>8}")
    with torch.inference_mode():
        for batch in args.batch:
            x = torch.randn(batch, linear.in_features, device=device, dtype=torch.bfloat16)
            diff = calc_diff(fp8_linear(x), linear(x))
            bf16_ms = time_ms(lambda: linear(x), args.iterations)
            fp8_ms = time_ms(lambda: fp8_linear(x), args.iterations)
            print(f"{batch:>6} {diff:>10.2e} {bf16_ms:>9.4f} {fp8_ms:>9.4f} {bf16_ms / fp8_ms:>7.2f}x")


if __name__ == "__main__":
    main()
