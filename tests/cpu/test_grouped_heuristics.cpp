// The grouped plans (src/heuristics): the tile for a routing's rows per group, the input-scale copy rule,
// the persistent grid's tile bounds. Pure functions of the shapes, tested on the host.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "heuristics/heuristics.h"

namespace blockgemm {
namespace {

// The grouped rule by tile: every 128-row tile (the 256-row one gathers its input scales per row, and the
// swapAB tiles gather a stage's few token scales as column scales), from 50 us and 128 rows.
TEST(GroupedHeuristics, InputScalesAreTransposedBeforeLong128RowPlans) {
  heuristics::GemmPlan plan;
  plan.estimated_us = heuristics::kTransposeGroupedInputScalesMinUs;
  for (const heuristics::TileShape& tile : heuristics::kGroupedTileShapes) {
    plan.tile = tile;
    EXPECT_EQ(heuristics::transposes_grouped_input_scales(plan, 4096), !tile.swap_ab && tile.block_m == 128)
        << tile.block_m << "x" << tile.block_n;
  }
  plan.tile = heuristics::TileShape{128, 192};
  EXPECT_FALSE(
      heuristics::transposes_grouped_input_scales(plan, heuristics::kTransposeInputScalesMinRows - 1));
  EXPECT_EQ(heuristics::input_scale_copy_bytes(plan, 4090, 7168, true), int64_t{56} * 4092 * 4);
  EXPECT_EQ(heuristics::input_scale_copy_bytes(plan, 4090, 7168), 0) << "the dense rule leaves 128x192 out";
  plan.estimated_us = heuristics::kTransposeGroupedInputScalesMinUs - 1;
  EXPECT_FALSE(heuristics::transposes_grouped_input_scales(plan, 4096));
}

bool grouped_compiled(const heuristics::TileShape& tile, bool per_row) {
  for (const heuristics::TileShape& t : heuristics::kGroupedTileShapes)
    if (t == tile) return heuristics::grouped_tile_compiled(t, per_row);
  return false;
}

TEST(GroupedHeuristics, PlansUseCompiledTilesWithinTheSms) {
  const heuristics::DeviceModel h100;
  for (const bool per_row : {false, true})
    for (const int64_t g : {1, 4, 8, 32, 64, 256})
      for (const int64_t m : {0, 1, 17, 256, 1000, 8192, 65536})
        for (const auto& [n, k] : {std::pair<int64_t, int64_t>{4096, 7168}, {7168, 2048}, {16, 128}}) {
          const heuristics::GemmPlan c = heuristics::plan_grouped_contiguous(m, g, n, k, per_row, h100);
          EXPECT_TRUE(grouped_compiled(c.tile, per_row)) << c.describe();
          EXPECT_EQ(c.k_splits, 1) << "no split-K for grouped plans";
          EXPECT_GE(c.grid, 1);
          EXPECT_LE(c.grid, h100.num_sms);
          // Pairs along M pad each group's row blocks to whole pairs: the 128x128 one measured the slowest
          // grouped tile and is never picked; whole clusters either way.
          EXPECT_FALSE(c.tile.block_n == 128 && c.tile.multicast > 1 && !c.tile.multicast_a) << c.describe();
          EXPECT_EQ(c.grid % c.tile.multicast, 0) << c.describe();
          const heuristics::GemmPlan masked = heuristics::plan_grouped_masked(
              g, std::max<int64_t>(m, 1), std::max<int64_t>(m / 4, 1), n, k, per_row, h100);
          EXPECT_TRUE(grouped_compiled(masked.tile, per_row)) << masked.describe();
          EXPECT_LE(masked.grid, h100.num_sms);
          EXPECT_GE(masked.grid, 1);
        }
}

TEST(GroupedHeuristics, FewRowsPerGroupSwapToHoldTheSpreadOfCounts) {
  const heuristics::DeviceModel h100;
  // The fewest padded tokens that hold 1.3x the hint (a group above the mean would otherwise run a second
  // row block and stream its weight again).
  const std::pair<int64_t, int> cases[] = {{1, 8},   {6, 8},   {7, 16},  {12, 16}, {13, 32},
                                           {16, 32}, {24, 32}, {25, 64}, {33, 64}, {49, 64}};
  for (const auto& [rows, block_m] : cases) {
    const heuristics::GemmPlan masked =
        heuristics::plan_grouped_masked(32, 256, rows, 4096, 7168, false, h100);
    EXPECT_TRUE(masked.tile.swap_ab) << rows;
    EXPECT_EQ(masked.tile.block_m, block_m) << rows;
    EXPECT_EQ(masked.tile.block_n, 64);
    // Contiguous: by the average rows per group.
    const heuristics::GemmPlan contiguous =
        heuristics::plan_grouped_contiguous(rows * 32, 32, 4096, 7168, true, h100);
    EXPECT_EQ(contiguous.tile, masked.tile) << rows;
  }
  // Where no swapAB tile holds 1.3x the hint, a normal 128-row tile (measured 12-15% faster than two
  // 64-token row blocks at expected M = 64, bench/NOTES.md #66).
  for (const int64_t rows : {50, 64}) {
    const heuristics::GemmPlan masked =
        heuristics::plan_grouped_masked(32, 256, rows, 4096, 7168, false, h100);
    EXPECT_FALSE(masked.tile.swap_ab) << rows;
    EXPECT_EQ(masked.tile.block_m, 128) << rows;
    EXPECT_FALSE(heuristics::plan_grouped_contiguous(rows * 32, 32, 4096, 7168, true, h100).tile.swap_ab)
        << rows;
  }
  // No group of a masked input holds more than M_max rows: the 64-token tile holds every group of M_max 48.
  EXPECT_EQ(heuristics::plan_grouped_masked(8, 48, 48, 4096, 7168, false, h100).tile,
            (heuristics::TileShape{64, 64, 1, true}));
  // Tiles of up to 32 tokens quantize a bf16 input themselves.
  EXPECT_TRUE(heuristics::quantizes_input_in_kernel(
      heuristics::plan_grouped_masked(8, 64, 24, 4096, 7168, false, h100)));
  EXPECT_FALSE(heuristics::quantizes_input_in_kernel(
      heuristics::plan_grouped_masked(8, 64, 25, 4096, 7168, false, h100)));
}

TEST(GroupedHeuristics, ManyRowsPerGroupTakeNormalTiles) {
  const heuristics::DeviceModel h100;
  for (const int64_t rows : {65, 128, 1024, 8192}) {
    const heuristics::GemmPlan block =
        heuristics::plan_grouped_contiguous(rows * 8, 8, 4096, 7168, false, h100);
    EXPECT_FALSE(block.tile.swap_ab) << rows;
    EXPECT_EQ(block.tile.block_m, 128) << rows;
    const heuristics::GemmPlan row = heuristics::plan_grouped_contiguous(rows * 8, 8, 4096, 7168, true, h100);
    EXPECT_EQ(row.tile.block_m, 128) << "per-row scales: 256x128 is not compiled";
    EXPECT_LE(row.tile.block_n, 160) << "per-row scales: 128x192 is not compiled";
  }
  // One row block per group: the narrow tile (a pair along M would share no weight tile there: every unit a
  // tail unit; a wider tile adds columns without filling more SMs). Thousands of rows: 128x192 in pairs
  // sharing the weight tile, what DeepGEMM runs there; swept on the H100 (bench/NOTES.md #47) it was the
  // fastest of the seven at 32 x 1024 x 7168 x 2048 and within 1% (4 x 4096 x 4096 x 7168) and 4% (8 x 1024)
  // of 128x160.
  EXPECT_EQ(heuristics::plan_grouped_contiguous(128 * 8, 8, 4096, 7168, false, h100).tile,
            (heuristics::TileShape{128, 128}));
  for (const int64_t rows : {1024, 8192})
    EXPECT_EQ(heuristics::plan_grouped_contiguous(rows * 8, 8, 4096, 7168, false, h100).tile,
              (heuristics::TileShape{128, 192, 2}))
        << rows;
  // 128 rows per group: one 128-row block each; a 256-row tile would be half padding.
  EXPECT_EQ(heuristics::plan_grouped_masked(8, 128, 128, 4096, 7168, false, h100).tile,
            (heuristics::TileShape{128, 128}));
  // The masked hint is clamped into [1, M_max].
  EXPECT_EQ(heuristics::plan_grouped_masked(8, 16, 1000, 4096, 7168, false, h100).tile.block_m, 16);
}

// A pair along M runs a group's odd row block as tail units (kernels/tile_scheduler.cuh): it plans the same
// row blocks as the tile alone (one tile more per tail row block where the column blocks are odd), and none
// of its tiles pulls more from L2 than the tile alone.
TEST(GroupedHeuristics, PairsAlongMPadNoRowBlocks) {
  const heuristics::DeviceModel h100;
  const heuristics::TileShape alone{128, 192}, pair{128, 192, 2};
  for (const int64_t rows : {1, 128, 129, 300, 385, 1000, 3615})
    for (const int64_t n : {4096, 4288}) {
      const heuristics::GemmPlan a = heuristics::make_grouped_plan(alone, 1 << 30, 8, rows, n, 7168, h100);
      const heuristics::GemmPlan b = heuristics::make_grouped_plan(pair, 1 << 30, 8, rows, n, 7168, h100);
      const int64_t row_blocks = (rows + 127) / 128, col_blocks = (n + 191) / 192;
      EXPECT_EQ(b.num_tiles, a.num_tiles + 8 * (row_blocks % 2) * (col_blocks % 2)) << rows << " " << n;
      EXPECT_LE(b.estimated_us, a.estimated_us * 1.0001) << rows << " " << n;
    }
  // The benchmark's skewed contiguous routing (29 row blocks per group on average) plans the pair, as the
  // uniform ones do: padded, the odd count had sent it to the tile alone.
  for (const auto& [n, k] : {std::pair<int64_t, int64_t>{4096, 7168}, {7168, 2048}}) {
    EXPECT_EQ(heuristics::plan_grouped_contiguous(28915, 8, n, k, false, h100).tile, pair) << n;
    EXPECT_EQ(heuristics::plan_grouped_contiguous(8 * 1024, 8, n, k, false, h100).tile, pair) << n;
  }
}

// Masked e = 256 groups (two or three row blocks each) at 4096 x 7168 keep the cost model's wide tile:
// forcing 128x128 there (#75) measured 12-14% slower than 128x192 in the grouped suite (H100, bench/NOTES.md
// #75: G = 32 639.5 us against 572.7, G = 64 1384.9 against 1216.7).
TEST(GroupedHeuristics, MaskedFewRowBlocksKeepTheModelsTile) {
  const heuristics::DeviceModel h100;
  const heuristics::TileShape square{128, 128};
  for (const int64_t g : {32, 64}) {
    const auto plan = heuristics::plan_grouped_masked(g, 384, 256, 4096, 7168, false, h100);
    EXPECT_FALSE(plan.tile == square) << g;
    EXPECT_EQ(plan.tile.block_m, 128) << g;
    EXPECT_GE(plan.tile.block_n, 160) << g;
  }
  // Decode counts keep their swapAB tiles.
  EXPECT_TRUE(heuristics::plan_grouped_masked(64, 32, 16, 4096, 7168, false, h100).tile.swap_ab);
}

TEST(GroupedHeuristics, TileUpperBoundsCoverEveryRouting) {
  std::mt19937_64 rng(7);
  for (const heuristics::TileShape& tile : heuristics::kGroupedTileShapes)
    for (int trial = 0; trial < 200; ++trial) {
      const int64_t g = 1 + static_cast<int64_t>(rng() % 40);
      const int64_t m = static_cast<int64_t>(rng() % 5000);
      const int64_t n = 16 * (1 + static_cast<int64_t>(rng() % 300));
      // Random cut points: any split of m rows among g groups (empty groups included).
      std::vector<int64_t> cuts = {0, m};
      for (int64_t i = 1; i < g; ++i) cuts.push_back(m ? static_cast<int64_t>(rng() % (m + 1)) : 0);
      std::sort(cuts.begin(), cuts.end());
      // Tiles of a group of `rows` rows as the scheduler runs them: column blocks padded to whole pairs where
      // a cluster shares the input tile; where one shares the weight tile, whole pairs of row blocks and a
      // tail row block in units of two column blocks (kernels/tile_scheduler.cuh).
      auto pad = [](int64_t blocks, int cluster) { return (blocks + cluster - 1) / cluster * cluster; };
      const int64_t col_blocks = (n + tile.block_n - 1) / tile.block_n;
      const int64_t launched_cols = tile.multicast_a ? pad(col_blocks, tile.multicast) : col_blocks;
      const int row_cluster = tile.multicast_a ? 1 : tile.multicast;
      auto group_tiles = [&](int64_t rows) {
        const int64_t row_blocks = (rows + tile.block_m - 1) / tile.block_m;
        return row_blocks / row_cluster * row_cluster * launched_cols +
               row_blocks % row_cluster * pad(launched_cols, row_cluster);
      };
      int64_t tiles = 0;
      for (std::size_t i = 1; i < cuts.size(); ++i) tiles += group_tiles(cuts[i] - cuts[i - 1]);
      EXPECT_LE(tiles, heuristics::contiguous_tiles_upper_bound(tile, m, g, n));
      // Masked: any count up to M_max in every group; the bound is at most one tile per group loose.
      const int64_t m_max = 1 + static_cast<int64_t>(rng() % 300);
      int64_t most = 0;
      for (int64_t rows = 0; rows <= m_max; ++rows) most = std::max(most, group_tiles(rows));
      EXPECT_LE(g * most, heuristics::masked_tiles_upper_bound(tile, g, m_max, n));
      EXPECT_LE(heuristics::masked_tiles_upper_bound(tile, g, m_max, n), g * (most + 1));
    }
}

TEST(GroupedHeuristics, DensePlansAreUnchanged) {
  // The grouped tiles are a list of their own: the dense planner never sees them.
  const heuristics::DeviceModel h100;
  EXPECT_EQ(heuristics::plan_gemm(4096, 4096, 7168, h100).tile,
            (heuristics::TileShape{256, 128, 2, false, true}));
  EXPECT_TRUE(heuristics::plan_gemm(16, 2112, 7168, h100).tile.swap_ab);
}

}  // namespace
}  // namespace blockgemm
