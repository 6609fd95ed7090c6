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
double mma_efficiency(int block_m) {
  return block_m >= 128 ? 0.57 : 0.45;
}

// Multicast halves the weight bytes each CTA pulls, but measured only +3% on long runs (the fill rate is
// not what limits 128-row tiles): credited as such.
constexpr double kMulticastGain = 0.97;

}  // namespace

int64_t num_tiles_launched(TileShape tile, int64_t m, int64_t n) {
  // Clusters take whole groups of `multicast` row blocks: an odd count is padded with an idle tile.
  return ceil_div(ceil_div(m, tile.block_m), tile.multicast) * tile.multicast * ceil_div(n, tile.block_n);
}

int grid_for(TileShape tile, int64_t num_tiles, int num_sms) {
  const int64_t clusters = std::min<int64_t>(num_tiles / tile.multicast, num_sms / tile.multicast);
  return static_cast<int>(std::max<int64_t>(clusters, 1) * tile.multicast);
}

double estimate_us(TileShape tile, int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  const int64_t num_tiles = num_tiles_launched(tile, m, n);
  const int64_t grid = grid_for(tile, num_tiles, device.num_sms);
  const int64_t waves = ceil_div(num_tiles, grid);
  const int64_t k_blocks = ceil_div(k, 128);

  // Per K block of one tile: tensor-core time versus time to fill the stage. The stage fill is what
  // limits large tiles (about 70 B/ns per SM, latency bound), so multicast's smaller B share pays.
  const double flops = 2.0 * tile.block_m * tile.block_n * 128;
  const double mma_ns = flops / (device.fp8_tflops_per_sm * 1e3 * mma_efficiency(tile.block_m));
  const double stage_bytes = (tile.block_m + static_cast<double>(tile.block_n) / tile.multicast) * 128.0;
  const double fill_ns = stage_bytes / device.sm_fill_bytes_per_ns;
  // A K block never takes less than the round trip of its barriers, scale loads and dependent wgmmas
  // (measured ~230 ns on H100 for every tile of 64 rows, bench/NOTES.md).
  constexpr double kIterationFloorNs = 230;
  const double per_tile_ns = k_blocks * std::max({mma_ns, fill_ns, kIterationFloorNs}) + 500.0;

  // Every operand byte has to come from HBM at least once, whatever the tiling.
  const double unique_bytes = static_cast<double>(m + n) * k + 2.0 * m * n;
  const double hbm_ns = unique_bytes / device.hbm_bytes_per_ns;

  const double gain = tile.multicast > 1 ? kMulticastGain : 1.0;
  return gain * std::max(waves * per_tile_ns, hbm_ns) / 1000.0;
}

GemmPlan plan_gemm(int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  GemmPlan best;
  for (const TileShape& tile : kTileShapes) {
    // Multicast measured +3% on long runs and -5% on one- or two-wave problems (bench/NOTES.md): the
    // cluster's lock-step costs more than the saved L2 traffic unless there are many waves to hide it.
    if (tile.multicast > 1 && num_tiles_launched(tile, m, n) < 4 * device.num_sms) continue;
    const double us = estimate_us(tile, m, n, k, device);
    const bool larger = tile.block_m * tile.block_n > best.tile.block_m * best.tile.block_n;
    if (best.num_tiles == 0 || us < best.estimated_us * 0.999 ||
        (us <= best.estimated_us * 1.001 && larger)) {
      best.tile = tile;
      best.estimated_us = us;
      best.num_tiles = num_tiles_launched(tile, m, n);
    }
  }
  best.grid = grid_for(best.tile, best.num_tiles, device.num_sms);
  best.num_waves = ceil_div(best.num_tiles, best.grid);
  return best;
}

std::string GemmPlan::describe() const {
  std::ostringstream os;
  os << "fp8_gemm_1d2d BLOCK_M=" << tile.block_m << " BLOCK_N=" << tile.block_n
     << " multicast=" << tile.multicast << " tiles=" << num_tiles << " grid=" << grid
     << " waves=" << num_waves;
  return os.str();
}

}  // namespace blockgemm::heuristics
