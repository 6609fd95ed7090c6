// Tests of the CPU reference (include/blockgemm/reference.h). The conversions are checked bit for bit
// against CUDA's host implementations from <cuda_fp8.h>, <cuda_bf16.h> and <cuda_fp16.h>.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "blockgemm/reference.h"
#include "reference_test_util.h"

namespace ref = blockgemm::reference;

namespace {

using blockgemm::testing::bits_of;
using blockgemm::testing::kInf;
using blockgemm::testing::kNaN;

float float_of(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}

uint8_t cuda_fp8(float x) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3));
}

float cuda_fp8_decode(uint8_t b) {
  const __half_raw raw = __nv_cvt_fp8_to_halfraw(b, __NV_E4M3);
  return __half2float(__half(raw));
}

uint16_t cuda_bf16(float x) {
  const __nv_bfloat16 h = __float2bfloat16_rn(x);
  uint16_t u;
  std::memcpy(&u, &h, sizeof(u));
  return u;
}

uint16_t cuda_fp16(float x) {
  const __half h = __float2half_rn(x);
  uint16_t u;
  std::memcpy(&u, &h, sizeof(u));
  return u;
}

// Checks one input against CUDA; returns true on a match (and records a failure otherwise).
bool fp8_matches_cuda(float x) {
  const uint8_t want = cuda_fp8(x);
  const uint8_t got = ref::float_to_fp8_e4m3(x);
  EXPECT_EQ(got, want) << "x = " << x << " (bits 0x" << std::hex << bits_of(x) << ")";
  return got == want;
}

// Sorted non-negative finite e4m3 values, by encoding 0x00..0x7E.
std::vector<float> positive_fp8_values() {
  std::vector<float> v;
  for (int b = 0; b <= 0x7E; ++b) v.push_back(ref::fp8_e4m3_to_float(static_cast<uint8_t>(b)));
  return v;
}

// Random floats: random sign, magnitude 10^U(lo, hi).
std::vector<float> random_magnitudes(size_t count, double lo, double hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> expo(lo, hi);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> v(count);
  for (auto& x : v) {
    x = static_cast<float>(std::pow(10.0, expo(rng)));
    if (neg(rng)) x = -x;
  }
  return v;
}

}  // namespace

// -------------------------------------------------------------------------------------------------------
// fp8 e4m3
// -------------------------------------------------------------------------------------------------------

TEST(Fp8Conversion, DecodeAll256MatchesCuda) {
  for (int b = 0; b < 256; ++b) {
    const float got = ref::fp8_e4m3_to_float(static_cast<uint8_t>(b));
    const float want = cuda_fp8_decode(static_cast<uint8_t>(b));
    if ((b & 0x7F) == 0x7F) {
      EXPECT_TRUE(std::isnan(got)) << b;
      EXPECT_TRUE(std::isnan(want)) << b;
    } else {
      EXPECT_EQ(bits_of(got), bits_of(want)) << "b = " << b;
    }
  }
}

TEST(Fp8Conversion, DecodeKnownValues) {
  EXPECT_EQ(ref::fp8_e4m3_to_float(0x00), 0.f);
  EXPECT_TRUE(std::signbit(ref::fp8_e4m3_to_float(0x80)));
  EXPECT_EQ(ref::fp8_e4m3_to_float(0x01), std::ldexp(1.f, -9));
  EXPECT_EQ(ref::fp8_e4m3_to_float(0x07), 7 * std::ldexp(1.f, -9));
  EXPECT_EQ(ref::fp8_e4m3_to_float(0x08), std::ldexp(1.f, -6));
  EXPECT_EQ(ref::fp8_e4m3_to_float(0x38), 1.f);
  EXPECT_EQ(ref::fp8_e4m3_to_float(0x7E), 448.f);
  EXPECT_EQ(ref::fp8_e4m3_to_float(0xFE), -448.f);
  EXPECT_EQ(ref::fp8_e4m3_to_float(0x77), 240.f);
  EXPECT_TRUE(std::isnan(ref::fp8_e4m3_to_float(0x7F)));
  EXPECT_TRUE(std::isnan(ref::fp8_e4m3_to_float(0xFF)));
}

TEST(Fp8Conversion, RoundTripAllFinite) {
  for (int b = 0; b < 256; ++b) {
    if ((b & 0x7F) == 0x7F) continue;
    const float v = ref::fp8_e4m3_to_float(static_cast<uint8_t>(b));
    EXPECT_EQ(ref::float_to_fp8_e4m3(v), b) << "b = " << b;
    fp8_matches_cuda(v);
  }
}

TEST(Fp8Conversion, MidpointsAndNeighboursMatchCuda) {
  const std::vector<float> v = positive_fp8_values();
  for (size_t i = 0; i + 1 < v.size(); ++i) {
    const float mid = (v[i] + v[i + 1]) / 2;  // exact: fp8 values have few significant bits
    ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(v[i]) + v[i + 1]) / 2);
    // Ties go to the even encoding.
    const uint8_t even = (i % 2 == 0) ? static_cast<uint8_t>(i) : static_cast<uint8_t>(i + 1);
    EXPECT_EQ(ref::float_to_fp8_e4m3(mid), even) << "mid = " << mid;
    EXPECT_EQ(ref::float_to_fp8_e4m3(-mid), even | 0x80) << "mid = " << -mid;
    EXPECT_EQ(ref::float_to_fp8_e4m3(std::nextafter(mid, 0.f)), i);
    EXPECT_EQ(ref::float_to_fp8_e4m3(std::nextafter(mid, kInf)), i + 1);
    for (float x : {mid, std::nextafter(mid, 0.f), std::nextafter(mid, kInf)}) {
      fp8_matches_cuda(x);
      fp8_matches_cuda(-x);
    }
  }
}

TEST(Fp8Conversion, SaturationMatchesCuda) {
  const float big[] = {448.f, std::nextafter(448.f, kInf),       456.f, std::nextafter(464.f, 0.f),
                       464.f, std::nextafter(464.f, kInf),       470.f, std::nextafter(480.f, 0.f),
                       480.f, std::nextafter(480.f, kInf),       500.f, 1e4f,
                       1e30f, std::numeric_limits<float>::max(), kInf};
  for (float x : big) {
    EXPECT_EQ(ref::float_to_fp8_e4m3(x), 0x7E) << x;
    EXPECT_EQ(ref::float_to_fp8_e4m3(-x), 0xFE) << -x;
    fp8_matches_cuda(x);
    fp8_matches_cuda(-x);
  }
  // Top binade (ulp 32): 416 = 0x7D, 448 = 0x7E; ties go to the even encoding.
  EXPECT_EQ(ref::float_to_fp8_e4m3(432.f), 0x7E);
  EXPECT_EQ(ref::float_to_fp8_e4m3(std::nextafter(432.f, 0.f)), 0x7D);
  EXPECT_EQ(ref::float_to_fp8_e4m3(400.f), 0x7C);  // tie 384 / 416 -> 384
}

TEST(Fp8Conversion, SubnormalRangeMatchesCuda) {
  const float ulp = std::ldexp(1.f, -9);             // smallest subnormal
  EXPECT_EQ(ref::float_to_fp8_e4m3(ulp / 2), 0x00);  // tie with 0 -> 0
  EXPECT_EQ(ref::float_to_fp8_e4m3(-ulp / 2), 0x80);
  EXPECT_EQ(ref::float_to_fp8_e4m3(std::nextafter(ulp / 2, 1.f)), 0x01);
  EXPECT_EQ(ref::float_to_fp8_e4m3(std::nextafter(ulp / 2, 0.f)), 0x00);
  EXPECT_EQ(ref::float_to_fp8_e4m3(1.5f * ulp), 0x02);  // tie 1 / 2 -> 2
  EXPECT_EQ(ref::float_to_fp8_e4m3(2.5f * ulp), 0x02);  // tie 2 / 3 -> 2
  EXPECT_EQ(ref::float_to_fp8_e4m3(7.5f * ulp), 0x08);  // tie 7 / 8 -> 8 (smallest normal)
  EXPECT_EQ(ref::float_to_fp8_e4m3(std::nextafter(7.5f * ulp, 0.f)), 0x07);
  // Dense sweep over [0, 2^-5], and float subnormals.
  const int steps = 100000;
  for (int i = 0; i <= steps; ++i) {
    const float x = std::ldexp(static_cast<float>(i) / steps, -5);
    fp8_matches_cuda(x);
    fp8_matches_cuda(-x);
  }
  for (float x : {std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min(), 1e-30f,
                  std::ldexp(1.f, -11), std::ldexp(1.f, -10), std::ldexp(1.f, -126)}) {
    fp8_matches_cuda(x);
    fp8_matches_cuda(-x);
  }
}

TEST(Fp8Conversion, ZerosNaNInf) {
  EXPECT_EQ(ref::float_to_fp8_e4m3(0.f), 0x00);
  EXPECT_EQ(ref::float_to_fp8_e4m3(-0.f), 0x80);
  EXPECT_EQ(ref::float_to_fp8_e4m3(kInf), 0x7E);
  EXPECT_EQ(ref::float_to_fp8_e4m3(-kInf), 0xFE);
  // NaN of either sign and any payload gives 0x7F, like CUDA (which canonicalises the NaN first).
  for (uint32_t nan_bits : {0x7FC00000u, 0xFFC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu, 0xFFFFFFFFu}) {
    const float x = float_of(nan_bits);
    ASSERT_TRUE(std::isnan(x));
    EXPECT_EQ(ref::float_to_fp8_e4m3(x), 0x7F) << std::hex << nan_bits;
    fp8_matches_cuda(x);
  }
  for (float x : {0.f, -0.f, kInf, -kInf}) fp8_matches_cuda(x);
}

TEST(Fp8Conversion, RandomMagnitudesMatchCuda) {
  const std::vector<float> xs = random_magnitudes(1000000, -12.0, 6.0, 1234);
  int mismatches = 0;
  for (float x : xs) {
    if (ref::float_to_fp8_e4m3(x) != cuda_fp8(x) && ++mismatches <= 10) fp8_matches_cuda(x);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(Fp8Conversion, RandomBitPatternsMatchCuda) {
  std::mt19937 rng(99);
  int mismatches = 0;
  for (int i = 0; i < 1000000; ++i) {
    const float x = float_of(static_cast<uint32_t>(rng()));
    if (ref::float_to_fp8_e4m3(x) != cuda_fp8(x) && ++mismatches <= 10) fp8_matches_cuda(x);
  }
  EXPECT_EQ(mismatches, 0);
}

// -------------------------------------------------------------------------------------------------------
// bf16 / fp16
// -------------------------------------------------------------------------------------------------------

TEST(Bf16Fp16Conversion, EncodeMatchesCudaOnRandomAndSpecialValues) {
  std::vector<float> xs = random_magnitudes(300000, -10.0, 6.0, 7);
  std::mt19937 rng(8);
  for (int i = 0; i < 300000; ++i) xs.push_back(float_of(static_cast<uint32_t>(rng())));
  for (float x :
       {0.f, -0.f, kInf, -kInf, kNaN, -kNaN, 65504.f, 65519.f, std::nextafter(65520.f, 0.f), 65520.f, 65536.f,
        1e10f, std::ldexp(1.f, -24), std::ldexp(1.f, -25), std::ldexp(3.f, -26), std::ldexp(1.f, -14),
        std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()}) {
    xs.push_back(x);
    xs.push_back(-x);
  }
  int bf16_mismatches = 0, fp16_mismatches = 0;
  for (float x : xs) {
    if (ref::float_to_bf16(x) != cuda_bf16(x) && ++bf16_mismatches <= 10) {
      ADD_FAILURE() << "bf16 x = " << x << " got " << ref::float_to_bf16(x) << " want " << cuda_bf16(x);
    }
    if (ref::float_to_fp16(x) != cuda_fp16(x) && ++fp16_mismatches <= 10) {
      ADD_FAILURE() << "fp16 x = " << x << " got " << ref::float_to_fp16(x) << " want " << cuda_fp16(x);
    }
  }
  EXPECT_EQ(bf16_mismatches, 0);
  EXPECT_EQ(fp16_mismatches, 0);
  EXPECT_EQ(ref::float_to_fp16(65520.f), 0x7C00);  // rounds to Inf
  EXPECT_EQ(ref::float_to_fp16(std::nextafter(65520.f, 0.f)), 0x7BFF);
  EXPECT_EQ(ref::float_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_TRUE(std::isnan(ref::bf16_to_float(ref::float_to_bf16(kNaN))));
  EXPECT_TRUE(std::isnan(ref::fp16_to_float(ref::float_to_fp16(kNaN))));
}

TEST(Bf16Fp16Conversion, DecodeAllPatternsMatchCuda) {
  for (uint32_t b = 0; b < 65536; ++b) {
    const uint16_t h = static_cast<uint16_t>(b);
    __nv_bfloat16_raw braw;
    braw.x = h;
    __half_raw hraw;
    hraw.x = h;
    const float want_bf16 = __bfloat162float(__nv_bfloat16(braw));
    const float want_fp16 = __half2float(__half(hraw));
    const float got_bf16 = ref::bf16_to_float(h);
    const float got_fp16 = ref::fp16_to_float(h);
    if (std::isnan(want_bf16)) {
      EXPECT_TRUE(std::isnan(got_bf16)) << b;
    } else {
      EXPECT_EQ(bits_of(got_bf16), bits_of(want_bf16)) << b;
    }
    if (std::isnan(want_fp16)) {
      EXPECT_TRUE(std::isnan(got_fp16)) << b;
    } else {
      EXPECT_EQ(bits_of(got_fp16), bits_of(want_fp16)) << b;
    }
    // Every non-NaN pattern round-trips.
    if (!std::isnan(got_bf16)) {
      EXPECT_EQ(ref::float_to_bf16(got_bf16), h) << b;
    }
    if (!std::isnan(got_fp16)) {
      EXPECT_EQ(ref::float_to_fp16(got_fp16), h) << b;
    }
  }
}
