// Persistent tile order: cluster c takes work units c, c + num_clusters, ... of a grouped raster. A unit is
// kClusterM vertically adjacent tiles (one per CTA of the cluster) that share their weight column block,
// or kClusterN horizontally adjacent tiles that share their input row block, or, under split-K, one tile
// whose K blocks the cluster's CTAs share.
#pragma once

#include "kernels/gemm_config.h"

namespace blockgemm::kernels {

struct TileCoord {
  int m_block, n_block;
  int k_block_begin, k_block_end;  // this CTA's share of the K blocks
};

// Units run in groups of `group_cols` weight column blocks (kGroupN unless the launch passes another width:
// heuristics::raster_group_cols picks it per plan); inside a group, M varies slowest. The clusters that run
// at the same time then share a few A row blocks and a group of weight blocks, so each operand tile is
// fetched from HBM about once and re-read from L2 by its neighbours.
template <int BLOCK_M, int BLOCK_N, int kClusterM, int kGroupN = 8, int kClusterN = 1>
struct TileScheduler {
  static_assert(kClusterM == 1 || kClusterN == 1, "a cluster shares one operand");
  static_assert(kGroupN % kClusterN == 0, "a group holds whole units");
  int num_m_blocks, num_n_blocks, num_row_groups, num_col_units, num_units, num_k_blocks, num_k_splits;
  int group_units;  // a group's width in units (each kClusterN column blocks wide), >= 1

  __device__ TileScheduler(int m, int n, int k_blocks, int k_splits, int group_cols = kGroupN)
      : num_m_blocks((m + BLOCK_M - 1) / BLOCK_M),
        num_n_blocks((n + BLOCK_N - 1) / BLOCK_N),
        num_row_groups((num_m_blocks + kClusterM - 1) / kClusterM),
        num_col_units((num_n_blocks + kClusterN - 1) / kClusterN),
        num_units(num_row_groups * num_col_units),
        num_k_blocks(k_blocks),
        num_k_splits(k_splits),
        group_units(group_cols / kClusterN > 0 ? group_cols / kClusterN : 1) {}

  // Whether the persistent loop has `unit` to run: GroupedTileScheduler's interface. (The kernel's dense
  // loops compare num_units inline, which keeps their generated code as it was before the grouped form.)
  __device__ bool has_unit(int unit) const { return unit < num_units; }

  // The tile of cluster rank `rank` in `unit`. With an odd number of row (column) blocks the last unit's
  // second tile lies past M (N): its loads of that side are TMA zero fill and its store is skipped, but it
  // still feeds its half of the shared tile to its partner. Under split-K (a cluster along neither side)
  // the rank picks the share of K, which differ by at most one K block (the host keeps num_k_splits <=
  // num_k_blocks).
  __device__ TileCoord coord(int unit, int rank) const {
    const int units_per_group = num_row_groups * group_units;
    const int group = unit / units_per_group;
    const int first_col_unit = group * group_units;
    const int group_width = min(group_units, num_col_units - first_col_unit);
    const int in_group = unit - group * units_per_group;
    const int m_block = (in_group / group_width) * kClusterM + (kClusterM > 1 ? rank : 0);
    const int n_block = (first_col_unit + in_group % group_width) * kClusterN + (kClusterN > 1 ? rank : 0);
    const int split = kClusterM > 1 || kClusterN > 1 ? 0 : rank;
    return {m_block, n_block, split * num_k_blocks / num_k_splits, (split + 1) * num_k_blocks / num_k_splits};
  }
};

// A tile of a grouped GEMM: the dense coordinates inside its group, and the group's rows of the 2-D view.
struct GroupedTileCoord : TileCoord {
  int group;
  int row_start;  // first row of the group in the 2-D view of the input and out
  int rows;       // the group's rows: tile rows at or past this (relative to row_start) are never stored
  // A tail unit of a cluster along M: its CTAs hold adjacent column blocks of one row block, so each loads
  // its own weight tile and rank 0 multicasts their common input tile (false in every other unit).
  bool tail;
};

// The grouped form: units are numbered group by group, each group's units in the dense raster above (with
// its own row-block count). Group g's rows come from a device-resident table (GroupTableKind) that is read
// as the persistent loop reaches the group: every CTA takes units in increasing order (unit += stride), so
// each role keeps a cursor (current group, units of the groups before it) and advances it, reading one table
// entry per group, instead of building a prefix table. The table is read only from has_unit(), which the
// kernel calls after griddepcontrol.wait: a kernel earlier in the stream (routing, the index conversion) may
// still be writing it at launch.
//
// kClusterN: a unit is that many horizontally adjacent tiles of one group (one per CTA of a cluster that
// shares the input tile); kClusterM: that many vertically adjacent tiles of one group (a cluster that shares
// the weight tile). A group's row blocks rarely come in whole clusters along M (a masked group of 180-333
// rows has 2 or 3 of 128): the row blocks left over after the whole pairs run as tail units of kClusterM
// horizontally adjacent tiles of one row block (GroupedTileCoord::tail: each CTA loads its own weight tile,
// and the row block's input tile comes once for both), after the group's shared units, instead of a padding
// tile computed past the group's end (DeepGEMM's masked scheduler does the same, without sharing the input).
// An odd column-block count leaves the last tail unit a tile past N, never stored. Both CTAs keep the same
// cursor, so they always agree on the group and on whether a unit is a tail unit.
//
// Any table values are memory-safe: offsets are clamped into [0, M_total] and made monotone as they are read
// (group g ends no earlier than group g - 1), masked counts into [0, M_max], ranges into [0, M_total]; so
// every row a tile stores lies inside the view, and no two groups' rows overlap (offsets, masked).
template <int BLOCK_M, int BLOCK_N, int kGroupN = 8, int kClusterN = 1, int kClusterM = 1>
struct GroupedTileScheduler {
  static_assert(kClusterM == 1 || kClusterN == 1, "a cluster shares one operand");
  static_assert(kGroupN % kClusterN == 0, "a band holds whole units");
  static constexpr int kBandUnits = kGroupN / kClusterN;
  const int* table;
  int kind, num_groups, m_total, rows_per_group, num_col_units, num_k_blocks;
  // Cursor: the group reached, the units of the groups before it, and this group's rows and units.
  int group = -1, units_before = 0, group_units = 0;
  // num_row_units: the group's whole clusters of row blocks (kClusterM > 1) or its row blocks; shared_units:
  // its units whose CTAs share the cluster's operand (all but the tail units of a cluster along M).
  int row_start = 0, rows = 0, num_row_units = 0, shared_units = 0;
  int prev_end = 0;  // kOffsets: where the previous group ended (clamped, monotone)
  // The kernel's loop condition names the dense scheduler's unit count in a branch it discards for this one
  // (an inline expression there, not a call, keeps the dense kernels' generated code as it was).
  static constexpr int num_units = 0;

  __device__ GroupedTileScheduler(const GroupedGemmParams& params, int k_blocks)
      : table(params.group_table),
        kind(params.group_table_kind),
        num_groups(params.num_groups),
        m_total(params.m),
        rows_per_group(params.rows_per_group),
        num_col_units(((params.n + BLOCK_N - 1) / BLOCK_N + kClusterN - 1) / kClusterN),
        num_k_blocks(k_blocks) {}

  __device__ static int clamp_row(int row, int limit) { return min(max(row, 0), limit); }

  // Reads group g's rows (g = the previous group + 1).
  __device__ void load_group(int g) {
    if (kind == static_cast<int>(GroupTableKind::kMasked)) {
      row_start = g * rows_per_group;
      rows = clamp_row(__ldg(table + g), rows_per_group);
    } else if (kind == static_cast<int>(GroupTableKind::kOffsets)) {
      if (g == 0) prev_end = clamp_row(__ldg(table), m_total);
      row_start = prev_end;
      const int end = max(clamp_row(__ldg(table + g + 1), m_total), row_start);
      rows = end - row_start;
      prev_end = end;
    } else {  // kRanges
      row_start = m_total - clamp_row(__ldg(table + 2 * g), m_total);
      rows = max(clamp_row(__ldg(table + 2 * g + 1), m_total), row_start) - row_start;
    }
    const int row_blocks = (rows + BLOCK_M - 1) / BLOCK_M;
    num_row_units = row_blocks / kClusterM;
    shared_units = num_row_units * num_col_units;
    // Tail units: each of the row_blocks % kClusterM last row blocks in units of kClusterM column blocks.
    group_units = shared_units + row_blocks % kClusterM * ((num_col_units + kClusterM - 1) / kClusterM);
  }

  // Advances the cursor to the group holding `unit`; false once it is past the last group.
  __device__ bool has_unit(int unit) {
    while (unit >= units_before + group_units) {
      if (group + 1 >= num_groups) return false;
      units_before += group_units;
      load_group(++group);
    }
    return true;
  }

  // The tile of cluster rank `rank` in `unit` (has_unit(unit) returned true): the group's shared units in
  // the dense raster of its group, then its tail units row by row. With an odd number of column blocks the
  // last unit's second tile (of a cluster along N, or of a tail unit) lies past N: never stored.
  __device__ GroupedTileCoord coord(int unit, int rank) const {
    const int in_groups = unit - units_before;
    GroupedTileCoord c;
    if (kClusterM > 1 && in_groups >= shared_units) {
      constexpr int kTailWidth = kClusterM;  // column blocks per tail unit, one per CTA
      const int tail = in_groups - shared_units;
      const int units_per_row = (num_col_units + kTailWidth - 1) / kTailWidth;
      c.m_block = num_row_units * kClusterM + tail / units_per_row;
      c.n_block = tail % units_per_row * kTailWidth + rank;
      c.tail = true;
    } else {
      const int units_per_band = num_row_units * kBandUnits;
      const int band = in_groups / units_per_band;
      const int first_col_unit = band * kBandUnits;
      const int band_width = min(kBandUnits, num_col_units - first_col_unit);
      const int in_band = in_groups - band * units_per_band;
      c.m_block = (in_band / band_width) * kClusterM + (kClusterM > 1 ? rank : 0);
      c.n_block = (first_col_unit + in_band % band_width) * kClusterN + (kClusterN > 1 ? rank : 0);
      c.tail = false;
    }
    c.k_block_begin = 0;
    c.k_block_end = num_k_blocks;
    c.group = group;
    c.row_start = row_start;
    c.rows = rows;
    return c;
  }
};

}  // namespace blockgemm::kernels
