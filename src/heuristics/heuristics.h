// Kernel selection: pure functions of the problem size and the device's SM count (no CUDA here), so the
// choices can be unit-tested on any machine.
#pragma once

#include <cstdint>
#include <string>

namespace blockgemm::heuristics {

// block_m rows of the input (tokens) by block_n rows of the weight.
struct TileShape {
  int block_m, block_n;
  int multicast = 1;     // CTAs per cluster sharing (multicasting) one operand tile
  bool swap_ab = false;  // weight rows on wgmma's 64-row side, tokens on its narrow N side (small M)
  // Which operand the cluster shares: false, its CTAs are stacked along M and share the weight tile; true,
  // they sit side by side along N and share the input tile (and each loads half of it).
  bool multicast_a = false;
  constexpr bool operator==(const TileShape& other) const {
    return block_m == other.block_m && block_n == other.block_n && multicast == other.multicast &&
           swap_ab == other.swap_ab && multicast_a == other.multicast_a;
  }
  // 64 rows each; a 256-row normal tile runs as two waves of two (kernels/gemm_config.h).
  constexpr int num_math_warpgroups() const { return (swap_ab ? block_n : block_m) >= 128 ? 2 : 1; }
};

// Every tile shape the library compiles a kernel for. The launcher instantiates exactly this list, so a
// plan can never name a kernel that does not exist. BLOCK_N is a multiple of 16 (whole 32-byte output
// strips) and two accumulator sets must fit the math warpgroups' registers (no spills with per-block scales;
// 24 B in the per-row 128x192 kernel). Narrow tiles put more CTAs to work streaming the weight at small M;
// the widths 96..192 let the tile count fill whole waves of SMs, and 128x144..192 spend less per FLOP
// (bench/NOTES.md #19; 64x112..192 and three-warpgroup 192-row tiles measured slower, #5, #18, #23). 256x128
// runs two 128-row waves per K block: as cheap per FLOP as 128x160, another tile count for the waves (#38).
// 256x128 in pairs along N that share the input tile halves the bytes each SM pulls from L2 for A: 32 KB
// per K block instead of 48 (issue 23; bench/NOTES.md #44).
// The swapAB tiles serve small M: 8 to 64 tokens against 64 weight rows (128 rows were never faster, #14).
inline constexpr TileShape kTileShapes[] = {
    {64, 16},         {64, 32},          {64, 64},          {64, 96},
    {64, 128},        {128, 32},         {128, 64},         {128, 96},
    {128, 128},       {128, 128, 2},     {128, 112},        {128, 144},
    {128, 160},       {128, 192},        {256, 128},        {256, 128, 2, false, true},
    {8, 64, 1, true}, {16, 64, 1, true}, {32, 64, 1, true}, {64, 64, 1, true}};
inline constexpr int kNumTileShapes = sizeof(kTileShapes) / sizeof(kTileShapes[0]);

// Rough H100 rates the cost model ranks candidates with (ratios matter, not absolute values).
struct DeviceModel {
  int num_sms = 132;
  double hbm_bytes_per_ns = 2900;  // weight streaming, measured
  int num_gpcs = 8;                // a cluster's CTAs share a GPC
  // Clusters of `size` CTAs that fit at once, one CTA per SM (the launcher clamps to the driver's count).
  // Pairs tile every GPC (even SM counts); larger clusters lose each GPC's remainder.
  int max_clusters(int size) const {
    return size <= 2 ? num_sms / size : num_gpcs * (num_sms / num_gpcs / size);
  }
};

// Split-K runs a tile's K shares on the CTAs of one cluster: at most a portable cluster's 8.
inline constexpr int kMaxSplitK = 8;

struct GemmPlan {
  TileShape tile{0, 0};
  int64_t num_tiles = 0;
  int k_splits = 1;  // CTAs (one cluster) per tile, each taking a contiguous share of the K blocks
  int grid = 0;      // persistent CTAs (a multiple of the cluster size, tile.multicast * k_splits)
  int64_t num_waves = 0;
  // Dense tile order: weight column blocks per raster group (kernels/tile_scheduler.cuh), see
  // raster_group_cols. Grouped plans keep the default (their scheduler walks its own order).
  int raster_group_cols = 8;
  double estimated_us = 0;
  std::string describe() const;
};

// Tiles the kernel runs for (row blocks padded to whole clusters) and its persistent grid.
int64_t num_tiles_launched(TileShape tile, int64_t m, int64_t n);
int grid_for(TileShape tile, int k_splits, int64_t num_tiles, const DeviceModel& device);

// A plan for `tile` with `k_splits` (grid, waves, estimate filled in).
GemmPlan make_plan(TileShape tile, int k_splits, int64_t m, int64_t n, int64_t k, const DeviceModel& device);

// Estimated time of the persistent 1D2D kernel with `tile` on an (m, n, k) problem.
double estimate_us(TileShape tile, int k_splits, int64_t m, int64_t n, int64_t k, const DeviceModel& device);

// The raster group width (weight column blocks, 8 or 16) whose first wave of `grid` CTAs touches the fewest
// operand rows: row blocks x block_m + column blocks x block_n, the bytes per K block that wave reads from
// HBM when its CTAs re-read each other's tiles from L2. 16 only where it saves 10% of them. A 256x128 pair
// sharing the input tile at M = 4096 then runs 9 row blocks x 16 column blocks at once (4352 rows) instead of
// all 16 x 12 (5632): DeepGEMM's order for that tile (bench/NOTES.md #49).
int raster_group_cols(TileShape tile, int64_t m, int64_t n, int grid);

// Up to this many tokens the weight rows always go on wgmma's 64-row side (swapAB tiles); up to
// kMaxSplitKSwapAbM they do where the normal tiles would leave more than half of the SMs idle.
inline constexpr int64_t kMaxSwapAbM = 32;
inline constexpr int64_t kMaxSplitKSwapAbM = 64;

// The best normal (not swapped) tile for an (m, n, k) problem by the cost model, without split-K.
GemmPlan plan_normal(int64_t m, int64_t n, int64_t k, const DeviceModel& device);

// The swapAB plan: the tile with the fewest padded tokens (m <= 64) and the split-K factor that the wave
// model of the weight stream, hand-over included, says gains more than 5% on the unsplit plan.
GemmPlan plan_swap_ab(int64_t m, int64_t n, int64_t k, const DeviceModel& device);

// The plan for an (m, n, k) problem: plan_swap_ab for M <= kMaxSwapAbM (only swapAB tiles split K), else
// plan_normal (ties go to the larger grid, then to the larger tile: fewer operand re-reads) unless the
// swapAB rule above applies.
GemmPlan plan_gemm(int64_t m, int64_t n, int64_t k, const DeviceModel& device);

// A bf16 input is quantized inside the GEMM (no quantizer launch, no round trip of the fp8 copy through
// memory) when the plan is a swapAB tile of at most this many tokens; otherwise per_token_cast_to_fp8 runs
// first (bench/NOTES.md #30, #34).
inline constexpr int kMaxTokensQuantizedInKernel = 32;
inline bool quantizes_input_in_kernel(const GemmPlan& plan) {
  return plan.tile.swap_ab && plan.tile.block_m <= kMaxTokensQuantizedInKernel;
}

// Row-major input scales, the (M, K/128) layout per_token_cast_to_fp8 returns, cost a normal tile one 4-byte
// gather per row and K block, each its own shared-memory wavefront (bench/NOTES.md #60); M-contiguous ones
// reach a stage as one bulk copy (#67, #69). Before long plans the API copies them M-contiguous into the
// caller's workspace, a ~2-3 us kernel (#63). Measured (H100, column-major against row-major scales, same
// run, twenty-first session): 128x128 -4.6% at 2048x4096x7168, -9.3% at 1024x7168x16384; the 256x128 pair
// -12% cycles at 4096x7168x16384 (row-major scales 512 B apart fall on few L2 sets), 0% at 4096x4096x7168
// before #69's -0.8..-2.3%; 128x160 -4.9% at 4096x7168x16384 (#63, before #67's -3.7%). Not before 128x192:
// -2.4% at 4096x2112x7168 but +0..+5% on five shapes in #63 and noisy at 2048x4096x7168 in this run. Where
// the scale rows lie 512 B or more apart (K >= kWideScaleRowsK) the gathers cost several times more (few L2
// sets, #69), so the copy pays from kTransposeWideScaleRowsMinUs: 512x7168x16384 (128x112, ~106 us modelled)
// ran 111.2 us with row-major scales and 96.3 with M-contiguous ones (H100, Python suite, same run, twenty-
// fifth session; bench/NOTES.md #78). (The rule reads K, not the scales' actual row stride, so that the size
// query, which may not see input_scale, and the call agree.) The Python wrapper asks for the workspace only
// from kTransposeInputScalesMinRows rows (python/blockgemm/_gemm.py): keep the two equal.
inline constexpr double kTransposeInputScalesMinUs = 150;
inline constexpr double kTransposeWideScaleRowsMinUs = 50;
inline constexpr int64_t kWideScaleRowsK = 16384;
inline constexpr int64_t kTransposeInputScalesMinRows = 128;
inline bool transposes_input_scales(const GemmPlan& plan, int64_t m, int64_t k) {
  const TileShape tile = plan.tile;
  const bool gains = !tile.swap_ab && tile.block_m >= 128 && !(tile.block_m == 128 && tile.block_n == 192);
  const double min_us = k >= kWideScaleRowsK ? kTransposeWideScaleRowsMinUs : kTransposeInputScalesMinUs;
  return gains && m >= kTransposeInputScalesMinRows && plan.estimated_us >= min_us;
}
// The grouped contiguous call copies them before every plan of a 128-row tile estimated at 50 us or more:
// the grouped 128-row tiles take M-contiguous scales as one bulk copy per stage whatever row a group starts
// at (#70, #72), and their plans are mostly 128x192 pairs, for which the bulk copy measured -8% / -15%
// cycles (H100; bench/NOTES.md #72), many times the copy's ~2-3 us. The 256-row grouped tile gathers per
// row whatever the layout.
inline constexpr double kTransposeGroupedInputScalesMinUs = 50;
inline bool transposes_grouped_input_scales(const GemmPlan& plan, int64_t m) {
  return !plan.tile.swap_ab && plan.tile.block_m == 128 && m >= kTransposeInputScalesMinRows &&
         plan.estimated_us >= kTransposeGroupedInputScalesMinUs;
}
// The masked call makes it per group, only the rows below each group's count but into room for all M_max
// of them: where M_max is at most kTransposeMaskedMaxRowsPerExpected times the expected rows, so that the
// workspace stays in proportion to the work (a decode engine's M_max may be many times its expected M).
inline constexpr int64_t kTransposeMaskedMaxRowsPerExpected = 4;
inline bool transposes_masked_input_scales(const GemmPlan& plan, int64_t num_groups, int64_t m_max,
                                           int64_t expected_m) {
  return transposes_grouped_input_scales(plan, num_groups * m_max) && num_groups <= 65535 &&
         m_max <= kTransposeMaskedMaxRowsPerExpected * expected_m;
}
// Bytes of that copy, (K/128, ceil4(M)) floats, before alignment; 0 where `plan` (a dense one, or a grouped
// contiguous one) makes none. The copy's grid has ceil(K/128 / 32) blocks on y, at most 65535.
inline int64_t input_scale_copy_bytes(const GemmPlan& plan, int64_t m, int64_t k, bool grouped = false) {
  const int64_t k_groups = k / 128;
  const bool copies =
      grouped ? transposes_grouped_input_scales(plan, m) : transposes_input_scales(plan, m, k);
  if (!copies || k_groups > int64_t{65535} * 32) return 0;
  return (m + 3) / 4 * 4 * k_groups * static_cast<int64_t>(sizeof(float));
}

// ---- grouped GEMM (mixture of experts) -------------------------------------------------------------------
// One persistent kernel runs every group: its tile scheduler walks (group, row block, column block) units,
// group g taking rows [row_start_g, row_start_g + rows_g) of the input and weight rows [g N, g N + N). The
// per-group row counts live in device memory (routing decides them, and a captured CUDA graph replays with
// new ones), so a plan is chosen from a host-side hint: the average rows per group (contiguous layout:
// M_total / G) or the caller's expected M (masked layout).
//
// The tiles compiled for it: the normal 128x128, the wider 128x160 and 128x192 (fewer fixed costs per FLOP,
// as in the dense plans at large M), 128x128 and 128x192 in pairs along M that share the weight tile, and
// the two-wave 256x128, alone or in pairs along N that share the input tile (prefill, many rows per group; a
// pair's CTAs always work in the same group), and
// the swapAB tiles of 8..64 tokens against 64 weight rows (decode: a handful of tokens per expert, where the
// weights stream from HBM and what counts is how many SMs pull them). No split-K: a group's tiles x G groups
// already give every SM work in all but the smallest problems, and the split tile's cluster hand-over would
// have to follow group boundaries the host cannot see.
inline constexpr TileShape kGroupedTileShapes[] = {{128, 128},
                                                   {128, 160},
                                                   {128, 192},
                                                   {128, 128, 2},
                                                   {128, 192, 2},
                                                   {256, 128},
                                                   {256, 128, 2, false, true},
                                                   {8, 64, 1, true},
                                                   {16, 64, 1, true},
                                                   {32, 64, 1, true},
                                                   {64, 64, 1, true}};
inline constexpr int kNumGroupedTileShapes = sizeof(kGroupedTileShapes) / sizeof(kGroupedTileShapes[0]);

// The 256x128 and 128x192 tiles are compiled for 128x128 weight blocks only: with per-row weight scales their
// math warpgroups spill (256x128 20 bytes, as the dense one does; 128x192 16 bytes under the grouped
// kernel's 216-register budget), so plans with per-row scales stop at 128x160.
constexpr bool grouped_tile_compiled(TileShape tile, bool per_row_weight_scale) {
  return !(per_row_weight_scale && (tile.block_m == 256 || tile.block_n > 160));
}

// The rows-per-group hint (average, or expected M) is a mean: routing spreads the groups' counts around it
// (DeepGEMM's tests and our benchmark draw them from [0.7, 1.3] x expected M). A tile sized to the mean runs
// a second, mostly padded row block for every group above it, which streams that group's weight again. So
// the grouped plan takes a swapAB tile only where one holds kGroupRowsSpread x the hint (the fewest padded
// tokens that do), and a normal tile by the cost model otherwise. Measured on the masked layout (H100, plan
// sweep, bench/NOTES.md #66): expected M = 16, 8 x 4096 x 7168: the 32-token tile 80.2 us where the
// 16-token one took 94.4; expected M = 64 (counts up to 83): 128x128 86.0 us against 98.2 for two 64-token
// row blocks, 174.6 against 204.9 at 32 x 7168 x 2048.
inline constexpr int64_t kMaxGroupedSwapAbRows = 64;
inline constexpr double kGroupRowsSpread = 1.3;

// Rows per group the contiguous plan is made for: ceil(M_total / G), at least 1.
int64_t grouped_average_rows(int64_t m_total, int64_t num_groups);

// Upper bounds on the tiles a grouped kernel runs for any valid group table (the host cannot read the
// device-resident one): the persistent grid is sized from them, so a table past them (overlapping ranges from
// a malformed group index, say) only leaves each CTA more units to walk. Contiguous: each group's last row
// block may be partial, so at most ceil(M_total / BLOCK_M) + G row blocks (and never more than
// G * ceil(M_total / BLOCK_M)). Masked: every group full, G * ceil(M_max / BLOCK_M) row blocks (any counts:
// they are clamped to M_max). A pair along M adds a tile past N to each of its tail row blocks where the
// column blocks are odd (kernels/tile_scheduler.cuh).
int64_t contiguous_tiles_upper_bound(TileShape tile, int64_t m_total, int64_t num_groups, int64_t n);
int64_t masked_tiles_upper_bound(TileShape tile, int64_t num_groups, int64_t m_max, int64_t n);

// Estimated time of a grouped problem of `num_groups` groups of `rows_per_group` rows each on `tile`: the
// per-tile terms of the dense model (estimate_us) over the waves of G * ceil(rows / BLOCK_M) * ceil(N /
// BLOCK_N) tiles, floored by the HBM time of every operand byte (each group's weight once).
double estimate_grouped_us(TileShape tile, int64_t num_groups, int64_t rows_per_group, int64_t n, int64_t k,
                           const DeviceModel& device);

// A grouped plan for `tile`: num_tiles is the tile count of the hint (G groups of rows_per_group rows),
// grid min(max_tiles, SMs) in whole clusters (at least one), k_splits 1.
GemmPlan make_grouped_plan(TileShape tile, int64_t max_tiles, int64_t num_groups, int64_t rows_per_group,
                           int64_t n, int64_t k, const DeviceModel& device);

// The tile for groups of about `rows_per_group` rows (see kMaxGroupedSwapAbRows), none of which holds more
// than `max_rows_per_group` (masked: M_max).
TileShape grouped_tile(int64_t num_groups, int64_t rows_per_group, int64_t n, int64_t k,
                       bool per_row_weight_scale, const DeviceModel& device,
                       int64_t max_rows_per_group = INT64_MAX);

// Contiguous layout: M_total rows split among G groups (tile from the average rows per group).
GemmPlan plan_grouped_contiguous(int64_t m_total, int64_t num_groups, int64_t n, int64_t k,
                                 bool per_row_weight_scale, const DeviceModel& device);
// Masked layout: G groups of at most M_max rows, about expected_m valid (clamped to [1, M_max]), the tile as
// for contiguous groups of that many rows. (Forcing 128x128 on groups of up to three row blocks, #75,
// measured 12-14% slower than the model's 128x192 at G = 32 / 64 x 256, 4096 x 7168: bench/NOTES.md #75.)
GemmPlan plan_grouped_masked(int64_t num_groups, int64_t m_max, int64_t expected_m, int64_t n, int64_t k,
                             bool per_row_weight_scale, const DeviceModel& device);

}  // namespace blockgemm::heuristics
