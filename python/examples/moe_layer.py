"""A mixture-of-experts layer whose experts run as blockgemm grouped FP8 GEMMs.

    python python/examples/moe_layer.py [--tokens 512] [--hidden 7168] [--intermediate 2048] [--experts 32]

Each expert is a SwiGLU MLP: ``down(silu(gate(x)) * up(x))`` with gate and up fused into one (2I, H) weight,
stored as fp8 with one fp32 scale per 128x128 block (quantized once). Tokens are routed to their top-k
experts, and the experts run in two ways, neither of which synchronises with the host:

* prefill, contiguous layout: the token copies are sorted by expert, ``offsets`` (G + 1) mark each expert's
  rows, and :func:`blockgemm.grouped_gemm_contiguous` runs all experts in one launch per projection;
* decode, masked layout: each expert gets a fixed (M_max, H) slot buffer and a device-resident count
  ``masked_m``; :func:`blockgemm.grouped_gemm_masked` runs them, captured once into a CUDA graph that is
  replayed with new routing.

The activations stay bf16: blockgemm quantizes them per 1x128 group inside. Prints each path's error against
a float32 reference on the dequantized weights (calc_diff: 0 when equal).
"""

import argparse

import torch
import torch.nn.functional as F

import blockgemm
from blockgemm.testing import per_block_cast_to_fp8


def calc_diff(x: torch.Tensor, y: torch.Tensor) -> float:
    x, y = x.double(), y.double()
    return (1 - 2 * (x * y).sum() / (x * x + y * y).sum()).item()


def quantize_experts(weights: torch.Tensor):
    """(G, N, K) bf16 -> fp8 (G, N, K), fp32 (G, ceil(N/128), K/128) block scales, and the dequantized values."""
    qs, ss = zip(*(per_block_cast_to_fp8(w) for w in weights))
    q, s = torch.stack(qs), torch.stack(ss)
    scale = s.repeat_interleave(128, dim=1)[:, : q.shape[1]].repeat_interleave(128, dim=2)[:, :, : q.shape[2]]
    return q, s, q.float() * scale


class MoE(torch.nn.Module):
    def __init__(self, hidden: int, intermediate: int, experts: int, top_k: int, device: torch.device):
        super().__init__()
        self.top_k = top_k
        self.experts = experts
        g = torch.Generator(device=device).manual_seed(0)
        self.router = torch.randn(experts, hidden, generator=g, device=device) / hidden**0.5
        gate_up = torch.randn(experts, 2 * intermediate, hidden, generator=g, device=device) / hidden**0.5
        down = torch.randn(experts, hidden, intermediate, generator=g, device=device) / intermediate**0.5
        self.w13, self.s13, self.w13_ref = quantize_experts(gate_up.to(torch.bfloat16))
        self.w2, self.s2, self.w2_ref = quantize_experts(down.to(torch.bfloat16))

    def route(self, x: torch.Tensor):
        """Top-k experts and their weights per token (softmax over the chosen logits)."""
        logits = x.float() @ self.router.T
        weights, experts = logits.topk(self.top_k, dim=-1)
        return experts, weights.softmax(dim=-1)

    @staticmethod
    def swiglu(h: torch.Tensor) -> torch.Tensor:
        gate, up = h.float().chunk(2, dim=-1)
        return (F.silu(gate) * up).to(torch.bfloat16)

    def forward_contiguous(self, x: torch.Tensor, validate: bool = True) -> torch.Tensor:
        """Prefill: sort the (token, expert) pairs by expert and run every expert on its run of rows."""
        experts, weights = self.route(x)
        flat = experts.flatten()
        order = flat.argsort(stable=True)
        tokens = order // self.top_k
        counts = torch.zeros(self.experts, dtype=torch.int32, device=x.device)
        counts.scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.int32))
        offsets = torch.cat([counts.new_zeros(1), counts.cumsum(0, dtype=torch.int32)])
        rows = x[tokens]  # (T * top_k, H) bf16, grouped by expert
        h = blockgemm.grouped_gemm_contiguous(rows, self.w13, weight_scale=self.s13, offsets=offsets, validate=validate)
        y = blockgemm.grouped_gemm_contiguous(
            self.swiglu(h), self.w2, weight_scale=self.s2, offsets=offsets, validate=validate
        )
        out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
        out.index_add_(0, tokens, y.float() * weights.flatten()[order, None])
        return out.to(torch.bfloat16)

    def dispatch_masked(self, x: torch.Tensor, slots: torch.Tensor, masked_m: torch.Tensor):
        """Decode: writes each token copy into its expert's slot buffer (slots (G, M_max, H)) and the counts
        into masked_m, on the device. M_max = tokens, so no expert can overflow (a token picks an expert at
        most once). Returns what combine_masked needs."""
        experts, weights = self.route(x)
        flat = experts.flatten()
        order = flat.argsort(stable=True)
        sorted_experts = flat[order]
        counts = torch.zeros(self.experts, dtype=torch.int32, device=x.device)
        counts.scatter_add_(0, flat, torch.ones_like(flat, dtype=torch.int32))
        starts = counts.cumsum(0) - counts
        position = torch.arange(flat.numel(), device=x.device) - starts[sorted_experts]
        slots[sorted_experts, position] = x[order // self.top_k]
        masked_m.copy_(counts)
        return order, sorted_experts, position, weights

    def combine_masked(self, y: torch.Tensor, x: torch.Tensor, order, sorted_experts, position, weights):
        out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
        out.index_add_(0, order // self.top_k, y[sorted_experts, position].float() * weights.flatten()[order, None])
        return out.to(torch.bfloat16)

    def experts_masked(self, slots: torch.Tensor, masked_m: torch.Tensor, expected_m: int) -> torch.Tensor:
        h = blockgemm.grouped_gemm_masked(
            slots, self.w13, weight_scale=self.s13, masked_m=masked_m, expected_m=expected_m
        )
        return blockgemm.grouped_gemm_masked(
            self.swiglu(h), self.w2, weight_scale=self.s2, masked_m=masked_m, expected_m=expected_m
        )

    def reference(self, x: torch.Tensor) -> torch.Tensor:
        experts, weights = self.route(x)
        out = torch.zeros(x.shape, dtype=torch.float32, device=x.device)
        for k in range(self.top_k):
            for e in range(self.experts):
                rows = (experts[:, k] == e).nonzero().flatten()
                if rows.numel() == 0:
                    continue
                h = x[rows].float() @ self.w13_ref[e].T
                gate, up = h.chunk(2, dim=-1)
                y = (F.silu(gate) * up) @ self.w2_ref[e].T
                out.index_add_(0, rows, y * weights[rows, k, None])
        return out


def main(tokens: int = 512, hidden: int = 7168, intermediate: int = 2048, experts: int = 32, top_k: int = 8,
         decode_tokens: int = 16, check: bool = False) -> None:
    device = torch.device("cuda")
    layer = MoE(hidden, intermediate, experts, top_k, device)

    # Prefill: contiguous layout (the first call validates its offsets; the hot path can skip that sync).
    x = torch.randn(tokens, hidden, device=device).to(torch.bfloat16)
    y = layer.forward_contiguous(x)
    diff = calc_diff(y, layer.reference(x))
    print(f"prefill ({tokens} tokens, {experts} experts, top-{top_k}): calc_diff vs float32 reference {diff:.2e}")

    # Decode: masked layout in a CUDA graph, replayed with new tokens and new routing.
    decode_tokens = min(decode_tokens, tokens)
    slots = torch.zeros(experts, decode_tokens, hidden, dtype=torch.bfloat16, device=device)
    masked_m = torch.zeros(experts, dtype=torch.int32, device=device)
    static_x = torch.randn(decode_tokens, hidden, device=device).to(torch.bfloat16)
    expected_m = max(1, decode_tokens * top_k // experts)

    def step():
        routing = layer.dispatch_masked(static_x, slots, masked_m)
        return layer.combine_masked(layer.experts_masked(slots, masked_m, expected_m), static_x, *routing)

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        step()  # warm-up outside the capture
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_y = step()
    worst = 0.0
    for seed in range(3):
        static_x.copy_(torch.randn(decode_tokens, hidden, generator=torch.Generator(device=device).manual_seed(seed),
                                   device=device))
        graph.replay()
        worst = max(worst, calc_diff(static_y, layer.reference(static_x)))
    print(f"decode ({decode_tokens} tokens, CUDA graph, 3 replays): worst calc_diff {worst:.2e}")
    if check:
        # Both paths quantize the activations to fp8 twice (x, then the SwiGLU output): ~1e-3 against the
        # float32 reference, which keeps them exact.
        assert diff < 3e-3 and worst < 3e-3, (diff, worst)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=7168)
    parser.add_argument("--intermediate", type=int, default=2048)
    parser.add_argument("--experts", type=int, default=32)
    parser.add_argument("--top-k", type=int, default=8)
    parser.add_argument("--decode-tokens", type=int, default=16)
    args = parser.parse_args()
    main(args.tokens, args.hidden, args.intermediate, args.experts, args.top_k, args.decode_tokens, check=True)
