#include "heuristics/heuristics.h"

#include <algorithm>
#include <sstream>

namespace blockgemm::heuristics {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// One math warpgroup serialises its MMAs with their promotion; two overlap each other's.
double mma_efficiency(int block_m) { return block_m >= 128 ? 0.78 : 0.55; }

}  // namespace

double estimate_us(TileShape tile, int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  const int64_t num_tiles = ceil_div(m, tile.block_m) * ceil_div(n, tile.block_n);
  const int64_t grid = std::min<int64_t>(num_tiles, device.num_sms);
  const int64_t waves = ceil_div(num_tiles, grid);
  const int64_t k_blocks = ceil_div(k, 128);

  // Per K block of one tile: tensor-core time versus time to fill the stage.
  const double flops = 2.0 * tile.block_m * tile.block_n * 128;
  const double mma_ns = flops / (device.fp8_tflops_per_sm * 1e3 * mma_efficiency(tile.block_m));
  const double stage_bytes = (tile.block_m + tile.block_n) * 128.0;
  const double fill_ns = stage_bytes / device.sm_fill_bytes_per_ns;
  const double per_tile_ns = k_blocks * std::max(mma_ns, fill_ns) + 1000.0 * 0.5;  // + prologue/epilogue

  // Every operand byte has to come from HBM at least once, whatever the tiling.
  const double unique_bytes = static_cast<double>(m + n) * k + 2.0 * m * n;
  const double hbm_ns = unique_bytes / device.hbm_bytes_per_ns;

  return std::max(waves * per_tile_ns, hbm_ns) / 1000.0;
}

GemmPlan plan_gemm(int64_t m, int64_t n, int64_t k, const DeviceModel& device) {
  GemmPlan best;
  for (const TileShape& tile : kTileShapes) {
    const double us = estimate_us(tile, m, n, k, device);
    const bool larger = tile.block_m * tile.block_n > best.tile.block_m * best.tile.block_n;
    if (best.num_tiles == 0 || us < best.estimated_us * 0.999 ||
        (us <= best.estimated_us * 1.001 && larger)) {
      best.tile = tile;
      best.estimated_us = us;
      best.num_tiles = ceil_div(m, tile.block_m) * ceil_div(n, tile.block_n);
    }
  }
  best.grid = static_cast<int>(std::min<int64_t>(best.num_tiles, device.num_sms));
  best.num_waves = ceil_div(best.num_tiles, best.grid);
  return best;
}

std::string GemmPlan::describe() const {
  std::ostringstream os;
  os << "fp8_gemm_1d2d BLOCK_M=" << tile.block_m << " BLOCK_N=" << tile.block_n << " tiles=" << num_tiles
     << " grid=" << grid << " waves=" << num_waves;
  return os.str();
}

}  // namespace blockgemm::heuristics
