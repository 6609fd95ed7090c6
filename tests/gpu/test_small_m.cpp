// GPU tests for small M: the swapAB kernels and split-K, every M from 1 to 64 against the CPU reference.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "api/validate.h"
#include "blockgemm/quantize.h"
#include "gpu_test_util.h"
#include "heuristics/heuristics.h"
#include "kernels/launch.h"

namespace blockgemm::testing {
namespace {

constexpr double kMaxDiff = 1e-3;
constexpr int64_t kMaxM = 64;

// One random 64-row problem per (N, K, weight-scale kind, input-scale layout); M = 1..64 runs on its
// first M rows (views with the same strides: a column-major scale of stride 64 >= M stays valid). The
// reference rows do not depend on M, so they are computed once. Out is the first M rows of a 64-row
// buffer poisoned before every run: rows past M must stay NaN (nothing written out of bounds).
class SmallMSweep
    : public ::testing::TestWithParam<std::tuple<std::pair<int64_t, int64_t>, bool, ScaleLayout>> {};

TEST_P(SmallMSweep, EveryMFrom1To64MatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const auto [nk, per_row, layout] = GetParam();
  ProblemSpec spec{kMaxM, nk.first, nk.second};
  spec.per_row_weight_scale = per_row;
  spec.input_scale_layout = layout;
  spec.out_dtype = DType::kFloat32;  // the widest: the buffer holds M x N of any out dtype
  spec.seed = static_cast<uint64_t>(nk.first * 131 + nk.second + (per_row ? 7 : 0));
  Problem p;
  make_problem(spec, p);
  const int64_t n = spec.n, k = spec.k;
  std::vector<double> ref(static_cast<std::size_t>(kMaxM * n));
  reference::blockscale_gemm(p.a.values.data(), p.a.scales.data(), p.b.values.data(), p.b.scales.data(),
                             per_row, kMaxM, n, k, ref.data(), 0, kMaxM);

  const DType dtypes[] = {DType::kBFloat16, DType::kFloat16, DType::kFloat32};
  std::vector<uint8_t> raw(p.out_dev.bytes());
  for (int64_t m = 1; m <= kMaxM; ++m) {
    const DType dtype = dtypes[m % 3];
    SCOPED_TRACE("M=" + std::to_string(m) + " " + dtype_name(dtype) + " plan: " + describe_plan(m, n, k));
    TensorView input = p.input, input_scale = p.input_scale;
    input.shape[0] = m;
    input_scale.shape[0] = m;
    const TensorView out = TensorView::matrix(p.out_dev.get(), dtype, m, n, p.input.device);
    poison_out(p);
    fp8_blockscale_gemm_sm90(input, p.weight, input_scale, p.weight_scale, out);
    check_cuda(cudaDeviceSynchronize(), "gemm");
    p.out_dev.download(raw.data(), raw.size());

    std::vector<double> got, want;
    int64_t nan_count = 0, written_past_m = 0;
    for (int64_t r = 0; r < m; ++r)
      for (int64_t c = 0; c < n; ++c) {
        const double v = element_to_double(raw, static_cast<std::size_t>(r * n + c), dtype);
        nan_count += std::isnan(v);
        got.push_back(v);
        want.push_back(ref[r * n + c]);
      }
    const int64_t buffer_elements =
        static_cast<int64_t>(raw.size()) / static_cast<int64_t>(dtype_size(dtype));
    for (int64_t i = m * n; i < buffer_elements; ++i)
      written_past_m += !std::isnan(element_to_double(raw, static_cast<std::size_t>(i), dtype));
    EXPECT_EQ(nan_count, 0) << "unwritten or NaN outputs";
    EXPECT_EQ(written_past_m, 0) << "elements written past row M";
    EXPECT_LT(reference::calc_diff(got.data(), want.data(), static_cast<int64_t>(got.size())), kMaxDiff);
    EXPECT_LE(max_scaled_error(got.data(), want.data(), static_cast<int64_t>(got.size())), kMaxScaledError);
    if (HasFailure()) break;  // one M's report is enough to debug from
  }
}

INSTANTIATE_TEST_SUITE_P(
    Decode, SmallMSweep,
    ::testing::Combine(
        ::testing::Values(
            std::make_pair<int64_t, int64_t>(576, 512), std::make_pair<int64_t, int64_t>(576, 2048),
            std::make_pair<int64_t, int64_t>(576, 7168), std::make_pair<int64_t, int64_t>(2112, 512),
            std::make_pair<int64_t, int64_t>(2112, 2048), std::make_pair<int64_t, int64_t>(2112, 7168),
            std::make_pair<int64_t, int64_t>(4096, 512), std::make_pair<int64_t, int64_t>(4096, 2048),
            std::make_pair<int64_t, int64_t>(4096, 7168), std::make_pair<int64_t, int64_t>(7168, 512),
            std::make_pair<int64_t, int64_t>(7168, 2048), std::make_pair<int64_t, int64_t>(7168, 7168)),
        ::testing::Bool(), ::testing::Values(ScaleLayout::kRowMajor, ScaleLayout::kColumnMajor)),
    [](const auto& info) {
      return "N" + std::to_string(std::get<0>(info.param).first) + "_K" +
             std::to_string(std::get<0>(info.param).second) +
             (std::get<1>(info.param) ? "_PerRow" : "_PerBlock") +
             (std::get<2>(info.param) == ScaleLayout::kRowMajor ? "_ScaleRowMajor" : "_ScaleColMajor");
    });

// Every swapAB tile with every split-K factor it can take, whether or not the heuristics pick it: tails in
// M and N, an uneven share of K blocks, and 2 clusters for the 12 tiles (each runs several) or 16 (some
// run none and must still exit cleanly).
class SwapSplitK : public ::testing::TestWithParam<std::tuple<int, int, bool, int>> {};

TEST_P(SwapSplitK, MatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const auto [tile_index, k_splits, per_row, clusters] = GetParam();
  const heuristics::TileShape tile = heuristics::kTileShapes[tile_index];
  ProblemSpec spec{tile.block_m * 2 + 3, tile.block_n * 3 + 16, 128 * 11};
  spec.per_row_weight_scale = per_row;
  spec.input_scale_layout = per_row ? ScaleLayout::kRowMajor : ScaleLayout::kColumnMajor;
  spec.out_dtype = k_splits % 2 ? DType::kBFloat16 : DType::kFloat32;
  spec.seed = 300 + tile_index * 10 + k_splits;
  Problem p;
  make_problem(spec, p);
  poison_out(p);
  const kernels::Fp8GemmArgs args =
      api::validate_gemm_args(p.input, p.weight, p.input_scale, p.weight_scale, p.out, std::nullopt);
  heuristics::GemmPlan plan =
      heuristics::make_plan(tile, k_splits, spec.m, spec.n, spec.k, heuristics::DeviceModel{});
  plan.grid = clusters * k_splits;
  kernels::launch_fp8_gemm(plan, args, nullptr);
  check_cuda(cudaDeviceSynchronize(), "gemm");
  const CheckResult r = check_against_reference(p);
  EXPECT_EQ(r.nan_count, 0) << spec.str() << " " << plan.describe();
  EXPECT_LT(r.diff, kMaxDiff) << spec.str() << " " << plan.describe();
  EXPECT_LE(r.max_scaled_error, kMaxScaledError) << spec.str() << " " << plan.describe();
}

std::vector<int> swap_tile_indices() {
  std::vector<int> indices;
  for (int i = 0; i < heuristics::kNumTileShapes; ++i)
    if (heuristics::kTileShapes[i].swap_ab) indices.push_back(i);
  return indices;
}

INSTANTIATE_TEST_SUITE_P(Compiled, SwapSplitK,
                         ::testing::Combine(::testing::ValuesIn(swap_tile_indices()),
                                            ::testing::Values(1, 2, 3, 5, 8), ::testing::Bool(),
                                            ::testing::Values(2, 16)),
                         [](const auto& info) {
                           // scripts/gpu_check.sh selects the split-K cases by the "_S<k>_" part.
                           const heuristics::TileShape tile =
                               heuristics::kTileShapes[std::get<0>(info.param)];
                           return "T" + std::to_string(tile.block_m) + "x" + std::to_string(tile.block_n) +
                                  "_S" + std::to_string(std::get<1>(info.param)) + "_" +
                                  (std::get<2>(info.param) ? "PerRow" : "PerBlock") + "_C" +
                                  std::to_string(std::get<3>(info.param));
                         });

// Split-K sums the ranks' partials in rank order: the result must not depend on which finished first.
TEST(SwapSplitK, RepeatedRunsAreBitwiseEqual) {
  BLOCKGEMM_REQUIRE_HOPPER();
  ProblemSpec spec{5, 2112, 7168};
  spec.seed = 41;
  Problem p;
  make_problem(spec, p);
  std::vector<uint8_t> first(p.out_dev.bytes()), again(p.out_dev.bytes());
  for (int run = 0; run < 20; ++run) {
    poison_out(p);
    fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out);
    check_cuda(cudaDeviceSynchronize(), "gemm");
    p.out_dev.download(run == 0 ? first.data() : again.data(), first.size());
    if (run > 0) {
      ASSERT_EQ(first, again) << "run " << run << ", plan " << describe_plan(5, 2112, 7168);
    }
  }
}

// A bf16 input quantized inside the swapAB kernel (what the API runs for a few bf16 tokens) must give
// bitwise the output of per_token_cast_to_fp8 followed by the fp8 kernel with the same plan: the cast's
// arithmetic is shared, so the operands and everything after them are the same. Every swapAB tile of up to
// 32 tokens, with and without split-K, both weight-scale kinds, M from 1 to the tile's rows (rows past M
// zero-filled by TMA); 2 clusters, so that each runs several tiles and the quantizer warps' turns span tiles.
// Some input rows are all zero (the 1e-4 amax floor) and one group is far larger than the rest. The
// `special` cases put NaN, +-Inf and -0 into rows (what lane r's shuffled divisor of an Inf or NaN scale must
// get right, and a NaN must stay in its own row); the reference comparison then covers the clean rows.
class InKernelInputQuantization : public ::testing::TestWithParam<std::tuple<int, int, bool, int, bool>> {};

TEST_P(InKernelInputQuantization, BitwiseEqualsQuantizerThenFp8Kernel) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const auto [tile_index, k_splits, per_row, m, special] = GetParam();
  const heuristics::TileShape tile = heuristics::kTileShapes[tile_index];
  ProblemSpec spec{m, tile.block_n * 3 + 16, 128 * 11};
  spec.per_row_weight_scale = per_row;
  spec.out_dtype = k_splits > 1 ? DType::kFloat32 : DType::kBFloat16;
  spec.seed = 700 + tile_index * 10 + k_splits;
  Problem p;  // its fp8 weight and scales; the input is the bf16 one below
  make_problem(spec, p);
  const int64_t n = spec.n, k = spec.k, kg = k / 128;

  std::mt19937_64 rng(spec.seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<float> a(static_cast<std::size_t>(m * k));
  std::vector<uint16_t> a_bits(a.size());
  const float inf = std::numeric_limits<float>::infinity();
  // Rows r % 4 == 0 hold a NaN, r % 4 == 1 +Inf and -Inf in two groups, r % 4 == 2 a group of -0 (special
  // cases only); the others are clean.
  const auto clean_row = [&](int64_t r) { return !special || r % 4 >= 2; };
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < k; ++c) {
      float x = r % 5 == 3 ? 0.f : (r == 0 && c / 128 == 2 ? 3000.f : 1.f) * dist(rng);
      if (special && r % 4 == 0 && c == 128 + 5) x = std::numeric_limits<float>::quiet_NaN();
      if (special && r % 4 == 1 && c == 256 + 7) x = inf;
      if (special && r % 4 == 1 && c == 384 + 1) x = -inf;
      if (special && r % 4 == 2 && c < 128) x = -0.f;
      a_bits[r * k + c] = reference::float_to_bf16(x);
      a[r * k + c] = reference::bf16_to_float(a_bits[r * k + c]);
    }
  DeviceBuffer a_dev(a_bits.size() * 2), a_q_dev(a.size()), a_scale_dev(static_cast<std::size_t>(m * kg) * 4);
  a_dev.upload(a_bits.data(), a_bits.size() * 2);
  const TensorView input = TensorView::matrix(a_dev.get(), DType::kBFloat16, m, k, 0);
  const TensorView input_q = TensorView::matrix(a_q_dev.get(), DType::kFloat8E4M3, m, k, 0);
  const TensorView input_scale = TensorView::matrix(a_scale_dev.get(), DType::kFloat32, m, kg, 0);

  heuristics::GemmPlan plan = heuristics::make_plan(tile, k_splits, m, n, k, heuristics::DeviceModel{});
  plan.grid = 2 * k_splits;
  std::vector<uint8_t> in_kernel(p.out_dev.bytes()), separate(p.out_dev.bytes());

  poison_out(p);
  kernels::Fp8GemmArgs args =
      api::validate_gemm_args(input, p.weight, std::nullopt, p.weight_scale, p.out, std::nullopt);
  ASSERT_TRUE(args.quantize_input);
  args.quantize_input = false;
  args.quantize_input_in_kernel = true;
  kernels::launch_fp8_gemm(plan, args, nullptr);
  check_cuda(cudaDeviceSynchronize(), "gemm quantizing its input");
  p.out_dev.download(in_kernel.data(), in_kernel.size());
  const std::vector<double> got = download_out(p);

  poison_out(p);
  per_token_cast_to_fp8(input, input_q, input_scale);
  kernels::Fp8GemmArgs fp8_args =
      api::validate_gemm_args(input_q, p.weight, input_scale, p.weight_scale, p.out, std::nullopt);
  kernels::launch_fp8_gemm(plan, fp8_args, nullptr);
  check_cuda(cudaDeviceSynchronize(), "quantizer then fp8 gemm");
  p.out_dev.download(separate.data(), separate.size());
  EXPECT_EQ(std::memcmp(in_kernel.data(), separate.data(), separate.size()), 0) << plan.describe();

  // And the clean rows against the CPU: the reference quantizer, then the block-scaled product in double;
  // every element written (the output was poisoned with NaN), none NaN.
  const reference::Quantized a_q = reference::per_token_cast_to_fp8(a.data(), m, k);
  std::vector<double> ref(static_cast<std::size_t>(m * n));
  reference::blockscale_gemm(a_q.values.data(), a_q.scales.data(), p.b.values.data(), p.b.scales.data(),
                             per_row, m, n, k, ref.data(), 0, m);
  std::vector<double> got_clean, ref_clean;
  for (int64_t r = 0; r < m; ++r)
    if (clean_row(r)) {
      got_clean.insert(got_clean.end(), got.begin() + r * n, got.begin() + (r + 1) * n);
      ref_clean.insert(ref_clean.end(), ref.begin() + r * n, ref.begin() + (r + 1) * n);
    }
  ASSERT_FALSE(got_clean.empty());
  const auto clean = static_cast<int64_t>(got_clean.size());
  EXPECT_EQ(std::count_if(got_clean.begin(), got_clean.end(), [](double x) { return std::isnan(x); }), 0)
      << plan.describe();
  EXPECT_LT(reference::calc_diff(got_clean.data(), ref_clean.data(), clean), kMaxDiff) << plan.describe();
  EXPECT_LE(max_scaled_error(got_clean.data(), ref_clean.data(), clean), kMaxScaledError) << plan.describe();
  if (special && m > 1) {  // a NaN or Inf input row poisons its own output row only
    EXPECT_TRUE(std::isnan(got[0])) << plan.describe();
    EXPECT_FALSE(std::isfinite(got[n])) << plan.describe();
  }
}

std::vector<std::tuple<int, int, bool, int, bool>> in_kernel_quantization_cases() {
  std::vector<std::tuple<int, int, bool, int, bool>> cases;
  for (int tile : swap_tile_indices())
    for (int splits : {1, 3, 5})
      for (bool per_row : {false, true})
        for (int m : {1, 2, 5, 8, 9, 13, 16, 17, 24, 29, 32})
          if (m <= heuristics::kTileShapes[tile].block_m && heuristics::kTileShapes[tile].block_m <= 32) {
            cases.emplace_back(tile, splits, per_row, m, false);
            if (m == heuristics::kTileShapes[tile].block_m && splits < 5)
              cases.emplace_back(tile, splits, per_row, m, true);
          }
  return cases;
}

INSTANTIATE_TEST_SUITE_P(Compiled, InKernelInputQuantization,
                         ::testing::ValuesIn(in_kernel_quantization_cases()), [](const auto& info) {
                           const heuristics::TileShape tile =
                               heuristics::kTileShapes[std::get<0>(info.param)];
                           return "T" + std::to_string(tile.block_m) + "x" + std::to_string(tile.block_n) +
                                  "_S" + std::to_string(std::get<1>(info.param)) + "_" +
                                  (std::get<2>(info.param) ? "PerRow" : "PerBlock") + "_M" +
                                  std::to_string(std::get<3>(info.param)) +
                                  (std::get<4>(info.param) ? "_NanInfNegZero" : "");
                         });

}  // namespace
}  // namespace blockgemm::testing
