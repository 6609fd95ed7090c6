// A GPU fp32 reference for the fuzzer: lets it check every row of large cases, where the double-precision
// CPU reference can only afford a sample of rows. Plain CUDA cores and an independent code path (no tensor
// cores, no TMA, no shared code with the library), so that a bug in the library's kernels cannot hide in it.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace blockgemm::fuzz {

// out[r][c] = sum over groups g of (sum over the 128 k of group g of float(a[r][k]) * float(b[c][k]))
//             * a_scales[r][g] * b_scales[srow][g], in fp32, with srow = c when b_per_row, else c / 128.
// All pointers are device pointers, all matrices row-major and contiguous:
//   a_fp8 (m, k) and b_fp8 (n, k) fp8 e4m3 bits; a_scales (m, k/128); b_scales (n, k/128) when b_per_row,
//   else (ceil(n/128), k/128); out (m, n) fp32.
// Needs n % 16 == 0, k % 128 == 0, and a_fp8, b_fp8, out 16-byte aligned (throws std::invalid_argument
// otherwise). Deterministic: each output is summed by one thread in a fixed order. Asynchronous on
// `stream`; launch errors throw std::runtime_error, errors during the run surface at the next sync.
void gpu_reference_gemm(const uint8_t* a_fp8, const float* a_scales, const uint8_t* b_fp8,
                        const float* b_scales, bool b_per_row, int64_t m, int64_t n, int64_t k, float* out,
                        cudaStream_t stream);

}  // namespace blockgemm::fuzz
