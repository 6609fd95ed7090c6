// The kernel-selection heuristics are pure functions: checked here without a GPU.
#include <gtest/gtest.h>

#include "heuristics/heuristics.h"

namespace blockgemm::heuristics {
namespace {

TEST(Heuristics, PlanUsesACompiledTileAndNeverMoreCtasThanSms) {
  const DeviceModel h100;
  for (int64_t m : {1, 7, 64, 100, 128, 512, 4096, 16384})
    for (int64_t n : {16, 576, 2112, 7168, 24576})
      for (int64_t k : {128, 2048, 7168}) {
        const GemmPlan plan = plan_gemm(m, n, k, h100);
        bool compiled = false;
        for (const TileShape& t : kTileShapes) compiled |= t == plan.tile;
        EXPECT_TRUE(compiled) << m << "x" << n << "x" << k;
        EXPECT_GE(plan.grid, 1);
        EXPECT_LE(plan.grid, h100.num_sms);
        const int64_t row_blocks = (m + plan.tile.block_m - 1) / plan.tile.block_m;
        const int64_t padded_rows =
            (row_blocks + plan.tile.multicast - 1) / plan.tile.multicast * plan.tile.multicast;
        EXPECT_EQ(plan.num_tiles, padded_rows * ((n + plan.tile.block_n - 1) / plan.tile.block_n));
        EXPECT_EQ(plan.grid % plan.tile.multicast, 0) << "grid must be whole clusters";
        EXPECT_EQ(plan.num_waves, (plan.num_tiles + plan.grid - 1) / plan.grid);
        EXPECT_GT(plan.estimated_us, 0);
      }
}

TEST(Heuristics, SmallMUsesOneMathWarpgroup) {
  // A 128-row tile would be at least half padding.
  EXPECT_EQ(plan_gemm(16, 7168, 2048, DeviceModel{}).tile.block_m, 64);
  EXPECT_EQ(plan_gemm(64, 4096, 7168, DeviceModel{}).tile.block_m, 64);
}

TEST(Heuristics, LargeProblemsUseWideTilesOnEverySm) {
  // Large tiles take in fewer bytes per FLOP, which is what limits (bench/NOTES.md).
  const GemmPlan plan = plan_gemm(4096, 7168, 16384, DeviceModel{});
  EXPECT_EQ(plan.tile.block_m, 128);
  EXPECT_GE(plan.tile.block_n, 128);
  EXPECT_EQ(plan.grid, 132);
}

TEST(Heuristics, OddRowBlocksArePaddedToWholeClusters) {
  const TileShape tile{128, 128, 2};
  EXPECT_EQ(num_tiles_launched(tile, 300, 256), 4 * 2);  // 3 row blocks -> 4
  EXPECT_EQ(grid_for(tile, 8, 132), 8);
  EXPECT_EQ(grid_for(tile, 1000, 131), 130);  // whole clusters only
}

TEST(Heuristics, EstimateGrowsWithWork) {
  const DeviceModel h100;
  const TileShape tile{128, 128};
  EXPECT_LT(estimate_us(tile, 4096, 4096, 4096, h100), estimate_us(tile, 8192, 4096, 4096, h100));
  EXPECT_LT(estimate_us(tile, 4096, 4096, 4096, h100), estimate_us(tile, 4096, 4096, 8192, h100));
}

TEST(Heuristics, FewerSmsNeverMakeItFaster) {
  DeviceModel small;
  small.num_sms = 66;
  for (int64_t m : {128, 1024, 4096}) {
    EXPECT_GE(plan_gemm(m, 7168, 7168, small).estimated_us,
              plan_gemm(m, 7168, 7168, DeviceModel{}).estimated_us);
  }
}

TEST(Heuristics, DescribeNamesTheKernelAndTile) {
  const std::string text = plan_gemm(4096, 7168, 2048, DeviceModel{}).describe();
  EXPECT_NE(text.find("fp8_gemm_1d2d"), std::string::npos);
  EXPECT_NE(text.find("BLOCK_M="), std::string::npos);
  EXPECT_NE(text.find("grid="), std::string::npos);
}

}  // namespace
}  // namespace blockgemm::heuristics
