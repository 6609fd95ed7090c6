// Tests of the CPU reference's GEMM (blockscale_gemm in include/blockgemm/reference.h) against a naive
// double-precision definition and exact integer cases, and of calc_diff.
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

// -------------------------------------------------------------------------------------------------------
// GEMM
// -------------------------------------------------------------------------------------------------------

namespace {

using blockgemm::testing::kNaN;

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
