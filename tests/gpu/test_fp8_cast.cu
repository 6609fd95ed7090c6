// The cast arithmetic's shortcuts (quantize/fp8_cast.cuh) against CUDA's IEEE operations, exhaustively on
// the GPU: the reciprocal from the hardware estimate and two Newton steps for every scale the amax rule can
// produce, and the scale rule and the fp8 bytes of x / scale wherever they touch Inf, NaN and zero.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "gpu_test_util.h"
#include "quantize/fp8_cast.cuh"

namespace blockgemm::testing {
namespace {

struct Mismatches {
  unsigned long long count;
  uint32_t first_input;
  uint32_t first_got;
  uint32_t first_want;
};

__device__ void record(Mismatches* m, uint32_t input, uint32_t got, uint32_t want) {
  if (atomicAdd(&m->count, 1ull) == 0) {
    m->first_input = input;
    m->first_got = got;
    m->first_want = want;
  }
}

// Every float in [first, last] (bit patterns): make_divisor's reciprocal against __frcp_rn.
__global__ void reciprocal_kernel(uint32_t first, uint32_t last, Mismatches* m) {
  for (uint64_t bits = first + blockIdx.x * static_cast<uint64_t>(blockDim.x) + threadIdx.x; bits <= last;
       bits += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    const float scale = __uint_as_float(static_cast<uint32_t>(bits));
    const float got = quantize::make_divisor(scale).reciprocal;
    const float want = __frcp_rn(scale);
    if (__float_as_uint(got) != __float_as_uint(want))
      record(m, static_cast<uint32_t>(bits), __float_as_uint(got), __float_as_uint(want));
  }
}

// Every bf16 amax pattern (both signs do not occur: the amax is a magnitude): the scale rule against IEEE
// division, NaN compared as NaN.
__global__ void scale_kernel(Mismatches* m) {
  const uint32_t bits = blockIdx.x * blockDim.x + threadIdx.x;
  if (bits > 0x7FFFu) return;
  const float amax = quantize::bf16_bits_to_float(bits);
  const float got = quantize::scale_from_amax(amax);
  const float want = __fdiv_rn(amax < quantize::kAmaxFloor ? quantize::kAmaxFloor : amax, quantize::kFp8Max);
  const bool same = (isnan(got) && isnan(want)) || __float_as_uint(got) == __float_as_uint(want);
  if (!same) record(m, bits, __float_as_uint(got), __float_as_uint(want));
}

// Every bf16 x (both signs, Inf, NaN) divided by a non-finite or extreme scale: the fp8 bytes of divide()
// against those of x / scale in IEEE.
__global__ void special_divisor_kernel(Mismatches* m) {
  const uint32_t x_bits = blockIdx.x * blockDim.x + threadIdx.x;
  if (x_bits > 0xFFFFu) return;
  const float x = quantize::bf16_bits_to_float(x_bits);
  const float scales[] = {__uint_as_float(0x7F800000u), __uint_as_float(0x7FC00000u),
                          quantize::scale_from_amax(0.f), quantize::scale_from_amax(3.3895314e38f), 1.f};
  for (float scale : scales) {
    // The cast divides only |x| <= amax by amax's scale: a group holding an infinite or NaN x has a scale
    // of Inf or NaN, and a finite scale never sees a quotient beyond 448.
    if (isfinite(scale) && !(fabsf(x) <= scale * quantize::kFp8Max)) continue;
    const quantize::Divisor d = quantize::make_divisor(scale);
    const uint32_t got = __nv_cvt_float_to_fp8(quantize::divide(x, d), __NV_SATFINITE, __NV_E4M3);
    const uint32_t want = __nv_cvt_float_to_fp8(__fdiv_rn(x, scale), __NV_SATFINITE, __NV_E4M3);
    if (got != want) record(m, x_bits, got, want);
  }
}

// Every bf16 amax from just below the 1e-4 floor to the largest finite bf16 (one block each) and every bf16 x
// with |x| <= amax, both signs: the fp8 bytes of divide() against those of IEEE x / scale. This is the whole
// domain the cast divides over (a group's values divided by its own scale).
__global__ void division_kernel(uint32_t first_amax_bits, Mismatches* m) {
  const uint32_t amax_bits = first_amax_bits + blockIdx.x;
  const float scale = quantize::scale_from_amax(quantize::bf16_bits_to_float(amax_bits));
  const quantize::Divisor d = quantize::make_divisor(scale);
  for (uint32_t magnitude = threadIdx.x; magnitude <= amax_bits; magnitude += blockDim.x) {
    for (uint32_t sign : {0u, 0x8000u}) {
      const float x = quantize::bf16_bits_to_float(magnitude | sign);
      const uint32_t got = __nv_cvt_float_to_fp8(quantize::divide(x, d), __NV_SATFINITE, __NV_E4M3);
      const uint32_t want = __nv_cvt_float_to_fp8(__fdiv_rn(x, scale), __NV_SATFINITE, __NV_E4M3);
      if (got != want) record(m, (amax_bits << 16) | magnitude | sign, got, want);
    }
  }
}

Mismatches run(void (*launch)(Mismatches*)) {
  Mismatches* dev = nullptr;
  check_cuda(cudaMalloc(&dev, sizeof(Mismatches)), "cudaMalloc");
  check_cuda(cudaMemset(dev, 0, sizeof(Mismatches)), "cudaMemset");
  launch(dev);
  check_cuda(cudaGetLastError(), "launch");
  Mismatches host{};
  check_cuda(cudaMemcpy(&host, dev, sizeof(host), cudaMemcpyDeviceToHost), "copy back");
  check_cuda(cudaFree(dev), "cudaFree");
  return host;
}

uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

// Scales run from 1e-4 / 448 (the amax floor) to the largest bf16 / 448; the range checked is wider on both
// sides: [2^-24, 2^125].
TEST(Fp8Cast, ReciprocalIsCorrectlyRoundedForEveryScale) {
  BLOCKGEMM_REQUIRE_HOPPER();
  static uint32_t first, last;
  first = bits_of(0x1p-24f);
  last = bits_of(0x1p125f);
  const Mismatches m = run([](Mismatches* dev) { reciprocal_kernel<<<132 * 16, 256>>>(first, last, dev); });
  EXPECT_EQ(m.count, 0u) << "first mismatch: scale bits 0x" << std::hex << m.first_input << " got 0x"
                         << m.first_got << " want 0x" << m.first_want;
}

TEST(Fp8Cast, ScaleEqualsIeeeDivisionForEveryAmax) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const Mismatches m = run([](Mismatches* dev) { scale_kernel<<<0x8000 / 256, 256>>>(dev); });
  EXPECT_EQ(m.count, 0u) << "first mismatch: amax bits 0x" << std::hex << m.first_input << " got 0x"
                         << m.first_got << " want 0x" << m.first_want;
}

TEST(Fp8Cast, DivisionEqualsIeeeForEveryGroupValueAndScale) {
  BLOCKGEMM_REQUIRE_HOPPER();
  static uint32_t first_amax;
  // The largest bf16 below the 1e-4 floor: its scale is the floor's, which every smaller amax shares.
  first_amax = 0x38D1u;
  const Mismatches m = run([](Mismatches* dev) {
    constexpr uint32_t kLargestFiniteBf16 = 0x7F7Fu;
    division_kernel<<<kLargestFiniteBf16 - first_amax + 1, 256>>>(first_amax, dev);
  });
  EXPECT_EQ(m.count, 0u) << "first mismatch: amax bits 0x" << std::hex << (m.first_input >> 16)
                         << ", x bits 0x" << (m.first_input & 0xFFFFu) << " got 0x" << m.first_got
                         << " want 0x" << m.first_want;
}

TEST(Fp8Cast, DivisionByInfNanAndExtremeScalesMatchesIeee) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const Mismatches m = run([](Mismatches* dev) { special_divisor_kernel<<<0x10000 / 256, 256>>>(dev); });
  EXPECT_EQ(m.count, 0u) << "first mismatch: x bits 0x" << std::hex << m.first_input << " got 0x"
                         << m.first_got << " want 0x" << m.first_want;
}

}  // namespace
}  // namespace blockgemm::testing
