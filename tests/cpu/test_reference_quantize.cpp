// Tests of the CPU reference's quantizers (per_token_cast_to_fp8, per_block_cast_to_fp8 in
// include/blockgemm/reference.h): scales, shapes, accuracy, and what NaN and Inf do to a group.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "blockgemm/reference.h"
#include "reference_test_util.h"

namespace ref = blockgemm::reference;

// -------------------------------------------------------------------------------------------------------
// Quantizers
// -------------------------------------------------------------------------------------------------------

namespace {

using blockgemm::testing::bits_of;
using blockgemm::testing::kInf;
using blockgemm::testing::kNaN;

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
