// GPU tests: the kernel against the CPU reference on fresh random inputs, output poisoned with NaN first.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "api/validate.h"
#include "gpu_test_util.h"
#include "heuristics/heuristics.h"
#include "kernels/launch.h"

namespace blockgemm::testing {
namespace {

constexpr double kMaxDiff = 1e-3;

void run_and_check(const ProblemSpec& spec) {
  Problem p;
  make_problem(spec, p);
  poison_out(p);
  fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out);
  check_cuda(cudaDeviceSynchronize(), "gemm");
  const CheckResult r = check_against_reference(p);
  EXPECT_EQ(r.nan_count, 0) << spec.str() << " (unwritten or NaN outputs)";
  EXPECT_EQ(r.padding_written, 0) << spec.str() << " (wrote past N into the row padding)";
  EXPECT_LT(r.diff, kMaxDiff) << spec.str() << " plan: " << describe_plan(spec.m, spec.n, spec.k);
}

// ---- the shape matrix of the issue: every M class x the DeepSeek-V3 projections -----------------------

class GemmShapes : public ::testing::TestWithParam<std::tuple<int64_t, std::pair<int64_t, int64_t>>> {};

TEST_P(GemmShapes, MatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const auto [m, nk] = GetParam();
  // Cycle the scale kinds, scale layouts and out dtypes over the matrix so every one meets many shapes.
  const uint64_t index = static_cast<uint64_t>(m * 31 + nk.first * 7 + nk.second);
  ProblemSpec spec{m, nk.first, nk.second};
  spec.per_row_weight_scale = index % 2 == 1;
  spec.input_scale_layout = (index / 2) % 2 ? ScaleLayout::kColumnMajor : ScaleLayout::kRowMajor;
  const DType dtypes[] = {DType::kBFloat16, DType::kFloat16, DType::kFloat32};
  spec.out_dtype = dtypes[(index / 4) % 3];
  spec.seed = index;
  run_and_check(spec);
}

INSTANTIATE_TEST_SUITE_P(DeepSeekV3, GemmShapes,
                         ::testing::Combine(::testing::Values<int64_t>(1, 2, 7, 16, 31, 32, 33, 64, 100, 128,
                                                                       255, 256, 1000, 4096),
                                            ::testing::Values(std::make_pair<int64_t, int64_t>(2112, 7168),
                                                              std::make_pair<int64_t, int64_t>(576, 7168),
                                                              std::make_pair<int64_t, int64_t>(7168, 2048))),
                         [](const auto& info) {
                           return "M" + std::to_string(std::get<0>(info.param)) + "_N" +
                                  std::to_string(std::get<1>(info.param).first) + "_K" +
                                  std::to_string(std::get<1>(info.param).second);
                         });

// ---- every weight-scale kind x input-scale layout x out dtype on shapes with tails --------------------

class GemmVariants : public ::testing::TestWithParam<
                         std::tuple<bool, ScaleLayout, DType, std::tuple<int64_t, int64_t, int64_t>>> {};

TEST_P(GemmVariants, MatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const auto [per_row, layout, dtype, shape] = GetParam();
  ProblemSpec spec{std::get<0>(shape), std::get<1>(shape), std::get<2>(shape)};
  spec.per_row_weight_scale = per_row;
  spec.input_scale_layout = layout;
  spec.out_dtype = dtype;
  spec.seed = 977;
  run_and_check(spec);
}

INSTANTIATE_TEST_SUITE_P(
    AllKinds, GemmVariants,
    ::testing::Combine(::testing::Bool(),
                       ::testing::Values(ScaleLayout::kRowMajor, ScaleLayout::kColumnMajor),
                       ::testing::Values(DType::kBFloat16, DType::kFloat16, DType::kFloat32),
                       ::testing::Values(std::make_tuple<int64_t, int64_t, int64_t>(200, 336, 512),
                                         std::make_tuple<int64_t, int64_t, int64_t>(5, 1040, 384),
                                         std::make_tuple<int64_t, int64_t, int64_t>(130, 16, 128),
                                         std::make_tuple<int64_t, int64_t, int64_t>(67, 48, 1280))));

// ---- exactness: integer data and power-of-two scales leave nothing to round --------------------------

TEST(GemmExact, IntegerDataPowerOfTwoScalesIsExact) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t m = 150, n = 272, k = 512, kg = k / 128;
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> value(-3, 3), exponent(-2, 2);
  reference::Quantized a, b;
  a.rows = m, a.cols = k, a.scale_rows = m, a.scale_cols = kg;
  b.rows = n, b.cols = k, b.scale_rows = (n + 127) / 128, b.scale_cols = kg;
  for (int64_t i = 0; i < m * k; ++i) a.values.push_back(reference::float_to_fp8_e4m3(float(value(rng))));
  for (int64_t i = 0; i < n * k; ++i) b.values.push_back(reference::float_to_fp8_e4m3(float(value(rng))));
  for (int64_t i = 0; i < m * kg; ++i) a.scales.push_back(std::ldexp(1.f, exponent(rng)));
  for (int64_t i = 0; i < b.scale_rows * kg; ++i) b.scales.push_back(std::ldexp(1.f, exponent(rng)));

  DeviceBuffer a_dev(a.values.size()), b_dev(b.values.size()), sa_dev(a.scales.size() * 4),
      sb_dev(b.scales.size() * 4), out_dev(static_cast<std::size_t>(m * n) * 4);
  a_dev.upload(a.values.data(), a.values.size());
  b_dev.upload(b.values.data(), b.values.size());
  sa_dev.upload(a.scales.data(), a.scales.size() * 4);
  sb_dev.upload(b.scales.data(), b.scales.size() * 4);
  check_cuda(cudaMemset(out_dev.get(), 0xFF, out_dev.bytes()), "poison");
  fp8_blockscale_gemm_sm90(TensorView::matrix(a_dev.get(), DType::kFloat8E4M3, m, k, 0),
                           TensorView::matrix(b_dev.get(), DType::kFloat8E4M3, n, k, 0),
                           TensorView::matrix(sa_dev.get(), DType::kFloat32, m, kg, 0),
                           TensorView::matrix(sb_dev.get(), DType::kFloat32, b.scale_rows, kg, 0),
                           TensorView::matrix(out_dev.get(), DType::kFloat32, m, n, 0));
  check_cuda(cudaDeviceSynchronize(), "gemm");
  std::vector<float> out(static_cast<std::size_t>(m * n));
  out_dev.download(out.data(), out.size() * 4);
  std::vector<double> ref(out.size());
  reference::blockscale_gemm(a.values.data(), a.scales.data(), b.values.data(), b.scales.data(), false, m, n,
                             k, ref.data());
  int64_t mismatches = 0;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (static_cast<double>(out[i]) != ref[i] && mismatches++ < 5)
      ADD_FAILURE() << "element " << i << ": " << out[i] << " != " << ref[i];
  EXPECT_EQ(mismatches, 0);
}

// ---- stability: same inputs, same bits; eager and graph replay agree --------------------------------

TEST(GemmStability, RepeatedRunsAndGraphReplayAreBitwiseEqual) {
  BLOCKGEMM_REQUIRE_HOPPER();
  Problem p;
  make_problem({513, 2112, 1024, false, ScaleLayout::kColumnMajor, DType::kBFloat16, 0, 4}, p);
  std::vector<uint8_t> first(p.out_dev.bytes()), again(p.out_dev.bytes());
  poison_out(p);
  fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out);
  check_cuda(cudaDeviceSynchronize(), "gemm");
  p.out_dev.download(first.data(), first.size());

  for (int repeat = 0; repeat < 3; ++repeat) {
    poison_out(p);
    fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out);
    check_cuda(cudaDeviceSynchronize(), "gemm");
    p.out_dev.download(again.data(), again.size());
    EXPECT_EQ(std::memcmp(first.data(), again.data(), first.size()), 0) << "run " << repeat;
  }

  // Captured into a graph on a non-default stream: no host synchronisation or allocation may happen.
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out, std::nullopt, stream);
  check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
  check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  for (int replay = 0; replay < 2; ++replay) {
    poison_out(p);
    check_cuda(cudaGraphLaunch(exec, stream), "replay");
    check_cuda(cudaStreamSynchronize(stream), "replay sync");
    p.out_dev.download(again.data(), again.size());
    EXPECT_EQ(std::memcmp(first.data(), again.data(), first.size()), 0) << "replay " << replay;
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(GemmLayouts, PaddedOutRowsLeavePaddingUntouched) {
  BLOCKGEMM_REQUIRE_HOPPER();
  run_and_check({77, 208, 640, true, ScaleLayout::kRowMajor, DType::kBFloat16, 24, 5});
  run_and_check({300, 96, 256, false, ScaleLayout::kColumnMajor, DType::kFloat32, 8, 6});
}

TEST(GemmLayouts, ZeroRowsIsANoOp) {
  BLOCKGEMM_REQUIRE_HOPPER();
  Problem p;
  make_problem({0, 128, 256, false, ScaleLayout::kRowMajor, DType::kBFloat16, 0, 7}, p);
  EXPECT_NO_THROW(fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out));
  check_cuda(cudaDeviceSynchronize(), "noop");
}

TEST(GemmApi, AllocatingFormReturnsBf16ByDefault) {
  BLOCKGEMM_REQUIRE_HOPPER();
  Problem p;
  make_problem({45, 256, 384, false, ScaleLayout::kRowMajor, DType::kBFloat16, 0, 8}, p);
  poison_out(p);
  fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out);
  DeviceTensor allocated = fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale);
  check_cuda(cudaDeviceSynchronize(), "gemm");
  EXPECT_EQ(allocated.view().dtype, DType::kBFloat16);
  EXPECT_EQ(allocated.view().rows(), 45);
  EXPECT_EQ(allocated.view().cols(), 256);
  std::vector<uint8_t> expected(p.out_dev.bytes()), got(p.out_dev.bytes());
  p.out_dev.download(expected.data(), expected.size());
  check_cuda(cudaMemcpy(got.data(), allocated.data(), got.size(), cudaMemcpyDeviceToHost), "download");
  EXPECT_EQ(std::memcmp(expected.data(), got.data(), got.size()), 0);
}

// ---- every compiled kernel, whether or not the heuristics currently pick it ---------------------------

// Runs `tile` on a fresh problem (output poisoned first) with a persistent grid of `clusters` clusters, and
// checks it against the CPU reference.
void expect_tile_matches_reference(const heuristics::TileShape& tile, const ProblemSpec& spec, int clusters) {
  Problem p;
  make_problem(spec, p);
  poison_out(p);
  const kernels::Fp8GemmArgs args =
      api::validate_gemm_args(p.input, p.weight, p.input_scale, p.weight_scale, p.out, std::nullopt);
  heuristics::GemmPlan plan;
  plan.tile = tile;
  plan.num_tiles = heuristics::num_tiles_launched(tile, spec.m, spec.n);
  plan.grid = clusters * tile.multicast;
  kernels::launch_fp8_gemm(plan, args, nullptr);
  check_cuda(cudaDeviceSynchronize(), "gemm");
  const CheckResult r = check_against_reference(p);
  const std::string where = spec.str() + " tile " + std::to_string(tile.block_m) + "x" +
                            std::to_string(tile.block_n) + "x" + std::to_string(tile.multicast) +
                            (tile.multicast_a ? "a" : "");
  EXPECT_EQ(r.nan_count, 0) << where;
  EXPECT_LT(r.diff, kMaxDiff) << where;
  EXPECT_LE(r.max_scaled_error, kMaxScaledError) << where;
}

class EveryTileShape : public ::testing::TestWithParam<std::tuple<int, bool, DType>> {};

TEST_P(EveryTileShape, MatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const auto [tile_index, per_row, dtype] = GetParam();
  const heuristics::TileShape tile = heuristics::kTileShapes[tile_index];
  // block_m * 3 + 5 rows: an odd number of row blocks, so multicast clusters get a padding tile.
  // Tails in M and N for this tile, several tiles per CTA (grid smaller than the tile count).
  ProblemSpec spec{tile.block_m * 3 + 5, tile.block_n * 5 + 16, 640};
  spec.per_row_weight_scale = per_row;
  spec.input_scale_layout = per_row ? ScaleLayout::kColumnMajor : ScaleLayout::kRowMajor;
  spec.out_dtype = dtype;
  spec.seed = 100 + tile_index;
  expect_tile_matches_reference(tile, spec, 4);  // fewer CTAs than tiles: every CTA runs several
}

// Tiles that straddle two 128x128 weight blocks take the second block's scale from the column where it
// starts, which depends on the tile's offset inside its first block. N = 2112 ends inside a block (2048 +
// 64), so the last tile's second block is partly past N: its scale must still be read, not zeroed.
class TwoBlockWeightScale : public ::testing::TestWithParam<int> {};

TEST_P(TwoBlockWeightScale, EveryOffsetMatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const heuristics::TileShape tile = heuristics::kTileShapes[GetParam()];
  ProblemSpec spec{2 * tile.block_m + 3, 2112, 512};
  spec.seed = 300 + GetParam();
  expect_tile_matches_reference(tile, spec, 7);
}

std::vector<int> two_block_tiles() {
  std::vector<int> indices;
  for (int i = 0; i < heuristics::kNumTileShapes; ++i)
    if (!heuristics::kTileShapes[i].swap_ab && 128 % heuristics::kTileShapes[i].block_n != 0)
      indices.push_back(i);
  return indices;
}

INSTANTIATE_TEST_SUITE_P(Compiled, TwoBlockWeightScale, ::testing::ValuesIn(two_block_tiles()),
                         [](const ::testing::TestParamInfo<int>& info) {
                           const heuristics::TileShape t = heuristics::kTileShapes[info.param];
                           return "T" + std::to_string(t.block_m) + "x" + std::to_string(t.block_n) + "x" +
                                  std::to_string(t.multicast);
                         });

// One wave over two row blocks, the second partly filled, runs as multicast pairs (the heuristics pick them
// there, bench/NOTES.md #43): the pair's second CTA owns the M tail, and the planner's own plan is checked.
TEST(MulticastPairs, PartialSecondRowBlockMatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  for (int64_t m : {129, 192, 255}) {
    ProblemSpec spec{m, 8192 - 64, 512};  // an N tail too
    spec.seed = 500 + static_cast<uint64_t>(m);
    const heuristics::GemmPlan plan =
        heuristics::plan_gemm(spec.m, spec.n, spec.k, heuristics::DeviceModel{});
    EXPECT_EQ(plan.tile.multicast, 2) << spec.str() << ": " << plan.describe();
    expect_tile_matches_reference(plan.tile, spec, static_cast<int>(plan.grid / plan.tile.multicast));
  }
}

// 256-row tiles run as two waves of 128 rows that share one scratch accumulator set and take turns in the
// staging buffer (bench/NOTES.md #38). M tails that end inside the second wave, at a warpgroup boundary of
// it, and inside the first wave; every output dtype (fp32 stages one wave at a time for want of room).
TEST(TwoWaveTiles, TailsInEitherWaveMatchReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  int tested = 0;
  for (const heuristics::TileShape& tile : heuristics::kTileShapes) {
    if (tile.swap_ab || tile.block_m != 256) continue;
    for (const int64_t m : {int64_t{2 * 256 + 130}, int64_t{256 + 192}, int64_t{256 + 77}, int64_t{256}}) {
      for (const DType dtype : {DType::kBFloat16, DType::kFloat32}) {
        for (const bool per_row : {false, true}) {
          ProblemSpec spec{m, tile.block_n * 3 + 32, 1024};
          spec.per_row_weight_scale = per_row;
          // M-contiguous input scales where M is a multiple of 4 (a bulk copy per stage can then bring a
          // whole tile's, bench/NOTES.md #69), row-major ones (per-row gathers) otherwise.
          spec.input_scale_layout = m % 4 == 0 ? ScaleLayout::kColumnMajor : ScaleLayout::kRowMajor;
          spec.out_dtype = dtype;
          spec.seed = 500 + static_cast<uint64_t>(m) + (per_row ? 1 : 0);
          expect_tile_matches_reference(tile, spec, 3);
          ++tested;
        }
      }
    }
  }
  EXPECT_GT(tested, 0) << "no 256-row tile is compiled";
}

// Clusters side by side along N share the input tile, each CTA loading half of its rows: an odd number of
// column blocks gives the last pair a tile wholly past N (zero-filled weight, no store) that still loads its
// half of A for its partner; N tails inside a tile, M tails in either wave, several pairs per CTA.
TEST(SharedInputTile, OddColumnBlocksAndTailsMatchReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  int tested = 0;
  for (const heuristics::TileShape& tile : heuristics::kTileShapes) {
    if (!tile.multicast_a) continue;
    const int64_t n_odd = tile.block_n * 4 + 48;  // 5 column blocks, the last one partial
    const int64_t n_even = tile.block_n * 6;      // 6 whole ones
    for (const int64_t m : {int64_t{2 * tile.block_m + 130}, int64_t{tile.block_m}, int64_t{77}}) {
      for (const int64_t n : {n_odd, n_even}) {
        for (const bool per_row : {false, true}) {
          ProblemSpec spec{m, n, 1024 + 128};
          spec.per_row_weight_scale = per_row;
          spec.input_scale_layout = per_row ? ScaleLayout::kColumnMajor : ScaleLayout::kRowMajor;
          spec.out_dtype = m == 77 ? DType::kFloat32 : DType::kBFloat16;
          spec.seed = 700 + static_cast<uint64_t>(m + n) + (per_row ? 1 : 0);
          expect_tile_matches_reference(tile, spec, 3);
          ++tested;
        }
      }
    }
  }
  EXPECT_GT(tested, 0) << "no tile that shares the input is compiled";
}

INSTANTIATE_TEST_SUITE_P(
    Compiled, EveryTileShape,
    ::testing::Combine(::testing::Range(0, heuristics::kNumTileShapes), ::testing::Bool(),
                       ::testing::Values(DType::kBFloat16, DType::kFloat16, DType::kFloat32)));

// ---- row-major input scales copied M-contiguous before long plans (bench/NOTES.md #63) -------------------

// The copy only moves the scales: the result must be bitwise the column-major call's, for contiguous and
// padded row-major layouts, with and without the caller's workspace (no workspace: no copy), eager and
// captured; the capture's node count tells whether the copy ran.
TEST(InputScaleTranspose, RowMajorScalesGiveTheColumnMajorResultBitwise) {
  BLOCKGEMM_REQUIRE_HOPPER();
  // M not a multiple of 4 or of any tile; K/128 = 56 spans two 32-wide tiles of the copy, the second partial.
  const int64_t m = 4090, n = 7168, k = 7168, kg = k / 128;
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  heuristics::DeviceModel model;
  check_cuda(cudaDeviceGetAttribute(&model.num_sms, cudaDevAttrMultiProcessorCount, device), "SM count");
  if (std::getenv("BLOCKGEMM_FORCE_TILE") != nullptr ||
      !heuristics::transposes_input_scales(heuristics::plan_gemm(m, n, k, model), m, k))
    GTEST_SKIP() << "on this GPU (" << model.num_sms
                 << " SMs) or with a forced tile, 4090x7168x7168 plans no "
                 << "input-scale copy; the test needs one (132-SM H100: 128x160, ~316 us)";
  Problem p;
  make_problem({m, n, k, false, ScaleLayout::kRowMajor, DType::kBFloat16, 0, 63}, p);
  const std::size_t bytes = fp8_blockscale_gemm_sm90_workspace_bytes(p.input, p.weight, p.input_scale);
  const std::size_t ld = (m + 3) / 4 * 4;
  EXPECT_GE(bytes, ld * kg * 4) << "room for (K/128, ceil4(M)) floats";
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(p.input, p.weight), bytes) << "row-major assumed";
  DeviceBuffer workspace_dev(bytes);
  const Workspace workspace{workspace_dev.get(), bytes};
  auto run = [&](const TensorView& input_scale, std::optional<Workspace> ws, cudaStream_t stream) {
    std::vector<uint8_t> out(p.out_dev.bytes());
    poison_out(p);
    fp8_blockscale_gemm_sm90(p.input, p.weight, input_scale, p.weight_scale, p.out, std::nullopt, stream, ws);
    check_cuda(cudaDeviceSynchronize(), "gemm");
    p.out_dev.download(out.data(), out.size());
    return out;
  };
  // Column-major (K/128, M'), which the kernel reads directly: no workspace wanted.
  std::vector<float> col(ld * kg, 0.f);
  for (int64_t r = 0; r < m; ++r)
    for (int64_t g = 0; g < kg; ++g) col[g * ld + r] = p.a.scales[r * kg + g];
  DeviceBuffer col_dev(col.size() * 4);
  col_dev.upload(col.data(), col.size() * 4);
  const TensorView col_view = TensorView::strided(col_dev.get(), DType::kFloat32, m, kg, 1, ld, device);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(p.input, p.weight, col_view), 0u);
  const std::vector<uint8_t> expected = run(col_view, std::nullopt, nullptr);
  auto same = [&](const std::vector<uint8_t>& got) {
    return std::memcmp(got.data(), expected.data(), expected.size()) == 0;
  };
  EXPECT_TRUE(same(run(p.input_scale, workspace, nullptr))) << "row-major, copied";
  // Bitwise equality with another path of the same kernel could hide an error both share: the copied call's
  // out, still on the device, against the CPU reference too.
  const CheckResult checked = check_against_reference(p);
  EXPECT_EQ(checked.nan_count, 0);
  EXPECT_LT(checked.diff, 1e-3);
  EXPECT_LT(checked.max_scaled_error, kMaxScaledError);
  EXPECT_TRUE(same(run(p.input_scale, std::nullopt, nullptr))) << "row-major, read as given";
  EXPECT_TRUE(same(run(p.input_scale, Workspace{workspace_dev.get(), bytes - 256}, nullptr)))
      << "a workspace too small is ignored";
  // Row-major with padded rows: the copy reads any strides.
  const int64_t row_stride = kg + 5;
  std::vector<float> padded(static_cast<std::size_t>(m * row_stride), std::nanf(""));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t g = 0; g < kg; ++g) padded[r * row_stride + g] = p.a.scales[r * kg + g];
  DeviceBuffer padded_dev(padded.size() * 4);
  padded_dev.upload(padded.data(), padded.size() * 4);
  EXPECT_TRUE(same(run(TensorView::strided(padded_dev.get(), DType::kFloat32, m, kg, row_stride, 1, device),
                       workspace, nullptr)))
      << "padded row-major scales";
  // The (K/128, M) shape over the same row-major data (strides (1, K/128)): read as its transpose.
  EXPECT_TRUE(same(run(TensorView::strided(p.input_scale.data, DType::kFloat32, kg, m, 1, kg, device),
                       workspace, nullptr)))
      << "the (K/128, M) view of row-major scales";
  // A workspace overlapping an operand is the caller's bug: an error naming both.
  try {
    fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out, std::nullopt, nullptr,
                             Workspace{p.out.data, bytes});
    ADD_FAILURE() << "no error for a workspace overlapping out";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("workspace"), std::string::npos) << error.what();
  }

  // Captured: two nodes (the copy, then the GEMM) with the workspace, one without.
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  for (const bool with_workspace : {true, false}) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out, std::nullopt, stream,
                             with_workspace ? std::optional<Workspace>(workspace) : std::nullopt);
    check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
    std::size_t nodes = 0;
    check_cuda(cudaGraphGetNodes(graph, nullptr, &nodes), "nodes");
    EXPECT_EQ(nodes, with_workspace ? 2u : 1u) << "with workspace: " << with_workspace;
    check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    for (int replay = 0; replay < 2; ++replay) {
      poison_out(p);
      check_cuda(cudaGraphLaunch(exec, stream), "replay");
      check_cuda(cudaStreamSynchronize(stream), "replay sync");
      std::vector<uint8_t> replayed(p.out_dev.bytes());
      p.out_dev.download(replayed.data(), replayed.size());
      EXPECT_TRUE(same(replayed)) << "captured, with workspace: " << with_workspace << ", replay " << replay;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  cudaStreamDestroy(stream);
}

// The copied call of an (m, n, k) problem with row-major scales against the column-major call (bitwise) and
// the CPU reference, where `wanted` says the plan is the one under test; a skip naming `what` otherwise.
void expect_copied_scales_give_the_column_major_result(
    int64_t m, int64_t n, int64_t k, uint64_t seed, const char* what,
    const std::function<bool(const heuristics::GemmPlan&)>& wanted) {
  const int64_t kg = k / 128;
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  heuristics::DeviceModel model;
  check_cuda(cudaDeviceGetAttribute(&model.num_sms, cudaDevAttrMultiProcessorCount, device), "SM count");
  const heuristics::GemmPlan plan = heuristics::plan_gemm(m, n, k, model);
  if (std::getenv("BLOCKGEMM_FORCE_TILE") != nullptr || !wanted(plan) ||
      !heuristics::transposes_input_scales(plan, m, k))
    GTEST_SKIP() << "on this GPU (" << model.num_sms << " SMs) or with a forced tile, " << m << "x" << n
                 << "x" << k << " plans no " << what;
  Problem p;
  make_problem({m, n, k, false, ScaleLayout::kRowMajor, DType::kBFloat16, 0, seed}, p);
  const std::size_t bytes = fp8_blockscale_gemm_sm90_workspace_bytes(p.input, p.weight, p.input_scale);
  const int64_t ld = (m + 3) / 4 * 4;
  ASSERT_GE(bytes, static_cast<std::size_t>(ld * kg * 4));
  DeviceBuffer workspace_dev(bytes);
  auto run = [&](const TensorView& input_scale, std::optional<Workspace> ws) {
    std::vector<uint8_t> out(p.out_dev.bytes());
    poison_out(p);
    fp8_blockscale_gemm_sm90(p.input, p.weight, input_scale, p.weight_scale, p.out, std::nullopt, nullptr,
                             ws);
    check_cuda(cudaDeviceSynchronize(), "gemm");
    p.out_dev.download(out.data(), out.size());
    return out;
  };
  std::vector<float> col(static_cast<std::size_t>(ld * kg), std::nanf(""));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t g = 0; g < kg; ++g) col[g * ld + r] = p.a.scales[r * kg + g];
  DeviceBuffer col_dev(col.size() * 4);
  col_dev.upload(col.data(), col.size() * 4);
  const std::vector<uint8_t> expected =
      run(TensorView::strided(col_dev.get(), DType::kFloat32, m, kg, 1, ld, device), std::nullopt);
  const std::vector<uint8_t> copied = run(p.input_scale, Workspace{workspace_dev.get(), bytes});
  EXPECT_EQ(std::memcmp(copied.data(), expected.data(), expected.size()), 0) << "M = " << m;
  const CheckResult checked = check_against_reference(p);
  EXPECT_EQ(checked.nan_count, 0) << "M = " << m;
  EXPECT_LT(checked.diff, 1e-3) << "M = " << m;
  EXPECT_LT(checked.max_scaled_error, kMaxScaledError) << "M = " << m;
  // The gathers of row-major scales give the same bits as the copy: only the captured graph (the copy, then
  // the GEMM) shows that the call made one.
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  cudaGraph_t graph;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, p.out, std::nullopt, stream,
                           Workspace{workspace_dev.get(), bytes});
  check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
  std::size_t nodes = 0;
  check_cuda(cudaGraphGetNodes(graph, nullptr, &nodes), "nodes");
  EXPECT_EQ(nodes, 2u) << "M = " << m << ": the input-scale copy and the GEMM";
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// bench/NOTES.md #71: the 256-row plans copy row-major scales too; M % 4 = 0 takes #69's bulk copy by the TMA
// thread, 4094 the scale warp's gathers of M-contiguous scales. Either way bitwise the column-major call's.
TEST(InputScaleTranspose, TwoWavePlansCopyRowMajorScales) {
  BLOCKGEMM_REQUIRE_HOPPER();
  for (const int64_t m : {4096, 4094})
    expect_copied_scales_give_the_column_major_result(
        m, 4096, 7168, 71, "256-row tile with an input-scale copy (132-SM H100: the pair)",
        [](const heuristics::GemmPlan& plan) { return plan.tile.block_m == 256; });
}

// bench/NOTES.md #78: scale rows 512 B apart (K = 16384) are copied before mid-M plans under 150 us too; 510
// rows leave the last row block 126 rows and M % 4 = 2 (the copy's padded column).
TEST(InputScaleTranspose, WideScaleRowsCopiedBeforeMidMPlans) {
  BLOCKGEMM_REQUIRE_HOPPER();
  for (const int64_t m : {512, 510})
    expect_copied_scales_give_the_column_major_result(
        m, 7168, 16384, 78, "copy under 150 us (132-SM H100: 128x112, ~106 us)",
        [](const heuristics::GemmPlan& plan) {
          return !plan.tile.swap_ab && plan.estimated_us < heuristics::kTransposeInputScalesMinUs;
        });
}

}  // namespace
}  // namespace blockgemm::testing
