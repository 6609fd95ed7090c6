// The kernel-selection heuristics are pure functions: checked here without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <tuple>
#include <utility>

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
        EXPECT_TRUE(m > kMaxSwapAbM || plan.tile.swap_ab) << "swapAB for small M, as documented";
        EXPECT_TRUE(m <= kMaxSplitKSwapAbM || !plan.tile.swap_ab);
        EXPECT_GE(plan.k_splits, 1);
        EXPECT_LE(plan.k_splits, kMaxSplitK);
        EXPECT_LE(plan.k_splits, (k + 127) / 128) << "every split needs a K block";
        EXPECT_TRUE(plan.k_splits == 1 || plan.tile.swap_ab) << "only swapAB tiles split K";
        // A cluster pads the side its CTAs sit along (N where they share the input tile) to whole pairs.
        auto pad = [&](int64_t blocks, bool along) {
          return along ? (blocks + plan.tile.multicast - 1) / plan.tile.multicast * plan.tile.multicast
                       : blocks;
        };
        const int64_t row_blocks =
            pad((m + plan.tile.block_m - 1) / plan.tile.block_m, !plan.tile.multicast_a);
        const int64_t col_blocks =
            pad((n + plan.tile.block_n - 1) / plan.tile.block_n, plan.tile.multicast_a);
        EXPECT_EQ(plan.num_tiles, row_blocks * col_blocks);
        EXPECT_EQ(plan.grid % (plan.tile.multicast * plan.k_splits), 0) << "grid must be whole clusters";
        EXPECT_EQ(plan.num_waves, (plan.num_tiles * plan.k_splits + plan.grid - 1) / plan.grid);
        EXPECT_GT(plan.estimated_us, 0);
      }
}

TEST(Heuristics, SmallMUsesOneMathWarpgroup) {
  // A 128-row tile would be at least half padding.
  EXPECT_EQ(plan_gemm(64, 4096, 7168, DeviceModel{}).tile.block_m, 64);
}

TEST(Heuristics, SmallMSwapsAndSplitsKToStreamTheWeightOnEverySm) {
  const DeviceModel h100;
  for (int64_t m : {1, 8, 16, 31, 32}) {
    // 2112 / 64 = 33 tiles would leave three quarters of the SMs idle without split-K (H100, M = 32: 10.9 us
    // unsplit, 9.6 in two shares, 9.7 in three).
    const GemmPlan plan = plan_gemm(m, 2112, 7168, h100);
    EXPECT_TRUE(plan.tile.swap_ab);
    EXPECT_GE(plan.tile.block_m, m) << "one token tile";
    EXPECT_LT(plan.tile.block_m, 2 * std::max<int64_t>(m, 8)) << "the fewest padded tokens";
    EXPECT_EQ(plan.k_splits, 2) << plan.describe();
    EXPECT_EQ(plan.grid, 66) << plan.describe();
    EXPECT_EQ(plan.num_waves, 1);
    // 9 tiles: four shares of 14 K blocks (6.7 us; 10.9 unsplit, 7.0 in five).
    EXPECT_EQ(plan_gemm(m, 576, 7168, h100).k_splits, 4);
  }
  // Up to 64 tokens, swapAB with split-K where normal tiles would leave most SMs idle, else normal tiles.
  EXPECT_TRUE(plan_gemm(48, 576, 7168, h100).tile.swap_ab);
  EXPECT_FALSE(plan_gemm(48, 7168, 2048, h100).tile.swap_ab);
  EXPECT_EQ(plan_gemm(1, 2112, 512, h100).k_splits, 1);  // 4 K blocks: nothing to share
  // Enough tiles already: no split.
  EXPECT_EQ(plan_gemm(4, 24576, 1536, h100).k_splits, 1);
}

// Split-K pays only where the hand-over costs less than the SMs it brings in save.
TEST(Heuristics, SmallMSplitsKOnlyWhereTheHandOverPays) {
  const DeviceModel h100;
  for (int64_t m : {1, 16, 32}) {
    // 64 tiles already pull the weight at near HBM pace: 32 x 4096 x 4096 took 8.9 us unsplit, 9.9 in two
    // shares; 4096 x 7168 13.6 and 14.1.
    EXPECT_EQ(plan_gemm(m, 4096, 4096, h100).k_splits, 1);
    EXPECT_EQ(plan_gemm(m, 4096, 7168, h100).k_splits, 1);
    // 16 K blocks are too short to pay for a hand-over, even on 24 tiles (4.8 us unsplit, 5.4 in two).
    EXPECT_EQ(plan_gemm(m, 1536, 2048, h100).k_splits, 1);
    // 56 tiles of 148 K blocks: long enough that the CTAs' own pace binds (29.2 us unsplit, 27.0 in two).
    EXPECT_EQ(plan_gemm(m, 3584, 18944, h100).k_splits, 2);
    // 160 tiles: 132 + a wave of 28; two shares run 66 + 66 + 28 clusters of half the K blocks (36.6 us
    // unsplit, 34.8 in two).
    const GemmPlan ragged = plan_gemm(m, 10240, 8192, h100);
    EXPECT_TRUE(ragged.tile.swap_ab);
    EXPECT_EQ(ragged.k_splits, 2) << ragged.describe();
    // 448 and 560 tiles: the half-wave tail is already cheap next to 4 full waves (35840 x 5120: 67.7 us
    // unsplit, 71.0 in two).
    EXPECT_EQ(plan_gemm(m, 28672, 4096, h100).k_splits, 1);
    EXPECT_EQ(plan_gemm(m, 35840, 5120, h100).k_splits, 1);
  }
  // Shares of fewer than 8 K blocks lose more to the hand-over than they gain.
  EXPECT_EQ(plan_gemm(32, 10240, 1536, h100).k_splits, 1);
}

// One wave over two row blocks, the second partly filled, streamed the weight twice (bench/NOTES.md #43):
// one row block of a narrower tile, or a multicast pair, instead.
TEST(Heuristics, OneWaveAvoidsAPartlyFilledSecondRowBlock) {
  const DeviceModel h100;
  // 96 x 3584 x 18944: 64x64 took 46.5 us, 128x32 31.0.
  const GemmPlan narrow = plan_gemm(96, 3584, 18944, h100);
  EXPECT_EQ(narrow.tile.block_m, 128) << narrow.describe();
  EXPECT_EQ(narrow.tile.block_n, 32) << narrow.describe();
  // With both row blocks full the second read hits L2: M = 128 keeps 64x64 (35.0 us, 128x32 34.1).
  EXPECT_EQ(plan_gemm(128, 3584, 18944, h100).tile.block_m, 64);
  // 192 x 8192 x 28672: the multicast pair took 120.5 us, the same tile alone 146.8.
  const GemmPlan pair = plan_gemm(192, 8192, 28672, h100);
  EXPECT_EQ(pair.tile.block_m, 128);
  EXPECT_EQ(pair.tile.multicast, 2) << pair.describe();
  EXPECT_EQ(pair.num_waves, 1);
  // Over several waves the pair was no better (192 x 37888 x 3584: 75.1 us, 128x192 alone 71.2).
  EXPECT_EQ(plan_gemm(192, 37888, 3584, h100).tile.multicast, 1);
  // Elsewhere multicast stays unpicked (bench/NOTES.md #19).
  for (int64_t m : {256, 512, 4096}) EXPECT_EQ(plan_gemm(m, 8192, 28672, h100).tile.multicast, 1) << m;
}

TEST(Heuristics, ClusterCapacityLosesEachGpcsRemainder) {
  const DeviceModel h100;
  EXPECT_EQ(h100.max_clusters(1), 132);
  EXPECT_EQ(h100.max_clusters(2), 66);
  EXPECT_EQ(h100.max_clusters(4), 32);
  EXPECT_EQ(h100.max_clusters(8), 16);
}

TEST(Heuristics, LargeProblemsUseWideTilesOnEverySm) {
  // Wide tiles amortise each K block's fixed cost over more FLOPs (bench/NOTES.md #19).
  const GemmPlan plan = plan_gemm(4096, 7168, 16384, DeviceModel{});
  EXPECT_EQ(plan.tile.block_m, 128);
  EXPECT_GE(plan.tile.block_n, 128);
  EXPECT_EQ(plan.tile.multicast, 1) << "multicast is compiled but not picked";
  EXPECT_EQ(plan.grid, 132);
}

TEST(Heuristics, AWidthThatFillsOneWaveBeatsTwoWaves) {
  // 4096 x 576: 32 row blocks x 4 column blocks of 144 is 128 tiles, one wave; 128 or 96 wide is two.
  const GemmPlan plan = plan_gemm(4096, 576, 7168, DeviceModel{});
  EXPECT_EQ(plan.tile.block_m, 128);
  EXPECT_EQ(plan.num_waves, 1) << plan.describe();
}

TEST(Heuristics, EqualSizedTilesUnderTheHbmFloorPreferTwoMathWarpgroups) {
  // M = 128: 128x64 and 64x128 give the same tiles, waves and padding under the same HBM floor; the
  // 128-row tile's two warpgroups hide each other's waits (measured 9% faster, bench/NOTES.md #31).
  for (const auto& [n, k] : {std::pair{7168, 16384}, std::pair{7168, 2048}}) {
    const GemmPlan plan = plan_gemm(128, n, k, DeviceModel{});
    EXPECT_EQ(plan.tile.block_m, 128) << plan.describe();
    EXPECT_EQ(plan.tile.block_n, 64) << plan.describe();
  }
  // Fewer padded rows still come first: M = 64 keeps its 64-row tile.
  EXPECT_EQ(plan_gemm(64, 7168, 16384, DeviceModel{}).tile.block_m, 64);
}

TEST(Heuristics, OneWaveOfWiderRowTilesBeatsTwoWavesThatReReadTheWeight) {
  // M = 128, N = 8192: 64x64 gives 256 tiles (two waves, each weight tile read by two CTAs), 128x64 gives 128
  // (one wave). Both sit under the HBM floor by the K-block terms, but a CTA fills its stages from L2 at only
  // ~70 B/ns: 64x64 measured 106 us at K = 28672, 0.90x cuBLASLt (bench/NOTES.md #41).
  for (const int k : {8192, 28672}) {
    const GemmPlan plan = plan_gemm(128, 8192, k, DeviceModel{});
    EXPECT_EQ(plan.tile.block_m, 128) << plan.describe();
    EXPECT_EQ(plan.num_waves, 1) << plan.describe();
  }
  // Where the 64-row tiles run one wave they stay (128 x 4096 x 14336: 64x64 on 128 SMs).
  EXPECT_EQ(plan_gemm(128, 4096, 14336, DeviceModel{}).tile.block_m, 64);
}

TEST(Heuristics, TwoWaveTilesOnlyWhereTheyFillWavesBetter) {
  // 256x128 (two 128-row waves) costs as much per FLOP as 128x160 (H100, bench/NOTES.md #38): it wins where
  // its tile count fills the waves better (4096x4096x7168: 4 waves of 128 CTAs against 7.8 of 128x128,
  // measured 195 vs 203 us) and loses where it leaves a ragged last wave (4096x2112x7168: 272 tiles,
  // 141 us against 97 for 128x192) or where K is short (1024x4096x4096: 29.8 against 29.4 us).
  // Long K favours it most: 4096x4096x28672 762 us against 852-863 for 128x128.
  for (const auto& [m, n, k] : {std::tuple{4096, 4096, 7168}, std::tuple{4096, 4096, 28672},
                                std::tuple{1024, 8192, 28672}, std::tuple{2048, 4096, 14336}})
    EXPECT_EQ(plan_gemm(m, n, k, DeviceModel{}).tile.block_m, 256) << m << "x" << n << "x" << k;
  for (const auto& [m, n, k] :
       {std::tuple{4096, 2112, 7168}, std::tuple{4096, 7168, 16384}, std::tuple{512, 2112, 7168},
        std::tuple{4096, 576, 7168}, std::tuple{512, 4096, 7168}, std::tuple{1024, 4096, 4096},
        std::tuple{512, 8192, 3072}, std::tuple{1024, 32768, 512}}) {
    const GemmPlan plan = plan_gemm(m, n, k, DeviceModel{});
    EXPECT_LE(plan.tile.block_m, 128) << plan.describe();
  }
}

TEST(Heuristics, TheInputSharingPairRunsWhereTheTwoWaveTileWins) {
  // Its CTAs pull 24 KB less from L2 per K block (the L2 term): at equal tile counts it ranks ahead of the
  // 256x128 tile alone, and nowhere else does it change the pick (H100, bench/NOTES.md #47).
  for (const auto& [m, n, k] : {std::tuple{4096, 4096, 7168}, std::tuple{4096, 4096, 28672},
                                std::tuple{1024, 8192, 28672}, std::tuple{2048, 4096, 14336}})
    EXPECT_EQ(plan_gemm(m, n, k, DeviceModel{}).tile, (TileShape{256, 128, 2, false, true}))
        << m << "x" << n << "x" << k;
  EXPECT_LT(make_plan(TileShape{256, 128, 2, false, true}, 1, 4096, 4096, 7168, DeviceModel{}).estimated_us,
            make_plan(TileShape{256, 128}, 1, 4096, 4096, 7168, DeviceModel{}).estimated_us);
  // An odd column-block count pads a tile per row block: 17 column blocks (N = 2112) keep 128-row tiles.
  EXPECT_EQ(plan_gemm(4096, 2112, 7168, DeviceModel{}).tile.block_m, 128);
}

TEST(Heuristics, TheRasterGroupMinimisesTheRowsOneWaveReads) {
  const DeviceModel h100;
  // 256x128 pairs at M = 4096 (16 row blocks): 16 columns per group, 9 x 256 + 16 x 128 = 4352 rows per
  // wave against 16 x 256 + 12 x 128 = 5632 with 8 (DeepGEMM's order for its pair, bench/NOTES.md #49).
  const TileShape pair{256, 128, 2, false, true};
  EXPECT_EQ(raster_group_cols(pair, 4096, 4096, 132), 16);
  EXPECT_EQ(make_plan(pair, 1, 4096, 4096, 7168, h100).raster_group_cols, 16);
  // 128x160 at 4096 x 7168: 17 x 128 + 8 x 160 = 3456 rows with 8, 9 x 128 + 16 x 160 = 3712 with 16.
  EXPECT_EQ(raster_group_cols(TileShape{128, 160}, 4096, 7168, 132), 8);
  // 128x128: 17 x 128 + 8 x 128 = 9 x 128 + 16 x 128, a tie, keeps 8 (every earlier measurement's order).
  EXPECT_EQ(raster_group_cols(TileShape{128, 128}, 4096, 7168, 132), 8);
  // Few row blocks: a wave wraps over several groups of 8 and reads every row block anyway. 16 columns per
  // group save 8.5% at 2048 x 8192 on 128x144 (9 x 128 + 16 x 144 against 16 x 128 + 12 x 144): below the
  // 10% that moves a plan; 12% at 2048 x 2112 (15 column blocks in one group: 9 x 128 + 15 x 144).
  EXPECT_EQ(raster_group_cols(TileShape{128, 144}, 2048, 8192, 132), 8);
  EXPECT_EQ(raster_group_cols(TileShape{128, 144}, 2048, 2112, 132), 16);
  // Too few column blocks for a second group: 8.
  EXPECT_EQ(raster_group_cols(TileShape{128, 128}, 8192, 1024, 132), 8);
  EXPECT_EQ(raster_group_cols(TileShape{16, 64, 1, true}, 16, 7168, 112), 8);
  EXPECT_NE(make_plan(pair, 1, 4096, 4096, 7168, h100).describe().find("raster=16"), std::string::npos);
}

TEST(Heuristics, OddRowBlocksArePaddedToWholeClusters) {
  const TileShape tile{128, 128, 2};
  EXPECT_EQ(num_tiles_launched(tile, 300, 256), 4 * 2);  // 3 row blocks -> 4
  EXPECT_EQ(grid_for(tile, 1, 8, DeviceModel{}), 8);
  DeviceModel odd;
  odd.num_sms = 131;
  EXPECT_EQ(grid_for(tile, 1, 1000, odd), 130);  // whole clusters only
}

TEST(Heuristics, OddColumnBlocksArePaddedToWholeInputSharingClusters) {
  const TileShape tile{256, 128, 2, false, true};
  EXPECT_EQ(num_tiles_launched(tile, 300, 5 * 128 - 16), 2 * 6);  // 5 column blocks -> 6, rows unpadded
  EXPECT_EQ(num_tiles_launched(tile, 513, 4 * 128), 3 * 4);
  EXPECT_FALSE(tile == (TileShape{256, 128, 2}));  // not the weight-sharing cluster
  EXPECT_NE(make_plan(tile, 1, 4096, 4096, 7168, DeviceModel{}).describe().find("shares=A"),
            std::string::npos);
}

TEST(Heuristics, EstimateGrowsWithWork) {
  const DeviceModel h100;
  const TileShape tile{128, 128};
  EXPECT_LT(estimate_us(tile, 1, 4096, 4096, 4096, h100), estimate_us(tile, 1, 8192, 4096, 4096, h100));
  EXPECT_LT(estimate_us(tile, 1, 4096, 4096, 4096, h100), estimate_us(tile, 1, 4096, 4096, 8192, h100));
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

// A bf16 input is quantized inside the GEMM exactly for the swapAB tiles of up to kMaxTokensQuantizedInKernel
// tokens (which compile the quantizer warps) and by the stand-alone quantizer otherwise; today that is every
// decode-sized M (<= kMaxSwapAbM).
TEST(Heuristics, Bf16InputIsQuantizedInKernelForTheSmallSwapAbTiles) {
  const DeviceModel h100;
  for (int64_t m = 1; m <= 4096; m += (m < 80 ? 1 : 97)) {
    for (int64_t n : {576, 2112, 7168, 24576}) {
      for (int64_t k : {512, 7168}) {
        const GemmPlan plan = plan_gemm(m, n, k, h100);
        const bool small_swap_tile = plan.tile.swap_ab && plan.tile.block_m <= kMaxTokensQuantizedInKernel;
        EXPECT_EQ(quantizes_input_in_kernel(plan), small_swap_tile) << m << "x" << n << "x" << k;
        if (m <= kMaxSwapAbM) {
          EXPECT_TRUE(quantizes_input_in_kernel(plan))
              << m << "x" << n << "x" << k << ": " << plan.describe();
        }
      }
    }
  }
}

// bench/NOTES.md #63, #71, #78: the input-scale copy runs before the long normal plans of the tiles where it
// measured faster (128 rows but 128x192, the 256-row tiles), from 150 us modelled, from 50 us where K >=
// 16384 (scale rows 512 B apart); never before swapAB ones, 128x192, short plans or below 128 rows.
TEST(Heuristics, InputScalesAreTransposedOnlyWhereTheCopyMeasuredFaster) {
  const DeviceModel h100;
  auto transposes = [&](int64_t m, int64_t n, int64_t k) {
    return transposes_input_scales(plan_gemm(m, n, k, h100), m, k);
  };
  EXPECT_TRUE(transposes(4096, 7168, 16384));  // 128x160
  EXPECT_TRUE(transposes(4096, 7168, 4096));   // 128x160, ~183 us
  EXPECT_TRUE(transposes(4090, 7168, 4096));   // the GPU test's shape
  EXPECT_TRUE(transposes(2048, 8192, 28672));  // 128x144
  EXPECT_TRUE(transposes(4096, 4096, 7168));   // the 256x128 pair
  EXPECT_FALSE(transposes(2050, 4096, 7168));  // 128x192
  EXPECT_FALSE(transposes(8192, 7168, 2048));  // 128x192
  EXPECT_FALSE(transposes(1534, 7168, 7168));  // 128x144, ~132 us: too short
  for (const int64_t m : {1, 16, 32, 64, 127}) EXPECT_FALSE(transposes(m, 7168, 16384));
  // K = 16384: from 50 us. 512x7168x16384 (128x112, ~106 us) measured 111.2 us row-major against 96.3 with
  // M-contiguous scales; 128x7168x16384 (128x64, ~42 us) 44.0 against 44.3: no copy.
  EXPECT_TRUE(transposes(512, 7168, 16384));
  EXPECT_TRUE(transposes(256, 7168, 16384));   // 128x112, ~53 us
  EXPECT_FALSE(transposes(128, 7168, 16384));  // 128x64, ~42 us
  EXPECT_FALSE(transposes(512, 7168, 7168));   // the same 128x112 plan at K = 7168, ~47 us
  EXPECT_FALSE(transposes(768, 7168, 16384));  // 128x192
  // The rule itself: by tile, then a 128x160 plan estimated just below and just above the threshold.
  GemmPlan plan;
  plan.estimated_us = 1000;
  for (const TileShape& tile : kTileShapes) {
    plan.tile = tile;
    const bool measured_faster = !tile.swap_ab && tile.block_m >= 128 && tile.block_n != 192;
    EXPECT_EQ(transposes_input_scales(plan, 4096, 7168), measured_faster)
        << tile.block_m << "x" << tile.block_n;
  }
  plan.tile = TileShape{128, 160};
  plan.estimated_us = kTransposeInputScalesMinUs - 1;
  EXPECT_FALSE(transposes_input_scales(plan, 4096, 7168));
  EXPECT_FALSE(transposes_input_scales(plan, 4096, kWideScaleRowsK - 128));
  EXPECT_TRUE(transposes_input_scales(plan, 4096, kWideScaleRowsK));
  plan.estimated_us = kTransposeWideScaleRowsMinUs - 1;
  EXPECT_FALSE(transposes_input_scales(plan, 4096, kWideScaleRowsK));
  plan.estimated_us = kTransposeWideScaleRowsMinUs;
  EXPECT_TRUE(transposes_input_scales(plan, 4096, kWideScaleRowsK));
  plan.estimated_us = kTransposeInputScalesMinUs;
  EXPECT_TRUE(transposes_input_scales(plan, 4096, 7168));
  EXPECT_FALSE(transposes_input_scales(plan, kTransposeInputScalesMinRows - 1, 7168));
  // The copy's size: (K/128, ceil4(M)) floats where it is made, else nothing.
  EXPECT_EQ(input_scale_copy_bytes(plan, 4090, 7168), int64_t{56} * 4092 * 4);
  EXPECT_EQ(input_scale_copy_bytes(plan, 4096, 16384), int64_t{128} * 4096 * 4);
  EXPECT_EQ(input_scale_copy_bytes(plan_gemm(8192, 7168, 2048, h100), 8192, 2048), 0) << "128x192";
  EXPECT_EQ(input_scale_copy_bytes(plan, 4096, int64_t{65535} * 32 * 128 + 128), 0) << "past the copy's grid";
}

}  // namespace
}  // namespace blockgemm::heuristics
