// Input scales rewritten M-contiguous before a large GEMM (bench/NOTES.md #63).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace blockgemm::quantize {

// For each group z < groups, r < rows, c < cols:
//   dst[z * dst_group_stride + c * dst_ld + r] = src[z * src_group_stride + r * src_row_stride + c *
//   src_col_stride]
// the (M, K/128) input scales (or each group's (M_max, K/128) ones) in any strides into the column-major
// layout the GEMM's tiles read as one bulk copy per stage. With `group_rows` (device int32, one per group:
// the masked layout's counts) only group z's first min(group_rows[z], rows) rows are copied, read after the
// previous kernel in the stream has finished. groups <= 65535 and cols <= 65535 * 32 (the grid's z and y;
// the caller checks). Enqueued on `stream`; lets the next kernel's prologue start early (programmatic
// dependent launch).
struct ScaleTranspose {
  const float* src;
  int64_t groups, rows, cols;
  int64_t src_group_stride, src_row_stride, src_col_stride;
  float* dst;
  int64_t dst_group_stride, dst_ld;
  const int32_t* group_rows = nullptr;
};
void transpose_scales(const ScaleTranspose& transpose, cudaStream_t stream);

}  // namespace blockgemm::quantize
