#include "heuristics/heuristics.h"

#include <algorithm>
#include <sstream>

namespace blockgemm::heuristics {
namespace {

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Fraction of the wgmma peak one CTA sustains with its per-K-block promotion. Two math warpgroups
// overlap each other's promotion; one serialises it. Calibrated on H100 (bench/NOTES.md): 128x128 tiles
// ran at 0.49 us per K block at 4096x7168x16384.
double mma_efficiency(TileShape tile) {
  return tile.num_math_warpgroups() >= 2 ? 0.57 : 0.45;
}

// A K block never takes less than the round trip of its barriers, scale loads and dependent wgmmas
// (measured ~230 ns on H100 for every tile of 64 rows, bench/NOTES.md).
constexpr double kIterationFloorNs = 230;

// Multicast halves the weight bytes each CTA pulls, but measured only +3% on long runs (the fill rate is
// not what limits 128-row tiles): credited as such.
constexpr double kMulticastGain = 0.97;

}  // namespace

int64_t num_tiles_launched(TileShape tile, int64_t m, int64_t n) {
  // Clusters take whole groups of `multicast` row blocks: an odd count is padded with an idle tile.
  return ceil_div(ceil_div(m, tile.block_m), tile.multicast) * tile.multicast * ceil_div(n, tile.block_n);
}

int grid_for(TileShape tile, int k_splits, int64_t num_tiles, const DeviceModel& device) {
  const int cluster_size = tile.multicast * k_splits;
  const int64_t clusters = std::min<int64_t>(num_tiles / tile.multicast, device.max_clusters(cluster_size));
  return static_cast<int>(std::max<int64_t>(clusters, 1) * cluster_size);
}

// Ranks the normal tiles (plan_normal). SwapAB plans follow measured rules instead (plan_swap_ab); for them
// this is only a rough figure for describe().
double estimate_us(TileShape tile, int k_splits, int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  const int64_t num_tiles = num_tiles_launched(tile, m, n);
  const int64_t grid = grid_for(tile, k_splits, num_tiles, device);
  const int64_t waves = ceil_div(num_tiles * k_splits, grid);
  const int64_t k_blocks = ceil_div(ceil_div(k, 128), k_splits);  // the longest share

  // Per K block of one tile: tensor-core time versus time to fill the stage. The stage fill is what
  // limits large tiles (about 70 B/ns per SM, latency bound), so multicast's smaller B share pays.
  const double flops = 2.0 * tile.block_m * tile.block_n * 128;
  const double mma_ns = flops / (device.fp8_tflops_per_sm * 1e3 * mma_efficiency(tile));
  const double stage_bytes = (tile.block_m + static_cast<double>(tile.block_n) / tile.multicast) * 128.0;
  const double fill_ns = stage_bytes / device.sm_fill_bytes_per_ns;
  const double per_unit_ns = k_blocks * std::max({mma_ns, fill_ns, kIterationFloorNs}) + 500.0;

  // Every operand byte has to come from HBM at least once, whatever the tiling.
  const double unique_bytes = static_cast<double>(m + n) * k + 2.0 * m * n;
  const double hbm_ns = unique_bytes / device.hbm_bytes_per_ns;

  const double gain = tile.multicast > 1 ? kMulticastGain : 1.0;
  return gain * std::max(waves * per_unit_ns, hbm_ns) / 1000.0;
}

GemmPlan make_plan(TileShape tile, int k_splits, int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  GemmPlan plan;
  plan.tile = tile;
  plan.k_splits = k_splits;
  plan.num_tiles = num_tiles_launched(tile, m, n);
  plan.grid = grid_for(tile, k_splits, plan.num_tiles, device);
  plan.num_waves = ceil_div(plan.num_tiles * k_splits, plan.grid);
  plan.estimated_us = estimate_us(tile, k_splits, m, n, k, device);
  return plan;
}

// M <= 32 streams the weight: what counts is how many SMs pull it and how early they start. Measured on
// H100 (bench/NOTES.md, experiment 14): the tile with the fewest padded tokens and 64 weight rows always
// won or tied; split-K paid as long as every cluster fit in one wave (a second wave cost 30-100%) and each
// share kept at least 8 K blocks (shorter shares lose more to the hand-over than they gain).
GemmPlan plan_swap_ab(int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  TileShape best_tile{0, 0};
  for (const TileShape& tile : kTileShapes)
    if (tile.swap_ab && tile.block_n == 64 && tile.block_m >= m &&
        (best_tile.block_m == 0 || tile.block_m < best_tile.block_m))
      best_tile = tile;
  if (best_tile.block_m == 0) return plan_normal(m, n, k, device);  // more tokens than any swapAB tile
  const int64_t num_tiles = num_tiles_launched(best_tile, m, n);
  const int64_t k_blocks = ceil_div(k, 128);
  int k_splits = 1;
  // Clusters of 6 to 8 were slower than 5 on the one suite shape that allows them (576 x 7168: 6.03 us at 5,
  // 6.58 at 7), whatever the K blocks per share: capped at 5.
  constexpr int kMaxUsefulSplits = 5;
  for (int splits = 2; splits <= kMaxUsefulSplits; ++splits)
    if (k_blocks >= 8 * splits && num_tiles <= device.max_clusters(splits)) k_splits = splits;
  return make_plan(best_tile, k_splits, m, n, k, device);
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
    // Multicast measured +3% on long runs and -5% on one- or two-wave problems (bench/NOTES.md): the
    // cluster's lock-step costs more than the saved L2 traffic unless there are many waves to hide it.
    if (tile.multicast > 1 && num_tiles_launched(tile, m, n) < 4 * device.num_sms) continue;
    const GemmPlan plan = make_plan(tile, 1, m, n, k, device);
    const bool better = best.num_tiles == 0 || plan.estimated_us < best.estimated_us * 0.99;
    const bool tie = plan.estimated_us <= best.estimated_us * 1.01;
    // A tie is typically two plans under the same HBM floor. Then fuller waves (a half-empty last wave
    // idles SMs the floor assumed busy: 64x64 beat 64x128 by 10% at M = 40..64 on 24576x1536,
    // bench/NOTES.md); then more CTAs stream more bytes at once; then fewer padded rows; then the larger
    // tile re-reads fewer operand bytes.
    auto wave_fill = [](const GemmPlan& p) {
      return static_cast<double>(p.num_tiles * p.k_splits) / static_cast<double>(p.num_waves * p.grid);
    };
    auto padded_m = [m](const TileShape& t) { return (m + t.block_m - 1) / t.block_m * t.block_m; };
    const double fill = wave_fill(plan), best_fill = best.num_tiles ? wave_fill(best) : 0.0;
    const bool tie_break = fill > best_fill + 0.1 ||
                           (fill >= best_fill - 0.1 &&
                            (plan.grid > best.grid ||
                             (plan.grid == best.grid &&
                              (padded_m(tile) < padded_m(best.tile) ||
                               (padded_m(tile) == padded_m(best.tile) &&
                                tile.block_m * tile.block_n > best.tile.block_m * best.tile.block_n)))));
    if (better || (tie && tie_break)) best = plan;
  }
  return best;
}

std::string GemmPlan::describe() const {
  std::ostringstream os;
  os << (tile.swap_ab ? "fp8_gemm_1d2d swapAB" : "fp8_gemm_1d2d") << " BLOCK_M=" << tile.block_m
     << " BLOCK_N=" << tile.block_n << " multicast=" << tile.multicast << " k_splits=" << k_splits
     << " tiles=" << num_tiles << " grid=" << grid << " waves=" << num_waves;
  return os.str();
}

}  // namespace blockgemm::heuristics
