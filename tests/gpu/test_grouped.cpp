// GPU tests of the grouped GEMM (blockgemm/grouped.h), contiguous layout and every compiled grouped tile:
// every group against the CPU reference, the output poisoned with NaN first so that rows outside every group
// (padding, gaps) must stay poisoned. The masked layout, graphs and malformed tables:
// test_grouped_masked.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#include "api/grouped_validate.h"
#include "blockgemm/grouped.h"
#include "grouped_test_util.h"
#include "heuristics/heuristics.h"
#include "kernels/launch.h"

namespace blockgemm::testing {
namespace {

// ---- every compiled grouped kernel, through the launcher with a chosen tile
// --------------------------------

enum class Layout { kOffsets, kIndex, kMasked };

const char* layout_name(Layout l) {
  return l == Layout::kOffsets ? "offsets" : l == Layout::kIndex ? "index" : "masked";
}

// Runs `tile` on ragged groups with a small persistent grid (each CTA walks several groups) and checks
// every group. Sizes: empty groups, single rows, tile boundaries +-1, a group larger than the tile (odd and
// even row-block counts: the clusters along M run a group's odd last row block as tail units). N = 528 has
// an odd number of column blocks for BLOCK_N 128 and 192 (5 and 3), each with a partial last one, so the
// last tail unit of a row block (and a 256x128x2a unit) holds a tile wholly past N. In the offsets form
// (three rows of padding first) the groups start 0, 1, 2 and 3 rows past a multiple of 4 (the bulk copies'
// lead).
void expect_grouped_tile(const heuristics::TileShape& tile, bool per_row, Layout layout, int grid) {
  const int64_t bm = tile.block_m;
  // bm / 2 + 1 and bm / 2: a 128-row tile's second warpgroup with one valid row, and with none (it then skips
  // its wgmmas: bench/NOTES.md #76).
  const std::vector<int64_t> sizes = {bm + 1, 0, 1, bm - 1, 2 * bm + 3, 0, bm, 3, 5, bm / 2 + 1, bm / 2};
  const int64_t g = static_cast<int64_t>(sizes.size()), n = 528, k = 512;
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
    m_max = 2 * bm + 9;  // groups start 0, 1, 2 and 3 rows past a multiple of 4
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
  // is a multiple of 4), on the offsets form and the masked one with per-row weight scales, whose tiles start
  // anywhere: the bulk copies of the tiles below 256 rows then begin up to three rows before the tile
  // (bench/NOTES.md #72). Row-major ones (the per-row gathers) in the masked layout with per-block weight
  // scales here and in the API tests.
  d.col_major_scales = layout != Layout::kMasked || per_row;
  make_grouped(d, g, m, n, k, per_row, false, 40 + static_cast<uint64_t>(bm) + (per_row ? 7 : 0));
  d.poison();
  DeviceInts table_dev(table);
  DeviceBuffer ranges(static_cast<std::size_t>(g) * 8);

  api::GroupedProblem problem;
  const TensorView weight = d.weight();
  const std::optional<TensorView> weight_scale = d.weight_scale();
  if (layout == Layout::kMasked) {
    problem =
        api::validate_grouped_masked(d.masked_input(m_max), weight, d.masked_input_scale(m_max), weight_scale,
                                     table_dev.view(g, d.device), bm, d.masked_out(m_max), std::nullopt);
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

// bench/NOTES.md #74 through the public call: the plan is the 128x192 pair along M (asserted); the first
// group's 5 row blocks end in a tail unit, whose last tile lies wholly past N = 2112 (11 column blocks), and
// the groups start unaligned after 3 rows of padding. K = 1024: the pair's 4-stage ring wraps inside a unit.
TEST(GroupedContiguous, PairPlansRunOddRowBlocksAsTailUnits) {
  BLOCKGEMM_REQUIRE_HOPPER();
  ASSERT_EQ(heuristics::plan_grouped_contiguous(1034, 2, 2112, 1024, false, heuristics::DeviceModel{}).tile,
            (heuristics::TileShape{128, 192, 2}))
      << "this case is meant to run the pair's tail units";
  run_contiguous({600, 426}, 2112, 1024, false, false, 14, 3, 5);
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
// caller's workspace. The copy only moves them: bitwise the column-major call's, eager and captured (the copy
// a node of its own), for both table forms. The second group starts at an unaligned row: its tiles' bulk
// copies begin a row early (#72; that path against the CPU reference: EveryGroupedTile's offsets cases, at
// sizes a CPU reference can afford).
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
    GTEST_SKIP() << "this GPU's plan for 2 x 4094x4096x7168 makes no input-scale copy (132-SM H100: a "
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
}  // namespace
}  // namespace blockgemm::testing
