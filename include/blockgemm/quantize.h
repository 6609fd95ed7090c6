// GPU quantizers: bf16 -> fp8 e4m3 with fp32 scales, the math of blockgemm::reference's quantizers
// (bitwise equal to them): amax over the group (NaN-propagating), clamped below to 1e-4, scale = amax / 448,
// value = fp8(x / scale) rounded to nearest even, saturating to +-448.
#pragma once

#include <cuda_runtime_api.h>

#include "blockgemm/tensor.h"

namespace blockgemm {

// x (rows, cols) bf16, row-major, cols a multiple of 8, row stride a multiple of 8 elements, 16-byte
// aligned. out (rows, cols) fp8 e4m3 row-major (row stride a multiple of 8 bytes, 16-byte aligned).
// scales (rows, ceil(cols/128)) fp32, row-major (stride (>= ceil(cols/128), 1)) or column-major
// (stride (1, >= rows)): the two layouts fp8_blockscale_gemm_sm90 accepts for input_scale.
// Asynchronous on `stream`; no allocation; capturable. Throws blockgemm::Error on bad arguments.
void per_token_cast_to_fp8(const TensorView& x, const TensorView& out, const TensorView& scales,
                           cudaStream_t stream = nullptr);

// Same, one scale per 128x128 block: scales (ceil(rows/128), ceil(cols/128)), row- or column-major.
void per_block_cast_to_fp8(const TensorView& x, const TensorView& out, const TensorView& scales,
                           cudaStream_t stream = nullptr);

}  // namespace blockgemm
