// Scratch memory for quantizing bf16 operands: the caller's, or one buffer per device kept by the library.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <mutex>

namespace blockgemm::kernels {
struct Fp8GemmArgs;
struct GroupedGemmArgs;
}  // namespace blockgemm::kernels

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

// The library's own workspace for (`device`, `stream`), at least `bytes` long, lent until the lease is
// destroyed. One buffer per stream: calls on one stream are ordered by it, while two streams sharing a
// buffer would overwrite each other's quantized operands. The lease holds a lock so that no other thread
// can swap the buffer before this call's kernels are enqueued. A buffer outgrown by a larger problem is
// kept (graphs captured earlier still use it), not freed. Refuses to grow while `stream` is being
// captured into a graph, since allocation cannot be captured.
struct WorkspaceLease {
  void* data = nullptr;
  std::unique_lock<std::mutex> lock;
};
WorkspaceLease internal_workspace(int device, std::size_t bytes, cudaStream_t stream);

// Copies the input scales `args` points at (any strides) M-contiguous, (K/128, ceil4(M)) floats, into `dst`
// inside a workspace, on `stream`, and points `args` at the copy (bench/NOTES.md #63, #71).
void copy_input_scales_m_contiguous(kernels::Fp8GemmArgs& args, float* dst, cudaStream_t stream);

// The masked layout's: each group's (M_max, K/128) input scales into (K/128, masked_input_scale_ld(M_max))
// floats, groups one after the other (16-byte aligned, so every tile's first scale is), only the rows below
// each group's count (args.table); points `args` at the copy.
inline int64_t masked_input_scale_ld(int64_t m_max) {
  return (m_max + 3) / 4 * 4;
}
void copy_masked_input_scales_m_contiguous(kernels::GroupedGemmArgs& args, float* dst, cudaStream_t stream);

}  // namespace blockgemm::api
