// CPU reference: fp8 e4m3 conversion, the two quantizers and a double-precision block-scaled GEMM.
// Independent of the GPU code on purpose: it is what the kernels are checked against.
#pragma once

#include <cstdint>
#include <vector>

namespace blockgemm::reference {

constexpr int kGroupK = 128;      // scale granularity along K
constexpr float kFp8Max = 448.f;  // largest finite e4m3 value
constexpr float kAmaxFloor = 1e-4f;

// e4m3 (the "fn" variant: no infinities, NaN = 0x7F / 0xFF). Round to nearest even, saturating finite
// values to +-448 like __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3); any NaN maps to 0x7F (CUDA
// drops the sign), +-Inf saturates to +-448.
uint8_t float_to_fp8_e4m3(float x);
float fp8_e4m3_to_float(uint8_t bits);

// bf16 / fp16 storage helpers (round to nearest even; NaN stays NaN).
uint16_t float_to_bf16(float x);
float bf16_to_float(uint16_t bits);
uint16_t float_to_fp16(float x);
float fp16_to_float(uint16_t bits);

struct Quantized {
  std::vector<uint8_t> values;  // rows x cols, row-major fp8 e4m3
  std::vector<float> scales;    // row-major; shape in scale_rows x scale_cols
  int64_t rows = 0, cols = 0;
  int64_t scale_rows = 0, scale_cols = 0;
};

// One scale per 1x128 group of each row: scales (rows, ceil(cols/128)).
// amax = max |x| over the group, clamped below to 1e-4; scale = amax / 448 (fp32);
// value = fp8(x / scale) (fp32 division, RNE, saturating).
Quantized per_token_cast_to_fp8(const float* x, int64_t rows, int64_t cols);
// One scale per 128x128 block: scales (ceil(rows/128), ceil(cols/128)); same math over the block.
Quantized per_block_cast_to_fp8(const float* x, int64_t rows, int64_t cols);

// out[m][n] = sum_k (a[m][k] * a_scale[m][k/128]) * (b[n][k] * b_scale[row(n)][k/128]) in double,
// where a, b are fp8 e4m3 bits (row-major, contiguous), a_scale is (M, K/128) row-major, and b_scale is
// (ceil(N/128), K/128) row-major when per_row_b_scale is false (row(n) = n/128) or (N, K/128) when true.
// Only rows [row_begin, row_end) of out are computed; out is M x N row-major (rows outside untouched).
// Uses several threads when available.
void blockscale_gemm(const uint8_t* a, const float* a_scale, const uint8_t* b, const float* b_scale,
                     bool per_row_b_scale, int64_t m, int64_t n, int64_t k, double* out,
                     int64_t row_begin = 0, int64_t row_end = -1);

// DeepGEMM's metric: 1 - 2 sum(x y) / sum(x^2 + y^2). 0 for identical inputs; NaN if any input is NaN.
double calc_diff(const double* x, const double* y, int64_t count);

}  // namespace blockgemm::reference
