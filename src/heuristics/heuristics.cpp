#include "heuristics/heuristics.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <tuple>

namespace blockgemm::heuristics {
namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Time of one 128-wide K block of one tile, fitted to `blockgemm-plan-sweep` on H100 (69 shapes, M 128..4096,
// DeepSeek-V3 and other models' projections; bench/NOTES.md #19): a fixed part (barrier round trips, the
// wgmma wait, the promotion the other warpgroup cannot hide) plus a part per output element of the tile
// (the tensor core itself: ~0.019 ns per element is ~1.7 PFLOP/s per GPU). Wider tiles amortise the fixed
// part, which is why 128x192 beats 128x128 by ~5% per FLOP.
struct KBlockCost {
  double fixed_ns, ns_per_element;
};
KBlockCost k_block_cost(TileShape tile) {
  // A 256-row tile is two 128-row waves per K block, each with its own wgmma wait and promotion: twice the
  // fixed part (H100: 0.856 us per K block at 4096x4096x7168, 0.847 at 4096x7168x16384, bench/NOTES.md #38).
  if (tile.block_m == 256) return KBlockCost{220.0, 0.019};
  return tile.num_math_warpgroups() >= 2 ? KBlockCost{110.0, 0.019} : KBlockCost{80.0, 0.025};
}

// Bytes one CTA pulls from L2 per K block: its input and weight tiles, the one a cluster shares split
// between the cluster's CTAs (each loads its slice and multicasts it).
double l2_bytes_per_k_block(TileShape tile) {
  const int share_a = tile.multicast_a ? tile.multicast : 1;
  const int share_b = tile.multicast_a ? 1 : tile.multicast;
  return 128.0 * (static_cast<double>(tile.block_m) / share_a + static_cast<double>(tile.block_n) / share_b);
}

// What the L2 traffic of a K block costs beyond the fitted terms above, for tiles of 128x128 and larger (the
// fit's reference: 32 KB per K block; smaller tiles have the fill-rate bound in estimate_us instead). At the
// power cap the card's clock follows its energy per FMA, and bytes moved are part of it: the 256x128 pair
// that shares its input tile along N (24 KB less from L2 per K block than the 256x128 tile alone) measured
// 0.94x the single tile's time at 4096x4096x7168 and 0.97x at 4096x7168x2048 (burst sweep; H100,
// bench/NOTES.md #47). 1.5 ps per byte is 25 ns of the 256x128 tile's ~840 ns K block: enough to rank the
// pair ahead of the single tile, not ahead of the 128-row tiles where those win (4096x7168x16384 keeps
// 128x160: the burst sweep favoured it by 7%, though the pair was 2% faster at steady state).
constexpr double kL2NsPerByte = 0.0015;
constexpr double kL2ReferenceBytes = 128.0 * (128 + 128);
double l2_traffic_ns(TileShape tile) {
  if (tile.block_m * tile.block_n < 128 * 128) return 0;
  return kL2NsPerByte * (l2_bytes_per_k_block(tile) - kL2ReferenceBytes);
}

// Per tile on top of its K blocks: the epilogue and the pipeline bubble between tiles (same fit).
constexpr double kTileOverheadNs = 450;
// A 256-row tile stores its two waves one after the other and refills a ring of only three stages: fitted
// 1.6-1.8 us on H100 over 4096 x 4096 x {4096..28672}. Set lower, because the 128-row terms above
// underestimate long K (4096x4096x28672 on 128x128: 857 us measured, 758 modelled; the 256-row tile's K
// block cost stays 0.84 us from K = 4096 to 28672): with 1.2 us, of 21 shapes measured both ways every
// 256-row plan picked was the faster, the shapes where it lost (K <= 4096 in one or two waves, 1-5%) keep the
// 128-row plan, and two 1-3% wins are missed (bench/NOTES.md #38, #39).
constexpr double kTwoWaveTileOverheadNs = 1200;

// A CTA fills its stages from L2 at no more than ~67-69 B/ns (H100, M = 128: 64x64 tiles at 4096x14336,
// 128x64 at 7168x16384), which the K-block terms above, fitted on large tiles, overstate for tiles smaller
// than 128x128 (64x64: 88 B/ns modelled). Where that matters the plan runs two waves of 64-row tiles that
// each re-read the weight, instead of one wave of 128-row tiles: 128 x 8192 x 28672 on 64x64 took 106 us,
// 0.90x cuBLASLt (bench/NOTES.md #41). Set above the measured rate, so that it overrides the fitted terms
// only where they are far off; at 67 B/ns it moved a dozen shapes onto plans that measured slower.
constexpr double kStageFillBytesPerNs = 75;
// A wave of swapAB tiles runs its K blocks at the pace of HBM when it has the SMs to saturate it, and no
// faster than each CTA's own fill rate when it has few: one CTA keeps only its ring's stages in flight, which
// over the DRAM latency came to about 44 GB/s on H100, half a full wave's share of 2.9 TB/s. Fitted on the
// swapAB plans of 46 shapes at M = 16 and 32, every split 1..8 (bench/NOTES.md #42): 32 x 2112 x 7168 (33
// tiles, 56 K blocks) took 10.9 us unsplit, 9.6 split in two; 32 x 10240 x 8192 (132 + 28 tiles) 36.6, 34.8.
constexpr double kSparseWaveKBlockFraction = 0.5;
// What a split tile's hand-over of partials through distributed shared memory and its cluster barriers cost,
// in K blocks of a full wave (0.37 us each on H100): kSplitHandOverKBlocks + k_splits. Fitted on the same 46
// shapes: 1.5 us at two splits. It is why short K loses by splitting even where the SMs idle: 32 x 4096 x
// 4096 (64 tiles, 32 K blocks) took 8.9 us unsplit and 9.9 split in two, 32 x 1536 x 2048 4.8 and 5.4.
constexpr double kSplitHandOverKBlocks = 2;

// Time of a swapAB plan in units of one K block of a full wave: the K blocks of a share times the waves of
// clusters, a partly filled wave counted by its CTAs but never below kSparseWaveKBlockFraction, plus the
// hand-over of a split tile.
double swap_ab_stream_time(int64_t num_tiles, int k_splits, int64_t k_blocks, const DeviceModel& device) {
  const int64_t clusters = device.max_clusters(k_splits);
  const int64_t full_waves = num_tiles / clusters;
  const int64_t last_wave_tiles = num_tiles % clusters;
  auto wave_time = [&](int64_t tiles) {
    return std::max(static_cast<double>(tiles * k_splits) / device.num_sms, kSparseWaveKBlockFraction);
  };
  const double waves =
      full_waves * wave_time(clusters) + (last_wave_tiles ? wave_time(last_wave_tiles) : 0.0);
  const double hand_over = k_splits > 1 ? kSplitHandOverKBlocks + k_splits : 0.0;
  return static_cast<double>(ceil_div(k_blocks, k_splits)) * waves + hand_over;
}
}  // namespace

int64_t num_tiles_launched(TileShape tile, int64_t m, int64_t n) {
  // Clusters take whole groups of `multicast` row blocks (column blocks when they share the input tile):
  // an odd count is padded with an idle tile.
  const int64_t row_blocks = ceil_div(m, tile.block_m), col_blocks = ceil_div(n, tile.block_n);
  if (tile.multicast_a) return row_blocks * (ceil_div(col_blocks, tile.multicast) * tile.multicast);
  return ceil_div(row_blocks, tile.multicast) * tile.multicast * col_blocks;
}

int grid_for(TileShape tile, int k_splits, int64_t num_tiles, const DeviceModel& device) {
  const int cluster_size = tile.multicast * k_splits;
  const int64_t clusters = std::min<int64_t>(num_tiles / tile.multicast, device.max_clusters(cluster_size));
  return static_cast<int>(std::max<int64_t>(clusters, 1) * cluster_size);
}

// A single wave whose M spans two row blocks, the second one partly filled, streamed the weight from HBM
// once per row block: H100, 96 x 3584 x 18944 on 64x64 tiles took 46.5 us (2.9 TB/s of twice the weight)
// where M = 128 on the same tiles took 35.0 and one 128x32 row block 31.0; 96 x 4096 x 4096 11.4 against 9.8;
// 192 x 8192 x 28672 on 128x128 146.8 us, and 120.5 as a multicast pair, which loads each weight tile once
// for both row blocks (bench/NOTES.md #43). With full row blocks, or over several waves, the second read hit
// L2 in every sweep so far.
bool one_wave_over_a_partial_row_pair(TileShape tile, int64_t m, int64_t waves) {
  return waves == 1 && ceil_div(m, tile.block_m) == 2 && m % tile.block_m != 0;
}

// Ranks the normal tiles (plan_normal). SwapAB plans follow measured rules instead (plan_swap_ab); for them
// this is only a rough figure for describe().
double estimate_us(TileShape tile, int k_splits, int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  const int64_t num_tiles = num_tiles_launched(tile, m, n);
  const int64_t grid = grid_for(tile, k_splits, num_tiles, device);
  const int64_t waves = ceil_div(num_tiles * k_splits, grid);
  const int64_t k_blocks = ceil_div(ceil_div(k, 128), k_splits);  // the longest share

  const KBlockCost cost = k_block_cost(tile);
  const double tile_overhead_ns = tile.block_m == 256 ? kTwoWaveTileOverheadNs : kTileOverheadNs;
  const double per_unit_ns =
      k_blocks * (cost.fixed_ns + cost.ns_per_element * tile.block_m * tile.block_n + l2_traffic_ns(tile)) +
      tile_overhead_ns;

  // Every operand byte has to come from HBM at least once, whatever the tiling; the weight twice where the
  // two row blocks of one wave read it apart, unless a multicast pair loads it for both.
  const bool weight_read_twice = tile.multicast == 1 && one_wave_over_a_partial_row_pair(tile, m, waves);
  const int64_t weight_reads = weight_read_twice ? 2 : 1;
  const double unique_bytes =
      static_cast<double>(m) * k + static_cast<double>(n) * k * weight_reads + 2.0 * m * n;
  const double hbm_ns = unique_bytes / device.hbm_bytes_per_ns;

  double fill_ns = 0;
  if (tile.block_m * tile.block_n < 128 * 128) {
    const double stage_bytes = 128.0 * (tile.block_m + tile.block_n);
    fill_ns = waves * (k_blocks * stage_bytes / kStageFillBytesPerNs + tile_overhead_ns);
  }
  return std::max({waves * per_unit_ns, hbm_ns, fill_ns}) / 1000.0;
}

GemmPlan make_plan(TileShape tile, int k_splits, int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  GemmPlan plan;
  plan.tile = tile;
  plan.k_splits = k_splits;
  plan.num_tiles = num_tiles_launched(tile, m, n);
  plan.grid = grid_for(tile, k_splits, plan.num_tiles, device);
  plan.num_waves = ceil_div(plan.num_tiles * k_splits, plan.grid);
  plan.estimated_us = estimate_us(tile, k_splits, m, n, k, device);
  plan.raster_group_cols = raster_group_cols(tile, m, n, plan.grid);
  return plan;
}

int raster_group_cols(TileShape tile, int64_t m, int64_t n, int grid) {
  if (tile.swap_ab) return 8;  // swapAB tiles: the token side is one block; the order is along N anyway
  const int cluster_m = tile.multicast_a ? 1 : tile.multicast;
  const int cluster_n = tile.multicast_a ? tile.multicast : 1;
  const int64_t m_blocks = ceil_div(m, tile.block_m), n_blocks = ceil_div(n, tile.block_n);
  const int64_t row_units = ceil_div(m_blocks, cluster_m), col_units = ceil_div(n_blocks, cluster_n);
  const int64_t wave_units = std::max<int64_t>(1, grid / tile.multicast);
  int best_cols = 8;
  int64_t best_rows = 0;
  for (const int cols : {8, 16}) {
    // Units run row by row inside a group of `group_units` columns; a wave past the first group covers
    // every row block and the first groups' columns.
    const int64_t group_units = std::min<int64_t>(cols / cluster_n, col_units);
    const int64_t per_group = row_units * group_units;
    int64_t wave_row_units = 0, wave_col_units = 0;
    if (wave_units <= per_group) {
      wave_row_units = ceil_div(wave_units, group_units);
      wave_col_units = std::min(wave_units, group_units);
    } else {
      wave_row_units = row_units;
      wave_col_units = wave_units / per_group * group_units + std::min(wave_units % per_group, group_units);
    }
    const int64_t rows = std::min(m_blocks, wave_row_units * cluster_m) * tile.block_m +
                         std::min(n_blocks, wave_col_units * cluster_n) * tile.block_n;
    // Only a clear saving moves a plan off 8, the order every earlier measurement ran (a few percent of
    // HBM bytes per wave is below what the L2 already absorbs).
    if (best_rows == 0 || rows < 0.9 * static_cast<double>(best_rows)) best_rows = rows, best_cols = cols;
  }
  return best_cols;
}

// M <= 32 streams the weight: what counts is how many SMs pull it and how early they start. Measured on
// H100 (bench/NOTES.md, experiment 14): the tile with the fewest padded tokens and 64 weight rows always
// won or tied. Split-K lets more SMs pull the weight of few tiles, or evens out a ragged last wave; it is
// taken where the wave model above gains more than 5% on the unsplit plan, and each share keeps at least
// 8 K blocks (shorter shares lose more to the hand-over than they gain).
GemmPlan plan_swap_ab(int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  TileShape best_tile{0, 0};
  for (const TileShape& tile : kTileShapes)
    if (tile.swap_ab && tile.block_n == 64 && tile.block_m >= m &&
        (best_tile.block_m == 0 || tile.block_m < best_tile.block_m))
      best_tile = tile;
  if (best_tile.block_m == 0) return plan_normal(m, n, k, device);  // more tokens than any swapAB tile
  const int64_t num_tiles = num_tiles_launched(best_tile, m, n);
  const int64_t k_blocks = ceil_div(k, 128);
  // Clusters of 6 to 8 were slower than 5 on the one suite shape that allows them (576 x 7168: 6.03 us at 5,
  // 6.58 at 7), whatever the K blocks per share: capped at 5.
  constexpr int kMaxUsefulSplits = 5;
  double best_split_time = 0;
  int best_splits = 1;
  for (int splits = 2; splits <= kMaxUsefulSplits && k_blocks >= 8 * splits; ++splits) {
    const double time = swap_ab_stream_time(num_tiles, splits, k_blocks, device);
    // Near-ties keep the fewer splits: fewer hand-overs.
    if (best_splits == 1 || time < best_split_time * 0.99) best_split_time = time, best_splits = splits;
  }
  const bool split_pays =
      best_splits > 1 && best_split_time * 1.05 < swap_ab_stream_time(num_tiles, 1, k_blocks, device);
  return make_plan(best_tile, split_pays ? best_splits : 1, m, n, k, device);
}

GemmPlan plan_gemm(int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  if (m <= kMaxSwapAbM) return plan_swap_ab(m, n, k, device);
  GemmPlan best = plan_normal(m, n, k, device);
  // Up to 64 tokens a swapAB tile with split-K still wins where the normal tiles leave most SMs idle
  // (576 x 7168 at M = 40..64: 9.5 us against 10.3, bench/NOTES.md); elsewhere the normal tiles won by
  // 10-20%.
  if (m <= kMaxSplitKSwapAbM && best.grid < device.num_sms / 2) return plan_swap_ab(m, n, k, device);
  return best;
}

GemmPlan plan_normal(int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  GemmPlan best;
  for (const TileShape& tile : kTileShapes) {
    if (tile.swap_ab) continue;
    // Multicast of the weight tile across a 2-CTA cluster measured a median 2% slower than the same tile
    // alone over 190 shape x tile pairs (from 15% slower to 10% faster, with no pattern in M, N, K or the
    // wave count, bench/NOTES.md #19): it is compiled and tested, and picked only where it saves a second
    // read of the weight (one_wave_over_a_partial_row_pair). The 256x128 pair sharing the input tile is
    // ranked by the model (its L2 term).
    const GemmPlan plan = make_plan(tile, 1, m, n, k, device);
    if (tile.multicast > 1 && !tile.multicast_a && !one_wave_over_a_partial_row_pair(tile, m, plan.num_waves))
      continue;
    const bool better = best.num_tiles == 0 || plan.estimated_us < best.estimated_us * 0.99;
    const bool tie = plan.estimated_us <= best.estimated_us * 1.01;
    // A tie is typically two plans under the same HBM floor. Then fuller waves (a half-empty last wave
    // idles SMs the floor assumed busy: 64x64 beat 64x128 by 10% at M = 40..64 on 24576x1536,
    // bench/NOTES.md); then more CTAs stream more bytes at once; then fewer padded rows; then the larger
    // tile re-reads fewer operand bytes; then, at equal size, the tile with two math warpgroups: each
    // covers the other's wgmma wait and promotion, so its CTA keeps its loads moving (M = 128 on H100:
    // 128x64 beat 64x128 by 9% at 7168x16384 and 7168x2048, bench/NOTES.md #31).
    auto wave_fill = [](const GemmPlan& p) {
      return static_cast<double>(p.num_tiles * p.k_splits) / static_cast<double>(p.num_waves * p.grid);
    };
    const double fill = wave_fill(plan), best_fill = best.num_tiles ? wave_fill(best) : 0.0;
    // The criteria after the wave fill, in order: larger is better in each.
    auto rank = [m](const GemmPlan& p) {
      const int64_t padded_m = (m + p.tile.block_m - 1) / p.tile.block_m * p.tile.block_m;
      return std::make_tuple(p.grid, -padded_m, p.tile.block_m * p.tile.block_n,
                             p.tile.num_math_warpgroups());
    };
    const bool tie_break = fill > best_fill + 0.1 || (fill >= best_fill - 0.1 && rank(plan) > rank(best));
    if (better || (tie && tie_break)) best = plan;
  }
  return best;
}

// ---- grouped GEMM ------------------------------------------------------------------------------------

int64_t grouped_average_rows(int64_t m_total, int64_t num_groups) {
  return std::max<int64_t>(1, ceil_div(std::max<int64_t>(m_total, 0), std::max<int64_t>(num_groups, 1)));
}

namespace {
// Column blocks of one group, padded to whole clusters where a cluster's CTAs sit along N.
int64_t grouped_col_blocks(TileShape tile, int64_t n) {
  const int64_t blocks = ceil_div(n, tile.block_n);
  return tile.multicast_a ? ceil_div(blocks, tile.multicast) * tile.multicast : blocks;
}
// Row blocks of a group of `rows` rows. A cluster along M pads none: the row blocks left after its whole
// clusters run as tail units (kernels/tile_scheduler.cuh).
int64_t grouped_row_blocks(TileShape tile, int64_t rows) {
  return ceil_div(rows, tile.block_m);
}
// Tiles past N a group may run beyond its row blocks x grouped_col_blocks: a cluster along M's tail units
// take column blocks in whole clusters, so an odd count leaves one tile past N in each tail row block.
int64_t grouped_tail_padding(TileShape tile, int64_t n) {
  if (tile.multicast_a || tile.multicast == 1) return 0;
  const int64_t blocks = ceil_div(n, tile.block_n);
  return ceil_div(blocks, tile.multicast) * tile.multicast - blocks;
}
}  // namespace

int64_t contiguous_tiles_upper_bound(TileShape tile, int64_t m_total, int64_t num_groups, int64_t n) {
  // Each group's row blocks: at most one partial one beyond its share of full ones. A cluster along M has at
  // most multicast - 1 tail row blocks per group, each padded by grouped_tail_padding.
  const int64_t full = ceil_div(m_total, tile.block_m);
  const int64_t row_blocks = std::min(full + num_groups, full * num_groups);
  const int64_t tail_rows = std::min(row_blocks, (tile.multicast_a ? 0 : tile.multicast - 1) * num_groups);
  return row_blocks * grouped_col_blocks(tile, n) + tail_rows * grouped_tail_padding(tile, n);
}

int64_t masked_tiles_upper_bound(TileShape tile, int64_t num_groups, int64_t m_max, int64_t n) {
  const int64_t row_blocks = grouped_row_blocks(tile, m_max);
  const int64_t tail_rows = tile.multicast_a ? 0 : std::min<int64_t>(row_blocks, tile.multicast - 1);
  return num_groups * (row_blocks * grouped_col_blocks(tile, n) + tail_rows * grouped_tail_padding(tile, n));
}

namespace {
// Persistent CTAs for at most `max_tiles` tiles: whole clusters, at least one.
int64_t grouped_grid(TileShape tile, int64_t max_tiles, const DeviceModel& device) {
  const int64_t cluster = tile.multicast;
  return std::max<int64_t>(1, std::min<int64_t>(max_tiles, device.num_sms) / cluster) * cluster;
}
}  // namespace

namespace {
// A group's tiles that share their cluster's operand and those of its tail units (a cluster along M: the row
// blocks left after whole clusters, which share their input tile instead; kernels/tile_scheduler.cuh).
struct GroupTiles {
  int64_t shared, tail;
};
GroupTiles grouped_tiles(TileShape tile, int64_t rows, int64_t n) {
  const int64_t row_blocks = grouped_row_blocks(tile, rows), cols = grouped_col_blocks(tile, n);
  const int64_t tail_rows = tile.multicast_a ? 0 : row_blocks % tile.multicast;
  return {(row_blocks - tail_rows) * cols, tail_rows * (cols + grouped_tail_padding(tile, n))};
}
}  // namespace

double estimate_grouped_us(TileShape tile, int64_t num_groups, int64_t rows_per_group, int64_t n, int64_t k,
                           const DeviceModel& device) {
  const int64_t rows = std::max<int64_t>(rows_per_group, 1);
  const GroupTiles group_tiles = grouped_tiles(tile, rows, n);
  const int64_t num_tiles = num_groups * (group_tiles.shared + group_tiles.tail);
  const int64_t grid = grouped_grid(tile, num_tiles, device);
  const int64_t waves = ceil_div(num_tiles, grid);
  const int64_t k_blocks = ceil_div(k, 128);
  const KBlockCost cost = k_block_cost(tile);
  const double tile_overhead_ns = tile.block_m == 256 ? kTwoWaveTileOverheadNs : kTileOverheadNs;
  auto tile_ns = [&](TileShape shape) {
    return k_blocks *
               (cost.fixed_ns + cost.ns_per_element * tile.block_m * tile.block_n + l2_traffic_ns(shape)) +
           tile_overhead_ns;
  };
  // Tail tiles pull their whole weight tile from L2 and half of their input tile, as a pair along N does.
  TileShape tail = tile;
  tail.multicast_a = true;
  const double per_tile_ns = (static_cast<double>(group_tiles.shared) * tile_ns(tile) +
                              static_cast<double>(group_tiles.tail) * tile_ns(tail)) /
                             static_cast<double>(std::max<int64_t>(group_tiles.shared + group_tiles.tail, 1));
  // Each group's weight comes from HBM once: its row blocks run side by side (the raster keeps a group's
  // tiles together), so the re-reads hit L2.
  const double unique_bytes = static_cast<double>(num_groups) *
                              (static_cast<double>(rows) * k + static_cast<double>(n) * k + 2.0 * rows * n);
  const double hbm_ns = unique_bytes / device.hbm_bytes_per_ns;
  return std::max(waves * per_tile_ns, hbm_ns) / 1000.0;
}

GemmPlan make_grouped_plan(TileShape tile, int64_t max_tiles, int64_t num_groups, int64_t rows_per_group,
                           int64_t n, int64_t k, const DeviceModel& device) {
  GemmPlan plan;
  plan.tile = tile;
  plan.k_splits = 1;
  const GroupTiles group_tiles = grouped_tiles(tile, std::max<int64_t>(rows_per_group, 1), n);
  plan.num_tiles = num_groups * (group_tiles.shared + group_tiles.tail);
  plan.grid = static_cast<int>(grouped_grid(tile, max_tiles, device));
  plan.num_waves = ceil_div(plan.num_tiles, plan.grid);
  plan.estimated_us = estimate_grouped_us(tile, num_groups, rows_per_group, n, k, device);
  return plan;
}

namespace {
// The rows of a group at the spread's upper end: kGroupRowsSpread x the hint, at most max_rows_per_group.
int64_t grouped_rows_high(int64_t rows, int64_t max_rows_per_group) {
  return std::min(static_cast<int64_t>(std::ceil(static_cast<double>(rows) * kGroupRowsSpread)),
                  std::max<int64_t>(max_rows_per_group, rows));
}
}  // namespace

TileShape grouped_tile(int64_t num_groups, int64_t rows_per_group, int64_t n, int64_t k,
                       bool per_row_weight_scale, const DeviceModel& device, int64_t max_rows_per_group) {
  const int64_t rows = std::max<int64_t>(rows_per_group, 1);
  TileShape best{0, 0};
  const int64_t rows_high = grouped_rows_high(rows, max_rows_per_group);
  if (rows_high <= kMaxGroupedSwapAbRows) {
    // Decode: the weights stream, and the tile with the fewest padded tokens puts the most SMs on them (the
    // dense rule of plan_swap_ab, measured in bench/NOTES.md #14), among those that hold a group of the
    // spread's upper end.
    for (const TileShape& tile : kGroupedTileShapes)
      if (tile.swap_ab && tile.block_m >= rows_high && (best.block_m == 0 || tile.block_m < best.block_m))
        best = tile;
    return best;
  }
  double best_us = 0;
  for (const TileShape& tile : kGroupedTileShapes) {
    if (tile.swap_ab || !grouped_tile_compiled(tile, per_row_weight_scale)) continue;
    // The 128x128 pair sharing the weight measured the slowest of the seven normal tiles on all three
    // swept shapes (H100, bench/NOTES.md #47): compiled and tested, never picked.
    if (tile.block_m == 128 && tile.block_n == 128 && tile.multicast > 1) continue;
    const double us = estimate_grouped_us(tile, num_groups, rows, n, k, device);
    // Near-ties keep the earlier (smaller) tile: fewer padded rows at each group's end.
    if (best.block_m == 0 || us < best_us * 0.99) best = tile, best_us = us;
  }
  return best;
}

GemmPlan plan_grouped_contiguous(int64_t m_total, int64_t num_groups, int64_t n, int64_t k,
                                 bool per_row_weight_scale, const DeviceModel& device) {
  const int64_t rows = grouped_average_rows(m_total, num_groups);
  const TileShape tile = grouped_tile(num_groups, rows, n, k, per_row_weight_scale, device);
  return make_grouped_plan(tile, contiguous_tiles_upper_bound(tile, m_total, num_groups, n), num_groups, rows,
                           n, k, device);
}

GemmPlan plan_grouped_masked(int64_t num_groups, int64_t m_max, int64_t expected_m, int64_t n, int64_t k,
                             bool per_row_weight_scale, const DeviceModel& device) {
  const int64_t rows = std::clamp<int64_t>(expected_m, 1, std::max<int64_t>(m_max, 1));
  const TileShape tile = grouped_tile(num_groups, rows, n, k, per_row_weight_scale, device, m_max);
  return make_grouped_plan(tile, masked_tiles_upper_bound(tile, num_groups, m_max, n), num_groups, rows, n, k,
                           device);
}

std::string GemmPlan::describe() const {
  std::ostringstream os;
  os << (tile.swap_ab ? "fp8_gemm_1d2d swapAB" : "fp8_gemm_1d2d") << " BLOCK_M=" << tile.block_m
     << " BLOCK_N=" << tile.block_n << " multicast=" << tile.multicast
     << (tile.multicast_a ? " shares=A" : "") << " k_splits=" << k_splits << " tiles=" << num_tiles
     << " grid=" << grid << " waves=" << num_waves << " raster=" << raster_group_cols;
  return os.str();
}

}  // namespace blockgemm::heuristics
