// Kernel selection: pure functions of the problem size and the device's SM count (no CUDA here), so the
// choices can be unit-tested on any machine.
#pragma once

#include <cstdint>
#include <string>

namespace blockgemm::heuristics {

struct TileShape {
  int block_m, block_n;
  int multicast = 1;  // CTAs per cluster along M sharing (multicasting) the weight tile
  constexpr bool operator==(const TileShape& other) const {
    return block_m == other.block_m && block_n == other.block_n && multicast == other.multicast;
  }
};

// Every tile shape the library compiles a kernel for. The launcher instantiates exactly this list, so a
// plan can never name a kernel that does not exist. BLOCK_N is a multiple of 16 (whole 32-byte output
// strips) and two accumulator sets must fit the math warpgroups' registers (no spills: checked in the
// build's ptxas report). Narrow tiles put more CTAs to work streaming the weight at small M; the odd
// widths (96, 192) let the tile count fill whole waves of SMs.
inline constexpr TileShape kTileShapes[] = {{64, 16},  {64, 32},   {64, 64},     {64, 96},
                                            {64, 128}, {64, 192},  {128, 32},    {128, 64},
                                            {128, 96}, {128, 128}, {128, 128, 2}};
inline constexpr int kNumTileShapes = sizeof(kTileShapes) / sizeof(kTileShapes[0]);

// Rough H100 rates the cost model ranks candidates with (ratios matter, not absolute values).
struct DeviceModel {
  int num_sms = 132;
  double fp8_tflops_per_sm = 1979.0 / 132;  // dense fp8 wgmma peak
  double hbm_bytes_per_ns = 2900;           // weight streaming, measured
  double sm_fill_bytes_per_ns = 70;         // what one SM's TMA pipeline pulls in (measured)
};

struct GemmPlan {
  TileShape tile{0, 0};
  int64_t num_tiles = 0;
  int grid = 0;  // persistent CTAs (a multiple of tile.multicast)
  int64_t num_waves = 0;
  double estimated_us = 0;
  std::string describe() const;
};

// Tiles the kernel runs for (row blocks padded to whole clusters) and its persistent grid.
int64_t num_tiles_launched(TileShape tile, int64_t m, int64_t n);
int grid_for(TileShape tile, int64_t num_tiles, int num_sms);

// Estimated time of the persistent 1D2D kernel with `tile` on an (m, n, k) problem.
double estimate_us(TileShape tile, int64_t m, int64_t n, int64_t k, const DeviceModel& device);

// The tile (and grid) with the lowest estimate; ties go to the larger tile (fewer operand re-reads).
GemmPlan plan_gemm(int64_t m, int64_t n, int64_t k, const DeviceModel& device);

}  // namespace blockgemm::heuristics
