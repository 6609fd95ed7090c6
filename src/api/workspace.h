// Scratch memory for quantizing bf16 operands: the caller's, or one buffer per device kept by the library.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace blockgemm::api {

constexpr std::size_t kWorkspaceAlignment = 256;

// Where each quantized operand goes inside a workspace of `bytes()` bytes.
struct QuantizedLayout {
  int64_t m, n, k;
  bool input, weight;                                         // which operands are quantized
  int64_t input_scale_ld() const { return (m + 3) / 4 * 4; }  // column-major (K/128, M') like cuBLASLt's
  std::size_t input_values_offset() const { return 0; }
  std::size_t input_scales_offset() const;
  std::size_t weight_values_offset() const;
  std::size_t weight_scales_offset() const;
  std::size_t bytes() const;
};

// The library's own workspace for `device`, at least `bytes` long. Grows (cudaFree + cudaMalloc, which
// synchronise the device) only when a larger problem comes; refuses to grow while `stream` is being
// captured into a graph, since allocation cannot be captured.
void* internal_workspace(int device, std::size_t bytes, cudaStream_t stream);

}  // namespace blockgemm::api
