// Persistent tile order: cluster c takes work units c, c + num_clusters, ... of a grouped raster; a unit is
// kClusterM vertically adjacent tiles (one per CTA of the cluster) that share their weight column block.
#pragma once

namespace blockgemm::kernels {

struct TileCoord {
  int m_block, n_block;
};

// Units run in groups of kGroupN weight column blocks; inside a group, M varies slowest. The clusters that
// run at the same time then share a few A row blocks and a group of weight blocks, so each operand tile
// is fetched from HBM about once and re-read from L2 by its neighbours.
template <int BLOCK_M, int BLOCK_N, int kClusterM, int kGroupN = 8>
struct TileScheduler {
  int num_m_blocks, num_n_blocks, num_row_groups, num_units;

  __device__ TileScheduler(int m, int n)
      : num_m_blocks((m + BLOCK_M - 1) / BLOCK_M),
        num_n_blocks((n + BLOCK_N - 1) / BLOCK_N),
        num_row_groups((num_m_blocks + kClusterM - 1) / kClusterM),
        num_units(num_row_groups * num_n_blocks) {}

  // The tile of cluster rank `rank` in `unit`. With an odd number of row blocks the last unit's second
  // tile lies past M: its loads are TMA zero fill and its store is skipped, but it still feeds its half
  // of the shared weight tile to its partner.
  __device__ TileCoord coord(int unit, int rank) const {
    const int units_per_group = num_row_groups * kGroupN;
    const int group = unit / units_per_group;
    const int first_n_block = group * kGroupN;
    const int group_width = min(kGroupN, num_n_blocks - first_n_block);
    const int in_group = unit - group * units_per_group;
    return {(in_group / group_width) * kClusterM + rank, first_n_block + in_group % group_width};
  }
};

}  // namespace blockgemm::kernels
