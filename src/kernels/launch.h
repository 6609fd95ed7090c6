// Host-side entry to the kernels: plain C++ (no CUDA device code), called by the API after validation.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "blockgemm/tensor.h"
#include "heuristics/heuristics.h"

namespace blockgemm::kernels {

// A validated problem. Strides are in elements. The kernel takes fp8 operands only: a bf16 operand
// (quantize_input / quantize_weight) is first quantized into a workspace, which replaces a (or b) and its
// scales here before launch.
struct Fp8GemmArgs {
  int m, n, k;
  const void* a;  // (M, K) fp8 (or bf16 to quantize), row stride a_row_stride
  int64_t a_row_stride;
  const void* b;  // (N, K) fp8 (or bf16 to quantize)
  int64_t b_row_stride;
  bool quantize_input, quantize_weight;
  const float* scale_a;
  int64_t scale_a_row_stride, scale_a_k_stride;
  const float* scale_b;
  int64_t scale_b_row_stride, scale_b_k_stride;
  bool per_row_weight_scale;
  void* out;  // (M, N) out_dtype
  int64_t out_row_stride;
  DType out_dtype;
  // The kernel quantizes the bf16 input itself (swapAB plans only): a is the bf16 input, a_row_stride in
  // elements, and scale_a is unused. Set by the API instead of running per_token_cast_to_fp8 first.
  bool quantize_input_in_kernel;
};

// Launches the kernel the plan names on `stream`. Throws blockgemm::Error on a CUDA failure.
void launch_fp8_gemm(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream);

}  // namespace blockgemm::kernels
