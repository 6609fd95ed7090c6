// GPU tests of the grouped GEMM (blockgemm/grouped.h): every group against the CPU reference, the output
// poisoned with NaN first so that rows outside every group (padding, masked rows, gaps) must stay poisoned.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "api/grouped_validate.h"
#include "blockgemm/grouped.h"
#include "blockgemm/reference.h"
#include "gpu_test_util.h"
#include "heuristics/heuristics.h"
#include "kernels/launch.h"

namespace blockgemm::testing {
namespace {

constexpr double kMaxDiff = 1e-3;
constexpr uint16_t kPoison = 0xFFFF;  // bf16 NaN: what poison_rows writes

// The rows each group owns in the 2-D view of the input and out, as the kernel must see them.
struct GroupRows {
  int64_t start, rows;
};

// A grouped problem on the host (reference-quantized) and the device. The input is an (m, K) matrix: the
// contiguous input, or the masked (G, M_max, K) input folded. The weight is G stacked (N, K) matrices.
struct GroupedData {
  int64_t g = 0, m = 0, n = 0, k = 0, kg = 0;
  bool per_row = false, bf16_input = false;
  // The 2-D input scale M-contiguous, (K/128, ceil4(M)) transposed (DeepGEMM's layout), instead of (M,
  // K/128); set before make_grouped.
  bool col_major_scales = false;
  int64_t scale_ld = 0;
  reference::Quantized a;               // (m, K) and (m, K/128)
  std::vector<uint16_t> a_bf16;         // the bf16 input, when bf16_input
  std::vector<reference::Quantized> b;  // per group
  DeviceBuffer a_dev, a_scale_dev, b_dev, b_scale_dev, out_dev;
  int64_t out_guard_rows = 0;  // poisoned rows past the view, which nothing may write
  int device = 0;

  TensorView weight() const { return TensorView::tensor3(b_dev.get(), DType::kFloat8E4M3, g, n, k, device); }
  TensorView weight_scale() const {
    return TensorView::tensor3(b_scale_dev.get(), DType::kFloat32, g, b[0].scale_rows, kg, device);
  }
  TensorView input2d() const {
    return TensorView::matrix(a_dev.get(), bf16_input ? DType::kBFloat16 : DType::kFloat8E4M3, m, k, device);
  }
  std::optional<TensorView> input_scale2d() const {
    if (bf16_input) return std::nullopt;
    if (col_major_scales)
      return TensorView::strided(a_scale_dev.get(), DType::kFloat32, m, kg, 1, scale_ld, device);
    return TensorView::matrix(a_scale_dev.get(), DType::kFloat32, m, kg, device);
  }
  TensorView out2d() const { return TensorView::matrix(out_dev.get(), DType::kBFloat16, m, n, device); }
  // cudaMemset is asynchronous on the legacy stream, which the graph replays' non-blocking stream does not
  // wait for: wait here, or the poison could land after the GEMM's stores (bench/NOTES.md "Oddities").
  void poison() {
    check_cuda(cudaMemset(out_dev.get(), 0xFF, out_dev.bytes()), "poison out");
    check_cuda(cudaDeviceSynchronize(), "poison out");
  }
};

std::vector<float> random_normal(int64_t count, uint64_t seed, float scale = 1.f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> x(static_cast<std::size_t>(count));
  for (auto& v : x) v = dist(rng);
  return x;
}

void make_grouped(GroupedData& d, int64_t g, int64_t m, int64_t n, int64_t k, bool per_row, bool bf16_input,
                  uint64_t seed, int64_t out_guard_rows = 3) {
  d.g = g, d.m = m, d.n = n, d.k = k, d.kg = k / 128, d.per_row = per_row, d.bf16_input = bf16_input;
  d.out_guard_rows = out_guard_rows;
  check_cuda(cudaGetDevice(&d.device), "cudaGetDevice");
  std::vector<float> a = random_normal(m * k, seed * 3 + 1);
  if (bf16_input) {
    // The GPU quantizers are bitwise the reference's on the same bf16 values.
    d.a_bf16.resize(a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      d.a_bf16[i] = reference::float_to_bf16(a[i]);
      a[i] = reference::bf16_to_float(d.a_bf16[i]);
    }
  }
  d.a = reference::per_token_cast_to_fp8(a.data(), m, k);
  d.b.clear();
  std::vector<uint8_t> b_values;
  std::vector<float> b_scales;
  for (int64_t i = 0; i < g; ++i) {
    // Groups differ in magnitude, so a group computed with another's weight or scales shows.
    std::vector<float> w =
        random_normal(n * k, seed * 3 + 2 + static_cast<uint64_t>(i) * 101, 0.5f + static_cast<float>(i % 5));
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < k; ++c) w[r * k + c] *= 0.25f + static_cast<float>((r * 7 + i) % 13) / 4.f;
    d.b.push_back(per_row ? reference::per_token_cast_to_fp8(w.data(), n, k)
                          : reference::per_block_cast_to_fp8(w.data(), n, k));
    b_values.insert(b_values.end(), d.b.back().values.begin(), d.b.back().values.end());
    b_scales.insert(b_scales.end(), d.b.back().scales.begin(), d.b.back().scales.end());
  }
  if (bf16_input) {
    d.a_dev = DeviceBuffer(d.a_bf16.size() * 2);
    if (m) d.a_dev.upload(d.a_bf16.data(), d.a_bf16.size() * 2);
  } else {
    d.a_dev = DeviceBuffer(d.a.values.size());
    if (m) d.a_dev.upload(d.a.values.data(), d.a.values.size());
    std::vector<float> scales = d.a.scales;
    if (d.col_major_scales) {
      // The padding rows hold NaN: a kernel that read them into a valid row would show it.
      d.scale_ld = (m + 3) / 4 * 4;
      scales.assign(static_cast<std::size_t>(d.scale_ld * d.kg), std::numeric_limits<float>::quiet_NaN());
      for (int64_t r = 0; r < m; ++r)
        for (int64_t c = 0; c < d.kg; ++c)
          scales[static_cast<std::size_t>(c * d.scale_ld + r)] =
              d.a.scales[static_cast<std::size_t>(r * d.kg + c)];
    }
    d.a_scale_dev = DeviceBuffer(scales.size() * 4);
    if (m) d.a_scale_dev.upload(scales.data(), scales.size() * 4);
  }
  d.b_dev = DeviceBuffer(b_values.size());
  d.b_dev.upload(b_values.data(), b_values.size());
  d.b_scale_dev = DeviceBuffer(b_scales.size() * 4);
  d.b_scale_dev.upload(b_scales.data(), b_scales.size() * 4);
  d.out_dev = DeviceBuffer(static_cast<std::size_t>((m + out_guard_rows) * n) * 2);
}

// Downloads out and checks each group's rows against the reference, and that every other row (padding,
// masked, past the view) kept its poison.
void check_groups(const GroupedData& d, const std::vector<GroupRows>& groups, const std::string& where) {
  std::vector<uint16_t> out(static_cast<std::size_t>((d.m + d.out_guard_rows) * d.n));
  d.out_dev.download(out.data(), out.size() * 2);
  std::vector<bool> owned(static_cast<std::size_t>(d.m + d.out_guard_rows), false);
  for (int64_t gi = 0; gi < static_cast<int64_t>(groups.size()); ++gi) {
    const auto [start, rows] = groups[static_cast<std::size_t>(gi)];
    if (rows == 0) continue;
    const reference::Quantized& b = d.b[static_cast<std::size_t>(gi)];
    std::vector<double> ref(static_cast<std::size_t>(rows * d.n));
    reference::blockscale_gemm(d.a.values.data() + start * d.k, d.a.scales.data() + start * d.kg,
                               b.values.data(), b.scales.data(), d.per_row, rows, d.n, d.k, ref.data());
    std::vector<double> got(ref.size());
    int64_t nan_count = 0;
    for (int64_t r = 0; r < rows; ++r) {
      owned[static_cast<std::size_t>(start + r)] = true;
      for (int64_t c = 0; c < d.n; ++c) {
        const double v = reference::bf16_to_float(out[static_cast<std::size_t>((start + r) * d.n + c)]);
        nan_count += std::isnan(v);
        got[static_cast<std::size_t>(r * d.n + c)] = v;
      }
    }
    EXPECT_EQ(nan_count, 0) << where << " group " << gi << " (rows " << start << "+" << rows
                            << "): unwritten or NaN outputs";
    const double diff = reference::calc_diff(got.data(), ref.data(), static_cast<int64_t>(ref.size()));
    EXPECT_LT(diff, kMaxDiff) << where << " group " << gi << " (rows " << start << "+" << rows << ")";
    EXPECT_LE(max_scaled_error(got.data(), ref.data(), static_cast<int64_t>(ref.size())), kMaxScaledError)
        << where << " group " << gi;
  }
  int64_t written = 0, first = -1;
  for (int64_t r = 0; r < d.m + d.out_guard_rows; ++r) {
    if (owned[static_cast<std::size_t>(r)]) continue;
    for (int64_t c = 0; c < d.n; ++c)
      if (out[static_cast<std::size_t>(r * d.n + c)] != kPoison) {
        if (first < 0) first = r;
        ++written;
      }
  }
  EXPECT_EQ(written, 0) << where << ": " << written << " elements written outside every group (first in row "
                        << first << ")";
}

// Group sizes -> offsets (G + 1), starting at `first_row`.
std::vector<int32_t> offsets_of(const std::vector<int64_t>& sizes, int64_t first_row = 0) {
  std::vector<int32_t> offsets = {static_cast<int32_t>(first_row)};
  for (int64_t s : sizes) offsets.push_back(offsets.back() + static_cast<int32_t>(s));
  return offsets;
}
std::vector<GroupRows> rows_of(const std::vector<int32_t>& offsets) {
  std::vector<GroupRows> rows;
  for (std::size_t i = 0; i + 1 < offsets.size(); ++i)
    rows.push_back({offsets[i], offsets[i + 1] - offsets[i]});
  return rows;
}

struct DeviceInts {
  DeviceBuffer buffer;
  explicit DeviceInts(const std::vector<int32_t>& values)
      : buffer(std::max<std::size_t>(values.size(), 1) * 4) {
    if (!values.empty()) buffer.upload(values.data(), values.size() * 4);
  }
  // A pageable cudaMemcpy may return before the bytes reach the device, and a non-blocking stream does not
  // wait for the legacy stream: the next replay must see the new table.
  void set(const std::vector<int32_t>& values) {
    buffer.upload(values.data(), values.size() * 4);
    check_cuda(cudaDeviceSynchronize(), "table upload");
  }
  Int32View view(int64_t size, int device) const {
    return Int32View::vector(static_cast<const int32_t*>(buffer.get()), size, device);
  }
};

// ---- every compiled grouped kernel, through the launcher with a chosen tile
// --------------------------------

enum class Layout { kOffsets, kIndex, kMasked };

const char* layout_name(Layout l) {
  return l == Layout::kOffsets ? "offsets" : l == Layout::kIndex ? "index" : "masked";
}

// Runs `tile` on ragged groups with a small persistent grid (each CTA walks several groups) and checks
// every group. Sizes: empty groups, single rows, tile boundaries +-1, a group larger than the tile (odd and
// even row-block counts, for the clusters along M that pad a group's last pair).
void expect_grouped_tile(const heuristics::TileShape& tile, bool per_row, Layout layout, int grid) {
  const int64_t bm = tile.block_m;
  const std::vector<int64_t> sizes = {bm + 1, 0, 1, bm - 1, 2 * bm + 3, 0, bm, 5};
  const int64_t g = static_cast<int64_t>(sizes.size()), n = 3 * 64 + 16 + 128, k = 512;  // N tail: 336
  const std::string where =
      std::string(layout_name(layout)) + " tile " + std::to_string(tile.block_m) + "x" +
      std::to_string(tile.block_n) + (tile.swap_ab ? "s" : "") +
      (tile.multicast > 1 ? (tile.multicast_a ? " pairs sharing A" : " pairs sharing B") : "") +
      (per_row ? " per-row" : " per-block");
  GroupedData d;
  std::vector<GroupRows> expected;
  std::vector<int32_t> table;
  int64_t m = 0, m_max = 0;
  if (layout == Layout::kMasked) {
    m_max = 2 * bm + 8;
    m = g * m_max;
    for (int64_t i = 0; i < g; ++i) {
      table.push_back(static_cast<int32_t>(sizes[static_cast<std::size_t>(i)]));
      expected.push_back({i * m_max, sizes[static_cast<std::size_t>(i)]});
    }
  } else if (layout == Layout::kOffsets) {
    table = offsets_of(sizes, 3);  // three rows before the first group: padding
    m = table.back() + 2;          // and two after the last
    expected = rows_of(table);
  } else {
    // DeepGEMM's form: each group's run starts at a multiple of 64 here (padding rows -1 between runs).
    int64_t row = 0;
    for (int64_t i = 0; i < g; ++i) {
      const int64_t s = sizes[static_cast<std::size_t>(i)];
      expected.push_back({row, s});
      for (int64_t r = 0; r < s; ++r) table.push_back(static_cast<int32_t>(i));
      const int64_t padded = (s + 63) / 64 * 64;
      for (int64_t r = s; r < padded; ++r) table.push_back(-1);
      row += padded;
    }
    m = row;
  }
  // M-contiguous input scales on DeepGEMM's index form (its own scale layout: every tile starts at a row that
  // is a multiple of 4) and, with per-row weight scales, on the offsets form (tiles start anywhere).
  d.col_major_scales = layout == Layout::kIndex || (per_row && layout == Layout::kOffsets);
  make_grouped(d, g, m, n, k, per_row, false, 40 + static_cast<uint64_t>(bm) + (per_row ? 7 : 0));
  d.poison();
  DeviceInts table_dev(table);
  DeviceBuffer ranges(static_cast<std::size_t>(g) * 8);

  api::GroupedProblem problem;
  const TensorView weight = d.weight();
  const std::optional<TensorView> weight_scale = d.weight_scale();
  if (layout == Layout::kMasked) {
    const TensorView input = TensorView::tensor3(d.a_dev.get(), DType::kFloat8E4M3, g, m_max, k, d.device);
    const TensorView input_scale =
        TensorView::tensor3(d.a_scale_dev.get(), DType::kFloat32, g, m_max, k / 128, d.device);
    const TensorView out = TensorView::tensor3(d.out_dev.get(), DType::kBFloat16, g, m_max, n, d.device);
    problem = api::validate_grouped_masked(input, weight, input_scale, weight_scale,
                                           table_dev.view(g, d.device), bm, out, std::nullopt);
  } else {
    const GroupLayout groups =
        layout == Layout::kOffsets
            ? GroupLayout::from_offsets(table_dev.view(static_cast<int64_t>(table.size()), d.device))
            : GroupLayout::from_group_index(table_dev.view(m, d.device));
    problem = api::validate_grouped_contiguous(d.input2d(), weight, d.input_scale2d(), weight_scale, groups,
                                               d.out2d(), std::nullopt);
    if (layout == Layout::kIndex) {
      kernels::launch_group_index_to_ranges(problem.group_index, m, static_cast<int>(g),
                                            static_cast<int32_t*>(ranges.get()), nullptr);
      problem.args.table = static_cast<const int32_t*>(ranges.get());
    }
  }
  heuristics::GemmPlan plan =
      heuristics::make_grouped_plan(tile, 1000000, g, bm, n, k, heuristics::DeviceModel{});
  plan.grid = grid;
  kernels::launch_fp8_gemm_grouped(plan, problem.args, nullptr);
  check_cuda(cudaDeviceSynchronize(), "grouped gemm");
  check_groups(d, expected, where + " grid " + std::to_string(grid));
}

class EveryGroupedTile : public ::testing::TestWithParam<std::tuple<int, bool, Layout>> {};

TEST_P(EveryGroupedTile, MatchesReferencePerGroup) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const auto [index, per_row, layout] = GetParam();
  const heuristics::TileShape tile = heuristics::kGroupedTileShapes[index];
  expect_grouped_tile(tile, per_row, layout, 5);    // several units per CTA, across groups
  expect_grouped_tile(tile, per_row, layout, 132);  // one wave
}

// Every compiled (tile, weight-scale kind) pair in every layout; 256x128 and 128x192 have no per-row build
// (their math warpgroups spill there), so the heuristics never plan them and they are not instantiated.
std::vector<std::tuple<int, bool, Layout>> compiled_grouped_tiles() {
  std::vector<std::tuple<int, bool, Layout>> params;
  for (int index = 0; index < heuristics::kNumGroupedTileShapes; ++index)
    for (bool per_row : {false, true})
      if (heuristics::grouped_tile_compiled(heuristics::kGroupedTileShapes[index], per_row))
        for (Layout layout : {Layout::kOffsets, Layout::kIndex, Layout::kMasked})
          params.emplace_back(index, per_row, layout);
  return params;
}

INSTANTIATE_TEST_SUITE_P(
    Compiled, EveryGroupedTile, ::testing::ValuesIn(compiled_grouped_tiles()), [](const auto& info) {
      const heuristics::TileShape t = heuristics::kGroupedTileShapes[std::get<0>(info.param)];
      return "T" + std::to_string(t.block_m) + "x" + std::to_string(t.block_n) + (t.swap_ab ? "s" : "") +
             (t.multicast > 1 ? "x" + std::to_string(t.multicast) + (t.multicast_a ? "a" : "") : "") +
             (std::get<1>(info.param) ? "_PerRow" : "_PerBlock") + "_" + layout_name(std::get<2>(info.param));
    });

// ---- the public calls
// --------------------------------------------------------------------------------------

// Contiguous with offsets through the API (heuristic plan); `first_row` rows of padding before the groups
// and `tail` after them.
void run_contiguous(const std::vector<int64_t>& sizes, int64_t n, int64_t k, bool per_row, bool bf16_input,
                    uint64_t seed, int64_t first_row = 0, int64_t tail = 0) {
  const std::vector<int32_t> offsets = offsets_of(sizes, first_row);
  const int64_t m = offsets.back() + tail;
  GroupedData d;
  make_grouped(d, static_cast<int64_t>(sizes.size()), m, n, k, per_row, bf16_input, seed);
  d.poison();
  DeviceInts offsets_dev(offsets);
  const GroupLayout groups =
      GroupLayout::from_offsets(offsets_dev.view(static_cast<int64_t>(offsets.size()), d.device));
  grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(), groups, d.out2d());
  check_cuda(cudaDeviceSynchronize(), "grouped gemm");
  const std::string where =
      "contiguous G=" + std::to_string(sizes.size()) + " M=" + std::to_string(m) + " N=" + std::to_string(n) +
      " K=" + std::to_string(k) + (bf16_input ? " bf16" : " fp8") + (per_row ? " per-row " : " per-block ") +
      describe_grouped_plan_contiguous(m, static_cast<int64_t>(sizes.size()), n, k, per_row);
  check_groups(d, rows_of(offsets), where);
}

TEST(GroupedContiguous, RaggedGroupsMatchReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  for (const bool per_row : {false, true}) {
    run_contiguous({300, 0, 1, 129, 255, 64}, 384, 512, per_row, false, 1);         // avg 125: 128x128
    run_contiguous({700, 513, 257, 900}, 256, 1024, per_row, false, 2);             // avg 593: normal tiles
    run_contiguous({3, 0, 17, 9, 30, 1, 0, 12}, 7168 / 4, 512, per_row, false, 3);  // avg 9: swapAB 16
  }
}

TEST(GroupedContiguous, EmptyGroupsAndSingleRows) {
  BLOCKGEMM_REQUIRE_HOPPER();
  run_contiguous({0, 0, 0}, 128, 256, false, false, 4, 0, 5);  // no rows in any group: nothing written
  run_contiguous({1, 1, 1, 1}, 128, 256, false, false, 5);
  run_contiguous({0, 1, 0}, 64, 128, true, false, 6, 2, 2);
}

TEST(GroupedContiguous, UnalignedOffsetsAndPaddingRowsUntouched) {
  BLOCKGEMM_REQUIRE_HOPPER();
  // Groups start anywhere; rows before the first and after the last group are padding.
  run_contiguous({77, 130, 5, 200}, 256, 512, false, false, 7, 13, 29);
  run_contiguous({77, 130, 5, 200}, 256, 512, true, false, 8, 1, 1);
}

TEST(GroupedContiguous, Bf16InputIsQuantizedInside) {
  BLOCKGEMM_REQUIRE_HOPPER();
  run_contiguous({300, 17, 129}, 256, 512, false, true, 9);            // normal tile: quantizer first
  run_contiguous({5, 30, 0, 19, 2, 31}, 512, 1024, true, true, 10);    // swapAB 16: in the kernel
  run_contiguous({25, 30, 0, 31, 32, 31}, 512, 512, false, true, 13);  // swapAB 32: in the kernel
  run_contiguous({40, 50, 60}, 512, 512, false, true, 11);             // swapAB 64: quantizer first
}

// DeepGEMM's per-row group index: runs aligned to contiguous_group_alignment(), -1 padding between them.
TEST(GroupedContiguous, GroupIndexFormMatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t align = contiguous_group_alignment();
  for (const bool bf16_input : {false, true}) {
    const std::vector<int64_t> sizes = {100, 0, 128, 1, 300};
    std::vector<int32_t> index;
    std::vector<GroupRows> expected;
    for (std::size_t gi = 0; gi < sizes.size(); ++gi) {
      expected.push_back({static_cast<int64_t>(index.size()), sizes[gi]});
      for (int64_t r = 0; r < sizes[gi]; ++r) index.push_back(static_cast<int32_t>(gi));
      while (static_cast<int64_t>(index.size()) % align != 0) index.push_back(-1);
    }
    const int64_t m = static_cast<int64_t>(index.size()), n = 256, k = 512;
    GroupedData d;
    make_grouped(d, static_cast<int64_t>(sizes.size()), m, n, k, false, bf16_input, 12);
    d.poison();
    DeviceInts index_dev(index);
    const GroupLayout groups = GroupLayout::from_group_index(index_dev.view(m, d.device));
    EXPECT_NO_THROW(validate_group_index(groups.table, static_cast<int64_t>(sizes.size())));
    const std::size_t bytes = grouped_gemm_contiguous_workspace_bytes(d.input2d(), d.weight(), groups);
    DeviceBuffer workspace(bytes);
    grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(), groups, d.out2d(),
                            std::nullopt, nullptr, Workspace{workspace.get(), bytes});
    check_cuda(cudaDeviceSynchronize(), "grouped gemm");
    check_groups(d, expected, std::string("group index") + (bf16_input ? " bf16" : " fp8"));
    // The library's own workspace works too.
    d.poison();
    grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(), groups, d.out2d());
    check_cuda(cudaDeviceSynchronize(), "grouped gemm");
    check_groups(d, expected, "group index, internal workspace");
  }
}

// bench/NOTES.md #71: before a long plan, row-major fp8 input scales are copied M-contiguous into the
// caller's workspace. The copy only moves them: bitwise the column-major call's (reference-checked in
// EveryGroupedTile), eager and captured (the copy a node of its own), for both table forms. The second group
// starts at an unaligned row, where the tiles gather their scales instead of the bulk copy.
TEST(GroupedContiguous, RowMajorScalesCopiedGiveTheColumnMajorResult) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const std::vector<int64_t> sizes = {2049, 2045};
  const int64_t g = 2, m = 4094, n = 4096, k = 7168, kg = k / 128, ld = 4096;
  GroupedData d;
  make_grouped(d, g, m, n, k, false, false, 71);
  DeviceInts offsets(offsets_of(sizes));
  const GroupLayout by_offsets = GroupLayout::from_offsets(offsets.view(g + 1, d.device));
  std::vector<int32_t> rows(static_cast<std::size_t>(m), 1);
  std::fill(rows.begin(), rows.begin() + sizes[0], 0);
  DeviceInts index(rows);
  const GroupLayout by_index = GroupLayout::from_group_index(index.view(m, d.device));
  const std::size_t copy = static_cast<std::size_t>(ld * kg * 4);
  if (grouped_gemm_contiguous_workspace_bytes(d.input2d(), d.weight(), by_offsets) < copy)
    GTEST_SKIP() << "this GPU's plan for 2 x 4094x4096x7168 makes no input-scale copy (132-SM H100: a long "
                    "128-row plan)";
  std::vector<float> col(static_cast<std::size_t>(ld * kg), std::numeric_limits<float>::quiet_NaN());
  for (int64_t r = 0; r < m; ++r)
    for (int64_t c = 0; c < kg; ++c)
      col[static_cast<std::size_t>(c * ld + r)] = d.a.scales[static_cast<std::size_t>(r * kg + c)];
  DeviceBuffer col_dev(col.size() * 4);
  col_dev.upload(col.data(), col.size() * 4);
  const TensorView col_view = TensorView::strided(col_dev.get(), DType::kFloat32, m, kg, 1, ld, d.device);
  auto download = [&] {
    std::vector<uint16_t> out(static_cast<std::size_t>(m * n));
    d.out_dev.download(out.data(), out.size() * 2);
    return out;
  };
  d.poison();
  grouped_gemm_contiguous(d.input2d(), d.weight(), col_view, d.weight_scale(), by_offsets, d.out2d());
  check_cuda(cudaDeviceSynchronize(), "grouped gemm, column-major scales");
  const std::vector<uint16_t> expected = download();
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  for (const bool use_index : {false, true}) {
    const GroupLayout& groups = use_index ? by_index : by_offsets;
    const std::size_t bytes = grouped_gemm_contiguous_workspace_bytes(d.input2d(), d.weight(), groups);
    EXPECT_GE(bytes, copy);
    DeviceBuffer workspace(bytes);
    const Workspace ws{workspace.get(), bytes};
    d.poison();
    grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(), groups, d.out2d(),
                            std::nullopt, nullptr, ws);
    check_cuda(cudaDeviceSynchronize(), "grouped gemm, row-major scales copied");
    EXPECT_TRUE(download() == expected) << "eager, group index form: " << use_index;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(), groups, d.out2d(),
                            std::nullopt, stream, ws);
    check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
    std::size_t nodes = 0;
    check_cuda(cudaGraphGetNodes(graph, nullptr, &nodes), "nodes");
    EXPECT_EQ(nodes, use_index ? 4u : 2u) << "the copy and the GEMM (index form: the ranges' memset, kernel)";
    check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    d.poison();
    check_cuda(cudaGraphLaunch(exec, stream), "replay");
    check_cuda(cudaStreamSynchronize(stream), "replay sync");
    EXPECT_TRUE(download() == expected) << "captured, group index form: " << use_index;
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  cudaStreamDestroy(stream);
}

// ---- masked layout
// ------------------------------------------------------------------------------------------

void run_masked(int64_t g, int64_t m_max, const std::vector<int32_t>& masked_m,
                std::optional<int64_t> expected_m, int64_t n, int64_t k, bool per_row, bool bf16_input,
                uint64_t seed) {
  GroupedData d;
  make_grouped(d, g, g * m_max, n, k, per_row, bf16_input, seed);
  d.poison();
  DeviceInts counts(masked_m);
  const TensorView input = TensorView::tensor3(
      d.a_dev.get(), bf16_input ? DType::kBFloat16 : DType::kFloat8E4M3, g, m_max, k, d.device);
  std::optional<TensorView> input_scale;
  if (!bf16_input)
    input_scale = TensorView::tensor3(d.a_scale_dev.get(), DType::kFloat32, g, m_max, k / 128, d.device);
  const TensorView out = TensorView::tensor3(d.out_dev.get(), DType::kBFloat16, g, m_max, n, d.device);
  grouped_gemm_masked(input, d.weight(), input_scale, d.weight_scale(), counts.view(g, d.device), expected_m,
                      out);
  check_cuda(cudaDeviceSynchronize(), "grouped gemm");
  std::vector<GroupRows> expected;
  for (int64_t i = 0; i < g; ++i)
    expected.push_back({i * m_max, std::clamp<int64_t>(masked_m[static_cast<std::size_t>(i)], 0, m_max)});
  const std::string where = "masked G=" + std::to_string(g) + " M_max=" + std::to_string(m_max) +
                            " expected_m=" + std::to_string(expected_m.value_or(m_max)) +
                            (bf16_input ? " bf16" : " fp8") + (per_row ? " per-row " : " per-block ") +
                            describe_grouped_plan_masked(g, m_max, expected_m.value_or(m_max), n, k, per_row);
  check_groups(d, expected, where);
}

TEST(GroupedMasked, MaskedRowsUntouchedForEveryTileChoice) {
  BLOCKGEMM_REQUIRE_HOPPER();
  // Counts past M_max and negative ones are clamped.
  const std::vector<int32_t> counts = {0, 1, 17, 48, 60, -3};
  for (const int64_t expected_m : {1, 12, 24, 48, 100})
    for (const bool per_row : {false, true})
      run_masked(6, 48, counts, expected_m, 320, 512, per_row, false, 20 + static_cast<uint64_t>(expected_m));
  run_masked(6, 48, counts, std::nullopt, 320, 512, false, false, 27);
  // Normal tiles: 128 and 256 rows.
  run_masked(4, 300, {300, 0, 130, 7}, 150, 384, 512, false, false, 28);
  run_masked(4, 300, {300, 0, 257, 7}, 300, 384, 512, false, false, 29);
}

TEST(GroupedMasked, Bf16InputIsQuantizedInside) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const std::vector<int32_t> counts = {5, 0, 32, 9, 1, 31, 16, 2};
  run_masked(8, 32, counts, 8, 1024, 1024, false, true, 30);  // 8-token tile: cast in the kernel
  run_masked(8, 32, counts, 32, 256, 512, true, true, 31);    // 32-token tile: cast in the kernel
  run_masked(8, 64, {64, 3, 0, 33, 64, 1, 2, 50}, 64, 256, 512, false, true, 32);  // 64: quantizer first
}

// ---- CUDA graphs: the counts change between replays
// ---------------------------------------------------------

TEST(GroupedGraphs, MaskedCountsChangeBetweenReplays) {
  BLOCKGEMM_REQUIRE_HOPPER();
  for (const bool bf16_input : {false, true}) {
    const int64_t g = 8, m_max = 32, n = 512, k = 512;
    GroupedData d;
    make_grouped(d, g, g * m_max, n, k, false, bf16_input, 40);
    DeviceInts counts(std::vector<int32_t>(static_cast<std::size_t>(g), 0));
    const TensorView input = TensorView::tensor3(
        d.a_dev.get(), bf16_input ? DType::kBFloat16 : DType::kFloat8E4M3, g, m_max, k, d.device);
    std::optional<TensorView> input_scale;
    if (!bf16_input)
      input_scale = TensorView::tensor3(d.a_scale_dev.get(), DType::kFloat32, g, m_max, k / 128, d.device);
    const TensorView out = TensorView::tensor3(d.out_dev.get(), DType::kBFloat16, g, m_max, n, d.device);
    cudaStream_t stream;
    check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    grouped_gemm_masked(input, d.weight(), input_scale, d.weight_scale(), counts.view(g, d.device), 16, out,
                        std::nullopt, stream);
    check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
    check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    const std::vector<std::vector<int32_t>> replays = {{1, 2, 3, 4, 5, 6, 7, 8},
                                                       {32, 0, 0, 17, 0, 0, 0, 32},
                                                       {0, 0, 0, 0, 0, 0, 0, 0},
                                                       {9, 31, 16, 15, 1, 0, 8, 30}};
    for (const auto& replay : replays) {
      counts.set(replay);
      d.poison();
      check_cuda(cudaGraphLaunch(exec, stream), "replay");
      check_cuda(cudaStreamSynchronize(stream), "replay sync");
      std::vector<GroupRows> expected;
      for (int64_t i = 0; i < g; ++i) expected.push_back({i * m_max, replay[static_cast<std::size_t>(i)]});
      check_groups(d, expected, std::string("graph replay") + (bf16_input ? " bf16" : " fp8"));
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
  }
}

TEST(GroupedGraphs, ContiguousOffsetsAndIndexChangeBetweenReplays) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t g = 4, m = 512, n = 256, k = 512;
  GroupedData d;
  make_grouped(d, g, m, n, k, true, false, 41);
  DeviceInts offsets(offsets_of({128, 128, 128, 128}));
  DeviceInts index(std::vector<int32_t>(static_cast<std::size_t>(m), -1));
  const GroupLayout by_offsets = GroupLayout::from_offsets(offsets.view(g + 1, d.device));
  const GroupLayout by_index = GroupLayout::from_group_index(index.view(m, d.device));
  const std::size_t bytes = grouped_gemm_contiguous_workspace_bytes(d.input2d(), d.weight(), by_index);
  DeviceBuffer workspace(bytes);
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  for (const bool use_index : {false, true}) {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
    grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(),
                            use_index ? by_index : by_offsets, d.out2d(), std::nullopt, stream,
                            Workspace{workspace.get(), bytes});
    check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
    check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    for (const std::vector<int64_t>& sizes :
         {std::vector<int64_t>{512, 0, 0, 0}, std::vector<int64_t>{1, 200, 0, 300},
          std::vector<int64_t>{0, 0, 0, 0}, std::vector<int64_t>{100, 100, 100, 100}}) {
      const std::vector<int32_t> table = offsets_of(sizes);
      offsets.set(table);
      std::vector<int32_t> rows(static_cast<std::size_t>(m), -1);
      for (int64_t gi = 0; gi < g; ++gi)
        for (int32_t r = table[static_cast<std::size_t>(gi)]; r < table[static_cast<std::size_t>(gi) + 1];
             ++r)
          rows[static_cast<std::size_t>(r)] = static_cast<int32_t>(gi);
      index.set(rows);
      d.poison();
      check_cuda(cudaGraphLaunch(exec, stream), "replay");
      check_cuda(cudaStreamSynchronize(stream), "replay sync");
      check_groups(d, rows_of(table), use_index ? "graph replay, group index" : "graph replay, offsets");
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  cudaStreamDestroy(stream);
}

// ---- device-resident tables: malformed values stay memory-safe; explicit validation reports them
// -----------

TEST(GroupedTables, MalformedTablesWriteNothingOutsideTheView) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t g = 4, m = 200, n = 128, k = 256;
  GroupedData d;
  make_grouped(d, g, m, n, k, false, false, 50, /*out_guard_rows=*/64);
  // Decreasing, negative and past-M_total offsets: clamped into [0, M_total] and made non-decreasing.
  const std::vector<std::pair<std::vector<int32_t>, std::vector<GroupRows>>> cases = {
      {{0, 150, 100, 400, 190}, {{0, 150}, {150, 0}, {150, 50}, {200, 0}}},
      {{-50, 10, -5, 20, 1 << 30}, {{0, 10}, {10, 0}, {10, 10}, {20, 180}}},
      {{500, 600, 700, 800, 900}, {{200, 0}, {200, 0}, {200, 0}, {200, 0}}}};
  for (const auto& [table, expected] : cases) {
    DeviceInts offsets(table);
    d.poison();
    grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(),
                            GroupLayout::from_offsets(offsets.view(g + 1, d.device)), d.out2d());
    check_cuda(cudaDeviceSynchronize(), "grouped gemm");
    check_groups(d, expected, "malformed offsets");
    EXPECT_THROW(validate_group_offsets(offsets.view(g + 1, d.device), m), Error);
  }
  // Group indices outside [0, G) are padding.
  std::vector<int32_t> index(static_cast<std::size_t>(m), 7);
  for (int64_t r = 10; r < 30; ++r) index[static_cast<std::size_t>(r)] = 2;
  for (int64_t r = 30; r < 35; ++r) index[static_cast<std::size_t>(r)] = -5;
  DeviceInts index_dev(index);
  d.poison();
  grouped_gemm_contiguous(d.input2d(), d.weight(), d.input_scale2d(), d.weight_scale(),
                          GroupLayout::from_group_index(index_dev.view(m, d.device)), d.out2d());
  check_cuda(cudaDeviceSynchronize(), "grouped gemm");
  check_groups(d, {{0, 0}, {0, 0}, {10, 20}, {0, 0}}, "out-of-range group index");
  EXPECT_THROW(validate_group_index(index_dev.view(m, d.device), g), Error);
  // Valid tables pass the explicit checks.
  DeviceInts good(offsets_of({50, 0, 100, 50}));
  EXPECT_NO_THROW(validate_group_offsets(good.view(g + 1, d.device), m));
}

TEST(GroupedTables, ValidationRefusesToRunDuringCapture) {
  BLOCKGEMM_REQUIRE_HOPPER();
  DeviceInts offsets(offsets_of({1, 2}));
  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  cudaGraph_t graph;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "begin capture");
  int device = 0;
  check_cuda(cudaGetDevice(&device), "device");
  EXPECT_THROW(validate_group_offsets(offsets.view(3, device), 3, stream), Error);
  check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace blockgemm::testing
