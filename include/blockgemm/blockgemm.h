// blockgemm: FP8 block-scaled GEMM for Hopper (SM90).
//
//   out (M, N) = input (M, K) . weight (N, K)^T
//
// with DeepSeek-style scales: input_scale (M, K/128), one fp32 per 1x128 group along K; weight_scale
// either (ceil(N/128), K/128) for 128x128 blocks or (N, K/128) for 1x128 row groups, told apart by shape.
// A drop-in for FlashInfer's fp8_blockscale_gemm_sm90: its callers' transposed input scale is accepted and
// its error wording appears in ours (see below).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <optional>
#include <string>

#include "blockgemm/tensor.h"

namespace blockgemm {

// Device memory the caller lends for quantizing bf16 operands, and for an fp8 input's scales (see
// fp8_blockscale_gemm_sm90_workspace_bytes).
struct Workspace {
  void* data = nullptr;  // 256-byte aligned, on the operands' device
  std::size_t bytes = 0;
};

// Bytes of workspace a call with these operands uses: for a bf16 input its fp8 copy and scales; for a bf16
// weight its fp8 copy and block scales (required: without a workspace the library grows one of its own).
// fp8 x fp8 needs none, but long ones (a normal plan of >= ~150 us, >= ~50 us where K >= 16384, but 128x192,
// M >= 128) with row-major
// input scales run faster given this many bytes, into which the scales are first copied M-contiguous; 0 where
// input_scale is M-contiguous already, the plan gains nothing, or the operands are ones the call refuses.
// Without input_scale the row-major layout is assumed. Queries the device's SM count on first use.
std::size_t fp8_blockscale_gemm_sm90_workspace_bytes(
    const TensorView& input, const TensorView& weight,
    const std::optional<TensorView>& input_scale = std::nullopt);

// Computes out = input . weight^T on `stream`. No allocation, no host synchronisation: safe inside CUDA
// graph capture.
//   input   (M, K)  fp8 e4m3 or bf16, row-major (row stride >= K)
//   weight  (N, K)  fp8 e4m3 or bf16, row-major (row stride >= K); fp8 input needs an fp8 weight
//   input_scale  (M, K/128) fp32, row-major (stride (>= K/128, 1)) or column-major (stride (1, >= M));
//                required for fp8 input, None for bf16 input (quantized inside, 1x128 groups). Where
//                M != K/128 the transpose (K/128, M) is accepted too, in either layout: FlashInfer's
//                callers pass that, M-contiguous (strides (ceil4(M), 1) over a (K/128, ceil4(M)) buffer).
//                Where M == K/128 the shapes coincide and a square tensor is read as (M, K/128).
//   weight_scale (ceil(N/128), K/128) or (N, K/128) fp32, row- or column-major likewise; required for fp8
//                weight, None for bf16 weight (quantized inside, 128x128 blocks)
//   out     (M, N)  bf16, fp16 or fp32, row-major (row stride >= N)
//   out_dtype, when given, must equal out's dtype.
// bf16 operands are quantized into `workspace`, or, when none is given, into a buffer the library keeps
// per device; that one grows on first use of a larger problem, which cannot happen during CUDA graph
// capture (run the shape once before capturing, or pass a workspace). With fp8 operands a workspace of
// fp8_blockscale_gemm_sm90_workspace_bytes() is optional (used, not required; one too small or not 256-byte
// aligned is ignored; one overlapping an operand is an error where the call would use it).
// Throws blockgemm::Error naming the argument, the expected and the given value on any bad input
// ("fp8_blockscale_gemm_sm90: <argument>: expected ..., got ...", with FlashInfer's wording inside where its
// callers match on it), all checked before the device is queried; a GPU other than Hopper is an invalid
// argument (Error::Kind::kInvalidArgument) like the rest.
void fp8_blockscale_gemm_sm90(const TensorView& input, const TensorView& weight,
                              const std::optional<TensorView>& input_scale,
                              const std::optional<TensorView>& weight_scale, const TensorView& out,
                              std::optional<DType> out_dtype = std::nullopt, cudaStream_t stream = nullptr,
                              std::optional<Workspace> workspace = std::nullopt);

// Convenience form: allocates `out` (out_dtype, default bf16) on the input's device and returns it.
// Allocates, so keep it out of captured graphs and hot loops.
DeviceTensor fp8_blockscale_gemm_sm90(const TensorView& input, const TensorView& weight,
                                      const std::optional<TensorView>& input_scale,
                                      const std::optional<TensorView>& weight_scale,
                                      std::optional<DType> out_dtype = std::nullopt,
                                      cudaStream_t stream = nullptr);

// The kernel configuration the dispatcher would run for this problem on the current device,
// as a one-line description (kernel, tile, stages, grid). For tests and the benchmark.
std::string describe_plan(int64_t m, int64_t n, int64_t k, DType out_dtype = DType::kBFloat16,
                          bool per_row_weight_scale = false);

}  // namespace blockgemm
