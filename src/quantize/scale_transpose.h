// Input scales rewritten M-contiguous before a large GEMM (bench/NOTES.md #63).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace blockgemm::quantize {

// dst[g * dst_ld + r] = src[r * src_row_stride + g * src_col_stride] for r < rows, g < cols: the (M, K/128)
// input scales in any strides into the column-major layout whose gathers are coalesced. Enqueued on `stream`;
// lets the next kernel's prologue start early (programmatic dependent launch).
void transpose_scales(const float* src, int64_t rows, int64_t cols, int64_t src_row_stride,
                      int64_t src_col_stride, float* dst, int64_t dst_ld, cudaStream_t stream);

}  // namespace blockgemm::quantize
