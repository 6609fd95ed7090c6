// Persistent tile order: cluster c takes work units c, c + num_clusters, ... of a grouped raster. A unit is
// kClusterM vertically adjacent tiles (one per CTA of the cluster) that share their weight column block,
// or, under split-K, one tile whose K blocks the cluster's CTAs share.
#pragma once

namespace blockgemm::kernels {

struct TileCoord {
  int m_block, n_block;
  int k_block_begin, k_block_end;  // this CTA's share of the K blocks
};

// Units run in groups of kGroupN weight column blocks; inside a group, M varies slowest. The clusters that
// run at the same time then share a few A row blocks and a group of weight blocks, so each operand tile
// is fetched from HBM about once and re-read from L2 by its neighbours.
template <int BLOCK_M, int BLOCK_N, int kClusterM, int kGroupN = 8>
struct TileScheduler {
  int num_m_blocks, num_n_blocks, num_row_groups, num_units, num_k_blocks, num_k_splits;

  __device__ TileScheduler(int m, int n, int k_blocks, int k_splits)
      : num_m_blocks((m + BLOCK_M - 1) / BLOCK_M),
        num_n_blocks((n + BLOCK_N - 1) / BLOCK_N),
        num_row_groups((num_m_blocks + kClusterM - 1) / kClusterM),
        num_units(num_row_groups * num_n_blocks),
        num_k_blocks(k_blocks),
        num_k_splits(k_splits) {}

  // The tile of cluster rank `rank` in `unit`. With an odd number of row blocks the last unit's second
  // tile lies past M: its loads are TMA zero fill and its store is skipped, but it still feeds its half
  // of the shared weight tile to its partner. Under split-K (kClusterM == 1) the rank picks the share
  // of K, which differ by at most one K block (the host keeps num_k_splits <= num_k_blocks).
  __device__ TileCoord coord(int unit, int rank) const {
    const int units_per_group = num_row_groups * kGroupN;
    const int group = unit / units_per_group;
    const int first_n_block = group * kGroupN;
    const int group_width = min(kGroupN, num_n_blocks - first_n_block);
    const int in_group = unit - group * units_per_group;
    const int m_block = (in_group / group_width) * kClusterM + (kClusterM > 1 ? rank : 0);
    const int split = kClusterM > 1 ? 0 : rank;
    return {m_block, first_n_block + in_group % group_width, split * num_k_blocks / num_k_splits,
            (split + 1) * num_k_blocks / num_k_splits};
  }
};

}  // namespace blockgemm::kernels
