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

namespace ref = blockgemm::reference;

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

uint32_t bits_of(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

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

// -------------------------------------------------------------------------------------------------------
// Quantizers
// -------------------------------------------------------------------------------------------------------

namespace {

// Values with |x| in [0.1, 1] * magnitude: after scaling they are all fp8 normals.
std::vector<float> random_matrix(int64_t rows, int64_t cols, uint32_t seed, float magnitude) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(0.1f, 1.f);
  std::bernoulli_distribution neg(0.5);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (auto& v : x) v = (neg(rng) ? -1.f : 1.f) * mag(rng) * magnitude;
  return x;
}

float scale_at(const ref::Quantized& q, int64_t r, int64_t c, bool per_block) {
  const int64_t sr = per_block ? r / ref::kGroupK : r;
  return q.scales[static_cast<size_t>(sr * q.scale_cols + c / ref::kGroupK)];
}

void check_dequant_close(const std::vector<float>& x, const ref::Quantized& q, bool per_block) {
  for (int64_t r = 0; r < q.rows; ++r) {
    for (int64_t c = 0; c < q.cols; ++c) {
      const double want = x[static_cast<size_t>(r * q.cols + c)];
      const double got =
          static_cast<double>(ref::fp8_e4m3_to_float(q.values[static_cast<size_t>(r * q.cols + c)])) *
          scale_at(q, r, c, per_block);
      ASSERT_LE(std::fabs(got - want), std::ldexp(1.0, -4) * std::fabs(want) * (1 + 1e-6))
          << "r = " << r << " c = " << c << " x = " << want << " dequant = " << got;
    }
  }
}

}  // namespace

TEST(Quantize, ZeroGroupGivesFloorScale) {
  const std::vector<float> x(2 * 256, 0.f);
  const float want_scale = 1e-4f / 448.0f;
  for (bool per_block : {false, true}) {
    const ref::Quantized q = per_block ? ref::per_block_cast_to_fp8(x.data(), 2, 256)
                                       : ref::per_token_cast_to_fp8(x.data(), 2, 256);
    for (float s : q.scales) EXPECT_EQ(bits_of(s), bits_of(want_scale));
    for (uint8_t v : q.values) EXPECT_EQ(v, 0);
  }
  // Below the floor too.
  std::vector<float> tiny(128, 1e-6f);
  tiny[5] = -2e-5f;
  const ref::Quantized q = ref::per_token_cast_to_fp8(tiny.data(), 1, 128);
  EXPECT_EQ(q.scales[0], want_scale);
  EXPECT_EQ(q.values[5], ref::float_to_fp8_e4m3(-2e-5f / want_scale));
}

TEST(Quantize, KnownMaxGivesExactScale) {
  std::vector<float> x(3 * 256);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.f;  // |x| <= 3
  x[100] = -896.f;                                                               // row 0, group 0
  const ref::Quantized t = ref::per_token_cast_to_fp8(x.data(), 3, 256);
  EXPECT_EQ(t.scales[0], 2.f);
  EXPECT_EQ(t.values[100], 0xFE);  // -448
  EXPECT_EQ(t.scales[1], 3.f / 448.f);
  EXPECT_EQ(t.values[1 * 256 + 0], ref::float_to_fp8_e4m3(x[256] / (3.f / 448.f)));
  const ref::Quantized b = ref::per_block_cast_to_fp8(x.data(), 3, 256);
  ASSERT_EQ(b.scales.size(), 2u);
  EXPECT_EQ(b.scales[0], 2.f);
  EXPECT_EQ(b.scales[1], 3.f / 448.f);
  EXPECT_EQ(b.values[100], 0xFE);
  // Every value of the block follows the formula.
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t c = 0; c < 128; ++c) {
      EXPECT_EQ(b.values[static_cast<size_t>(r * 256 + c)],
                ref::float_to_fp8_e4m3(x[static_cast<size_t>(r * 256 + c)] / 2.f));
    }
  }
}

TEST(Quantize, PerTokenShapesAndAccuracy) {
  const int64_t rows = 130, cols = 300;
  const std::vector<float> x = random_matrix(rows, cols, 11, 5.f);
  const ref::Quantized q = ref::per_token_cast_to_fp8(x.data(), rows, cols);
  EXPECT_EQ(q.rows, rows);
  EXPECT_EQ(q.cols, cols);
  EXPECT_EQ(q.scale_rows, rows);
  EXPECT_EQ(q.scale_cols, 3);
  EXPECT_EQ(q.values.size(), static_cast<size_t>(rows * cols));
  EXPECT_EQ(q.scales.size(), static_cast<size_t>(rows * 3));
  // Scale of the partial last group is computed over its 44 columns only.
  for (int64_t r = 0; r < rows; ++r) {
    float amax = 0.f;
    for (int64_t c = 256; c < cols; ++c)
      amax = std::max(amax, std::fabs(x[static_cast<size_t>(r * cols + c)]));
    EXPECT_EQ(q.scales[static_cast<size_t>(r * 3 + 2)], amax / 448.f);
  }
  check_dequant_close(x, q, false);
}

TEST(Quantize, PerBlockShapesAndAccuracy) {
  const int64_t rows = 130, cols = 300;
  const std::vector<float> x = random_matrix(rows, cols, 12, 0.03f);
  const ref::Quantized q = ref::per_block_cast_to_fp8(x.data(), rows, cols);
  EXPECT_EQ(q.scale_rows, 2);
  EXPECT_EQ(q.scale_cols, 3);
  EXPECT_EQ(q.values.size(), static_cast<size_t>(rows * cols));
  EXPECT_EQ(q.scales.size(), 6u);
  // Partial corner block: rows 128..129, cols 256..299.
  float amax = 0.f;
  for (int64_t r = 128; r < rows; ++r) {
    for (int64_t c = 256; c < cols; ++c)
      amax = std::max(amax, std::fabs(x[static_cast<size_t>(r * cols + c)]));
  }
  EXPECT_EQ(q.scales[5], amax / 448.f);
  check_dequant_close(x, q, true);
}

TEST(Quantize, EmptyAndTinyShapes) {
  const ref::Quantized e = ref::per_token_cast_to_fp8(nullptr, 0, 0);
  EXPECT_TRUE(e.values.empty());
  EXPECT_TRUE(e.scales.empty());
  const float one = -7.f;
  const ref::Quantized t = ref::per_block_cast_to_fp8(&one, 1, 1);
  ASSERT_EQ(t.scales.size(), 1u);
  EXPECT_EQ(t.scales[0], 7.f / 448.f);
  EXPECT_EQ(t.values[0], 0xFE);
}

TEST(Quantize, NaNPoisonsItsGroupOnly) {
  std::vector<float> x = random_matrix(2, 256, 13, 1.f);
  x[10] = kNaN;  // row 0, group 0
  const ref::Quantized t = ref::per_token_cast_to_fp8(x.data(), 2, 256);
  EXPECT_TRUE(std::isnan(t.scales[0]));
  for (int c = 0; c < 128; ++c) EXPECT_EQ(t.values[static_cast<size_t>(c)], 0x7F) << c;
  EXPECT_FALSE(std::isnan(t.scales[1]));
  EXPECT_FALSE(std::isnan(t.scales[2]));
  for (int c = 128; c < 512; ++c) EXPECT_NE(t.values[static_cast<size_t>(c)] & 0x7F, 0x7F) << c;

  // NaN as the first or last element of the group, and after a larger element.
  for (size_t pos : {size_t{0}, size_t{127}}) {
    std::vector<float> g(128, 1.f);
    g[64] = 100.f;
    g[pos] = -kNaN;
    const ref::Quantized q = ref::per_token_cast_to_fp8(g.data(), 1, 128);
    EXPECT_TRUE(std::isnan(q.scales[0])) << pos;
    for (uint8_t v : q.values) EXPECT_EQ(v, 0x7F);
  }

  const ref::Quantized b = ref::per_block_cast_to_fp8(x.data(), 2, 256);
  EXPECT_TRUE(std::isnan(b.scales[0]));
  EXPECT_FALSE(std::isnan(b.scales[1]));
  for (int64_t r = 0; r < 2; ++r) {
    for (int64_t c = 0; c < 128; ++c) EXPECT_EQ(b.values[static_cast<size_t>(r * 256 + c)], 0x7F);
  }
}

TEST(Quantize, InfGivesInfScaleNaNAndZeros) {
  std::vector<float> x(256, 3.f);
  x[1] = -5.f;
  x[7] = kInf;
  x[200] = -kInf;  // group 1
  x[201] = -1.f;
  for (bool per_block : {false, true}) {
    const ref::Quantized q = per_block ? ref::per_block_cast_to_fp8(x.data(), 1, 256)
                                       : ref::per_token_cast_to_fp8(x.data(), 1, 256);
    EXPECT_EQ(q.scales[0], kInf);
    EXPECT_EQ(q.scales[1], kInf);
    EXPECT_EQ(q.values[7], 0x7F);    // Inf / Inf = NaN
    EXPECT_EQ(q.values[200], 0x7F);  // -Inf / Inf = NaN
    EXPECT_EQ(q.values[0], 0x00);    // 3 / Inf = +0
    EXPECT_EQ(q.values[1], 0x80);    // -5 / Inf = -0
    EXPECT_EQ(q.values[201], 0x80);
  }
}

// -------------------------------------------------------------------------------------------------------
// GEMM
// -------------------------------------------------------------------------------------------------------

namespace {

struct GemmCase {
  int64_t m, n, k;
  bool per_row_b_scale;
  std::vector<uint8_t> a, b;
  std::vector<float> sa, sb;
};

uint8_t random_finite_fp8(std::mt19937& rng) {
  for (;;) {
    const uint8_t v = static_cast<uint8_t>(rng() & 0xFF);
    if ((v & 0x7F) != 0x7F) return v;
  }
}

GemmCase make_random_case(int64_t m, int64_t n, int64_t k, bool per_row_b_scale, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> scale(1e-3f, 2.f);
  GemmCase c{m, n, k, per_row_b_scale, {}, {}, {}, {}};
  const int64_t groups = (k + ref::kGroupK - 1) / ref::kGroupK;
  const int64_t b_scale_rows = per_row_b_scale ? n : (n + ref::kGroupK - 1) / ref::kGroupK;
  c.a.resize(static_cast<size_t>(m * k));
  c.b.resize(static_cast<size_t>(n * k));
  c.sa.resize(static_cast<size_t>(m * groups));
  c.sb.resize(static_cast<size_t>(b_scale_rows * groups));
  for (auto& v : c.a) v = random_finite_fp8(rng);
  for (auto& v : c.b) v = random_finite_fp8(rng);
  for (auto& s : c.sa) s = scale(rng);
  for (auto& s : c.sb) s = scale(rng);
  return c;
}

// Straightforward definition: dequantize each element in double, sum over k in double. Also returns
// sum |terms| per output for an error bound.
void naive_gemm(const GemmCase& c, std::vector<double>& out, std::vector<double>& abs_sum) {
  const int64_t groups = (c.k + ref::kGroupK - 1) / ref::kGroupK;
  out.assign(static_cast<size_t>(c.m * c.n), 0.0);
  abs_sum.assign(static_cast<size_t>(c.m * c.n), 0.0);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      const int64_t b_row = c.per_row_b_scale ? j : j / ref::kGroupK;
      double acc = 0.0, abs_acc = 0.0;
      for (int64_t kk = 0; kk < c.k; ++kk) {
        const int64_t g = kk / ref::kGroupK;
        const double av =
            static_cast<double>(ref::fp8_e4m3_to_float(c.a[static_cast<size_t>(i * c.k + kk)])) *
            c.sa[static_cast<size_t>(i * groups + g)];
        const double bv =
            static_cast<double>(ref::fp8_e4m3_to_float(c.b[static_cast<size_t>(j * c.k + kk)])) *
            c.sb[static_cast<size_t>(b_row * groups + g)];
        acc += av * bv;
        abs_acc += std::fabs(av * bv);
      }
      out[static_cast<size_t>(i * c.n + j)] = acc;
      abs_sum[static_cast<size_t>(i * c.n + j)] = abs_acc;
    }
  }
}

std::vector<double> run_reference(const GemmCase& c, int64_t row_begin = 0, int64_t row_end = -1,
                                  double fill = 0.0) {
  std::vector<double> out(static_cast<size_t>(c.m * c.n), fill);
  ref::blockscale_gemm(c.a.data(), c.sa.data(), c.b.data(), c.sb.data(), c.per_row_b_scale, c.m, c.n, c.k,
                       out.data(), row_begin, row_end);
  return out;
}

void expect_close_to_naive(const GemmCase& c) {
  std::vector<double> want, abs_sum;
  naive_gemm(c, want, abs_sum);
  const std::vector<double> got = run_reference(c);
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_LE(std::fabs(got[i] - want[i]), 1e-13 * abs_sum[i] + 1e-300)
        << "index " << i << " got " << got[i] << " want " << want[i] << " (m=" << c.m << " n=" << c.n
        << " k=" << c.k << " per_row_b_scale=" << c.per_row_b_scale << ")";
  }
}

}  // namespace

TEST(ReferenceGemm, MatchesNaiveBlockBScale) {
  expect_close_to_naive(make_random_case(1, 1, 128, false, 1));
  expect_close_to_naive(make_random_case(5, 200, 384, false, 2));
  expect_close_to_naive(make_random_case(33, 130, 256, false, 3));
  expect_close_to_naive(make_random_case(70, 257, 512, false, 4));
}

TEST(ReferenceGemm, MatchesNaivePerRowBScale) {
  expect_close_to_naive(make_random_case(1, 3, 128, true, 5));
  expect_close_to_naive(make_random_case(7, 129, 384, true, 6));
  expect_close_to_naive(make_random_case(65, 66, 640, true, 7));
}

TEST(ReferenceGemm, PartialLastKGroup) {
  // K not a multiple of 128: the scale stride is ceil(K / 128) and the last group is partial.
  expect_close_to_naive(make_random_case(9, 70, 200, false, 8));
  expect_close_to_naive(make_random_case(4, 5, 1, true, 9));
}

TEST(ReferenceGemm, ExactIntegerCase) {
  const int64_t m = 37, n = 150, k = 512, groups = 4;
  std::mt19937 rng(21);
  std::uniform_int_distribution<int> value(-16, 16);  // exactly representable in e4m3
  std::uniform_int_distribution<int> expo(-4, 4);
  GemmCase c{m, n, k, false, {}, {}, {}, {}};
  std::vector<int> ai(static_cast<size_t>(m * k)), bi(static_cast<size_t>(n * k));
  std::vector<int> ea(static_cast<size_t>(m * groups)), eb(static_cast<size_t>(2 * groups));
  for (auto& v : ai) v = value(rng);
  for (auto& v : bi) v = value(rng);
  for (auto& e : ea) e = expo(rng);
  for (auto& e : eb) e = expo(rng);
  for (int v : ai) c.a.push_back(ref::float_to_fp8_e4m3(static_cast<float>(v)));
  for (int v : bi) c.b.push_back(ref::float_to_fp8_e4m3(static_cast<float>(v)));
  for (int e : ea) c.sa.push_back(std::ldexp(1.f, e));
  for (int e : eb) c.sb.push_back(std::ldexp(1.f, e));
  for (size_t i = 0; i < ai.size(); ++i) ASSERT_EQ(ref::fp8_e4m3_to_float(c.a[i]), ai[i]);
  const std::vector<double> got = run_reference(c);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      // Integer result in units of 2^-8: sum a*b * 2^(ea+eb+8).
      int64_t acc = 0;
      for (int64_t kk = 0; kk < k; ++kk) {
        const int64_t g = kk / 128;
        const int shift =
            ea[static_cast<size_t>(i * groups + g)] + eb[static_cast<size_t>((j / 128) * groups + g)] + 8;
        acc += static_cast<int64_t>(ai[static_cast<size_t>(i * k + kk)]) *
               bi[static_cast<size_t>(j * k + kk)] * (int64_t{1} << shift);
      }
      ASSERT_EQ(got[static_cast<size_t>(i * n + j)], std::ldexp(static_cast<double>(acc), -8))
          << i << " " << j;
    }
  }
}

TEST(ReferenceGemm, RowRangeLeavesOtherRowsUntouched) {
  const GemmCase c = make_random_case(50, 140, 256, false, 31);
  const std::vector<double> full = run_reference(c);
  const double sentinel = -12345.5;
  const std::vector<double> part = run_reference(c, 3, 41, sentinel);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) {
      const double v = part[static_cast<size_t>(i * c.n + j)];
      if (i >= 3 && i < 41) {
        ASSERT_EQ(v, full[static_cast<size_t>(i * c.n + j)]) << i << " " << j;
      } else {
        ASSERT_EQ(v, sentinel) << i << " " << j;
      }
    }
  }
  // An empty range writes nothing; row_end = -1 means M.
  const std::vector<double> none = run_reference(c, 10, 10, sentinel);
  for (double v : none) ASSERT_EQ(v, sentinel);
  const std::vector<double> tail = run_reference(c, 45, -1, sentinel);
  for (int64_t j = 0; j < c.n; ++j) {
    EXPECT_EQ(tail[static_cast<size_t>(44 * c.n + j)], sentinel);
    EXPECT_EQ(tail[static_cast<size_t>(49 * c.n + j)], full[static_cast<size_t>(49 * c.n + j)]);
  }
}

TEST(ReferenceGemm, DeterministicAcrossCalls) {
  const GemmCase c = make_random_case(96, 300, 768, true, 41);
  const std::vector<double> x = run_reference(c);
  const std::vector<double> y = run_reference(c);
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size() * sizeof(double)), 0);
}

TEST(ReferenceGemm, NaNPropagates) {
  GemmCase c = make_random_case(4, 8, 256, false, 51);
  c.a[static_cast<size_t>(1 * c.k + 5)] = 0x7F;  // NaN in row 1, group 0
  c.sb[1] = kNaN;                                // b scale of block row 0, group 1: every output
  std::vector<double> out = run_reference(c);
  for (double v : out) EXPECT_TRUE(std::isnan(v));
  c.sb[1] = 1.f;
  out = run_reference(c);
  for (int64_t i = 0; i < c.m; ++i) {
    for (int64_t j = 0; j < c.n; ++j) EXPECT_EQ(std::isnan(out[static_cast<size_t>(i * c.n + j)]), i == 1);
  }
}

// -------------------------------------------------------------------------------------------------------
// calc_diff
// -------------------------------------------------------------------------------------------------------

TEST(CalcDiff, BasicProperties) {
  std::mt19937 rng(61);
  std::normal_distribution<double> normal;
  std::vector<double> x(1000), y(1000), neg(1000), zero(1000, 0.0), scaled(1000);
  for (size_t i = 0; i < x.size(); ++i) {
    x[i] = normal(rng);
    y[i] = x[i] * (1 + 1e-3 * normal(rng));
    neg[i] = -x[i];
    scaled[i] = 1e6 * x[i];
  }
  EXPECT_EQ(ref::calc_diff(x.data(), x.data(), 1000), 0.0);
  const double d = ref::calc_diff(x.data(), y.data(), 1000);
  EXPECT_GT(d, 0.0);
  EXPECT_LT(d, 1e-5);
  EXPECT_EQ(ref::calc_diff(x.data(), y.data(), 1000), ref::calc_diff(y.data(), x.data(), 1000));
  EXPECT_DOUBLE_EQ(ref::calc_diff(x.data(), neg.data(), 1000), 2.0);
  EXPECT_DOUBLE_EQ(ref::calc_diff(x.data(), zero.data(), 1000), 1.0);
  EXPECT_EQ(ref::calc_diff(zero.data(), zero.data(), 1000), 0.0);
  EXPECT_EQ(ref::calc_diff(x.data(), y.data(), 0), 0.0);
  // Invariant under scaling both inputs.
  std::vector<double> y_scaled(1000);
  for (size_t i = 0; i < y.size(); ++i) y_scaled[i] = 1e6 * y[i];
  EXPECT_NEAR(ref::calc_diff(scaled.data(), y_scaled.data(), 1000), d, 1e-12);
  y[17] = std::numeric_limits<double>::quiet_NaN();
  EXPECT_TRUE(std::isnan(ref::calc_diff(x.data(), y.data(), 1000)));
}
