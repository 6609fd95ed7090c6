// Persistent tile order: CTA b takes tiles b, b + gridDim.x, ... of a grouped raster.
#pragma once

namespace blockgemm::kernels {

struct TileCoord {
  int m_block, n_block;
};

// Tiles run in groups of kGroupN weight column blocks; inside a group, M varies slowest. The CTAs that
// run at the same time then share a few A row blocks and a group of weight blocks, so each operand tile
// is fetched from HBM about once and re-read from L2 by its neighbours.
template <int BLOCK_M, int BLOCK_N, int kGroupN = 8>
struct TileScheduler {
  int num_m_blocks, num_n_blocks, num_tiles;

  __device__ TileScheduler(int m, int n)
      : num_m_blocks((m + BLOCK_M - 1) / BLOCK_M),
        num_n_blocks((n + BLOCK_N - 1) / BLOCK_N),
        num_tiles(num_m_blocks * num_n_blocks) {}

  __device__ TileCoord coord(int tile) const {
    const int tiles_per_group = num_m_blocks * kGroupN;
    const int group = tile / tiles_per_group;
    const int first_n_block = group * kGroupN;
    const int group_width = min(kGroupN, num_n_blocks - first_n_block);
    const int in_group = tile - group * tiles_per_group;
    return {in_group / group_width, first_n_block + in_group % group_width};
  }
};

}  // namespace blockgemm::kernels
