// The fp8 cast's arithmetic, shared by the stand-alone quantizers (quantize.cu) and the GEMM kernel that
// quantizes its bf16 input on the fly (kernels/fp8_gemm_1d2d.cuh): one definition, so the two are bitwise
// equal to each other and to blockgemm::reference.
//
// Nothing here branches on the data. The GEMM's quantizer warps have no other warps to hide latency behind,
// only the independent rows of a stage, and the compiler interleaves those only within one basic block: a
// per-row branch made the cast a chain of dependent steps, row after row (bench/NOTES.md #30).
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

#include "ptx/ptx.cuh"

namespace blockgemm::quantize {

constexpr float kFp8Max = 448.f;     // largest finite e4m3 value
constexpr float kAmaxFloor = 1e-4f;  // keeps the scale of an all-zero group finite and non-zero

// ---- amax ----------------------------------------------------------------------------------------------
// Magnitudes are compared as bf16 bit patterns. With the sign bit cleared, unsigned integer order is the
// order of |x|, and every NaN pattern lies above Inf; so the integer max of the patterns is the reference's
// NaN-propagating amax (a NaN wins whenever the group holds one; which NaN does not matter, see
// scale_from_amax), and its maxima combine in any order. One max.u16x2 per pair of values, where a float
// compare-and-select that keeps NaNs costs three instructions per value.
constexpr uint32_t kMagnitudeMask = 0x7FFF7FFFu;

__device__ __forceinline__ uint32_t larger_half(uint32_t pair) {
  return max(pair >> 16, pair & 0xFFFFu);
}

// The largest |x| of 4 or 8 bf16 values, as a bf16 bit pattern (the low 16 bits).
__device__ __forceinline__ uint32_t abs_max_bits(uint2 v) {
  return larger_half(ptx::max_u16x2(v.x & kMagnitudeMask, v.y & kMagnitudeMask));
}
__device__ __forceinline__ uint32_t abs_max_bits(uint4 v) {
  return larger_half(ptx::max_u16x2(ptx::max_u16x2(v.x & kMagnitudeMask, v.y & kMagnitudeMask),
                                    ptx::max_u16x2(v.z & kMagnitudeMask, v.w & kMagnitudeMask)));
}

// bf16 -> fp32 is exact: the bf16 bits are the high half of the fp32 bits.
__device__ __forceinline__ float bf16_bits_to_float(uint32_t bits) {
  return __uint_as_float(bits << 16);
}
__device__ __forceinline__ float bf16_low(uint32_t word) {
  return __uint_as_float(word << 16);
}
__device__ __forceinline__ float bf16_high(uint32_t word) {
  return __uint_as_float(word & 0xFFFF0000u);
}

// ---- scale ---------------------------------------------------------------------------------------------
// max(amax, 1e-4) / 448, correctly rounded; a NaN amax stays NaN because NaN < floor is false. For a finite
// amax >= 1e-4 one Markstein step from the correctly rounded reciprocal of 448 gives exactly IEEE's quotient
// (checked on the CPU for every such float, 1.19e9 of them; the GPU suite checks every bf16 amax, the only
// values that reach it); __fdiv_rn's sequence has a slow-path call. Inf and NaN take amax * RN(1/448): Inf,
// or the GPU's canonical NaN, as the division would give.
__device__ __forceinline__ float scale_from_amax(float amax) {
  if (amax < kAmaxFloor) amax = kAmaxFloor;
  constexpr float kReciprocal = 1.0f / kFp8Max;
  const float q = __fmul_rn(amax, kReciprocal);
  const float exact = __fmaf_rn(__fmaf_rn(-q, kFp8Max, amax), kReciprocal, q);
  return isfinite(amax) ? exact : q;
}

// ---- x / scale -----------------------------------------------------------------------------------------
// x / scale as seen through the fp8 conversion. IEEE division (__fdiv_rn) costs about ten instructions per
// element and a slow-path branch; with the correctly rounded reciprocal r of the group's scale, one Markstein
// correction step q + (x - q * scale) * r costs three. Its fp32 result equals RN(x / scale) except when x is
// within a few binades of FLT_MIN, where the quotient is below 2^-100 and fp8 rounds both to a zero of x's
// sign: the fp8 bytes are equal for every finite bf16 x with |x| <= amax and every finite scale the amax rule
// can produce (1.2e9 pairs, checked exhaustively by a GPU test against IEEE division). The residual is
// formed as q * scale - x and negated through -r so that x = -0 keeps its sign (+0 + -0 would round to +0).
//
// r comes from the hardware's estimate and two Newton steps, which give RN(1/scale) for every scale the amax
// rule produces (a GPU test checks all of them against __frcp_rn, whose range checks and slow path would
// branch). A group holding Inf or NaN has a scale of Inf or NaN; there the divisor becomes scale 0 with r the
// estimate (0 for Inf, NaN for NaN), for which the same three steps give x / scale: x * 0 corrected by
// -x * -0 keeps the sign of a zero quotient, an infinite x gives NaN, and a NaN r gives NaN.
struct Divisor {
  float scale, reciprocal;
};

__device__ __forceinline__ Divisor make_divisor(float scale) {
  const float estimate = ptx::rcp_approx_ftz_f32(scale);
  float r = __fmaf_rn(__fmaf_rn(-scale, estimate, 1.f), estimate, estimate);
  r = __fmaf_rn(__fmaf_rn(-scale, r, 1.f), r, r);
  const bool finite = isfinite(scale);
  return {finite ? scale : 0.f, finite ? r : estimate};
}

__device__ __forceinline__ float divide(float x, const Divisor& d) {
  const float q = __fmul_rn(x, d.reciprocal);
  const float negative_residual = __fmaf_rn(q, d.scale, -x);
  return __fmaf_rn(negative_residual, -d.reciprocal, q);
}

// ---- fp8 -----------------------------------------------------------------------------------------------
// Two words of bf16 (4 elements) -> 4 fp8 bytes, element 0 in the lowest byte (memory order).
// __nv_cvt_float2_to_fp8x2 issues the same cvt.rn.satfinite.e4m3x2.f32 as __nv_cvt_float_to_fp8 does for
// one value, converting both halves at once.
__device__ __forceinline__ uint32_t quantize4(uint32_t word0, uint32_t word1, const Divisor& d) {
  const float2 pair0 = make_float2(divide(bf16_low(word0), d), divide(bf16_high(word0), d));
  const float2 pair1 = make_float2(divide(bf16_low(word1), d), divide(bf16_high(word1), d));
  const uint32_t fp8_01 = __nv_cvt_float2_to_fp8x2(pair0, __NV_SATFINITE, __NV_E4M3);
  const uint32_t fp8_23 = __nv_cvt_float2_to_fp8x2(pair1, __NV_SATFINITE, __NV_E4M3);
  return fp8_01 | (fp8_23 << 16);
}

__device__ __forceinline__ uint2 quantize_chunk(const uint4 chunk, float scale) {
  const Divisor d = make_divisor(scale);
  return make_uint2(quantize4(chunk.x, chunk.y, d), quantize4(chunk.z, chunk.w, d));
}

}  // namespace blockgemm::quantize
