// The kernels' tile schedulers run on the host here: every CTA of a persistent grid walks its units exactly
// as the kernel's roles do, and the walk is checked. The properties are the ones a GPU run cannot show
// directly: every tile of the problem is computed exactly once, the CTAs of a cluster take the same number of
// units and agree on the shared operand in each (a cluster that disagreed would deadlock on, or corrupt, the
// multicast stage), padding tiles lie wholly outside the problem, and no grouped tile reaches a row outside
// the view, whatever the group table says.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

// The scheduler header is CUDA device code; on the host its three device-only names are plain C++.
#define __device__
template <class T>
T __ldg(const T* p) {
  return *p;
}
using std::max;
using std::min;
#include "heuristics/heuristics.h"
#include "kernels/tile_scheduler.cuh"
#undef __device__

namespace blockgemm::testing {
namespace {

using kernels::GroupedGemmParams;
using kernels::GroupedTileScheduler;
using kernels::GroupTableKind;
using kernels::TileScheduler;

// ---- dense -------------------------------------------------------------------------------------------

template <int BM, int BN, int kClusterM, int kClusterN>
void expect_dense_walk(int m, int n, int grid_clusters, const std::string& where, int group_cols = 8) {
  constexpr int kCluster = kClusterM * kClusterN;
  const TileScheduler<BM, BN, kClusterM, 8, kClusterN> scheduler(m, n, 4, 1, group_cols);
  const int m_blocks = (m + BM - 1) / BM, n_blocks = (n + BN - 1) / BN;
  std::map<std::pair<int, int>, int> seen;
  for (int cluster = 0; cluster < grid_clusters; ++cluster) {
    for (int unit = cluster; scheduler.has_unit(unit); unit += grid_clusters) {
      kernels::TileCoord first{};
      for (int rank = 0; rank < kCluster; ++rank) {
        const kernels::TileCoord c = scheduler.coord(unit, rank);
        if (rank == 0) first = c;
        // A cluster along N shares the input row block, one along M the weight column block.
        if (kClusterN > 1) {
          EXPECT_EQ(c.m_block, first.m_block) << where;
          EXPECT_EQ(c.n_block, first.n_block + rank) << where;
        }
        if (kClusterM > 1) {
          EXPECT_EQ(c.n_block, first.n_block) << where;
          EXPECT_EQ(c.m_block, first.m_block + rank) << where;
        }
        EXPECT_EQ(c.k_block_begin, 0) << where;
        EXPECT_EQ(c.k_block_end, 4) << where;
        const bool inside = c.m_block < m_blocks && c.n_block < n_blocks;
        // Padding: only the partner of a real tile, past the odd side.
        if (!inside) {
          EXPECT_GT(kCluster, 1) << where;
          EXPECT_TRUE(kClusterM > 1 ? c.n_block < n_blocks && c.m_block == m_blocks
                                    : c.m_block < m_blocks && c.n_block == n_blocks)
              << where << " padding tile " << c.m_block << "," << c.n_block;
        }
        if (inside) ++seen[{c.m_block, c.n_block}];
      }
    }
  }
  ASSERT_EQ(static_cast<int>(seen.size()), m_blocks * n_blocks) << where;
  for (const auto& [tile, count] : seen)
    EXPECT_EQ(count, 1) << where << " tile " << tile.first << "," << tile.second;
}

TEST(TileScheduler, DenseWalkCoversEveryTileOnceAndPairsAgree) {
  std::mt19937 rng(11);
  for (int trial = 0; trial < 60; ++trial) {
    const int m = 1 + static_cast<int>(rng() % 3000), n = 16 * (1 + static_cast<int>(rng() % 200));
    const int clusters = 1 + static_cast<int>(rng() % 70);
    const std::string where =
        "M=" + std::to_string(m) + " N=" + std::to_string(n) + " clusters=" + std::to_string(clusters);
    expect_dense_walk<128, 128, 1, 1>(m, n, clusters, where + " 128x128");
    expect_dense_walk<128, 128, 2, 1>(m, n, clusters, where + " 128x128x2");
    expect_dense_walk<256, 128, 1, 2>(m, n, clusters, where + " 256x128x2a");
    expect_dense_walk<128, 160, 1, 1>(m, n, clusters, where + " 128x160");
    // The raster width the plan passes (heuristics::raster_group_cols: 8 or 16; any >= 1 must be safe).
    const int group_cols = 1 + static_cast<int>(rng() % 20);
    const std::string with_group = where + " group_cols=" + std::to_string(group_cols);
    expect_dense_walk<128, 128, 1, 1>(m, n, clusters, with_group + " 128x128", group_cols);
    expect_dense_walk<128, 128, 2, 1>(m, n, clusters, with_group + " 128x128x2", group_cols);
    expect_dense_walk<256, 128, 1, 2>(m, n, clusters, with_group + " 256x128x2a", group_cols);
  }
}

// A wave of the persistent grid (units 0 .. clusters - 1) covers the row and column blocks that
// heuristics::raster_group_cols counts: with 16 columns per group the 256x128 pair's first wave at
// 4096 x 4096 spans 9 row blocks and 16 column blocks, with 8 all 16 row blocks.
TEST(TileScheduler, WiderRasterGroupsSpanFewerRowBlocksPerWave) {
  for (const auto& [group_cols, expected_rows, expected_cols] :
       std::vector<std::tuple<int, int, int>>{{16, 9, 16}, {8, 16, 12}}) {
    const TileScheduler<256, 128, 1, 8, 2> scheduler(4096, 4096, 4, 1, group_cols);
    std::set<int> rows, cols;
    for (int unit = 0; unit < 66; ++unit)
      for (int rank = 0; rank < 2; ++rank) {
        const kernels::TileCoord c = scheduler.coord(unit, rank);
        rows.insert(c.m_block);
        cols.insert(c.n_block);
      }
    EXPECT_EQ(static_cast<int>(rows.size()), expected_rows) << "group_cols=" << group_cols;
    EXPECT_EQ(static_cast<int>(cols.size()), expected_cols) << "group_cols=" << group_cols;
  }
}

// ---- grouped -----------------------------------------------------------------------------------------

struct GroupedProblem {
  GroupTableKind kind;
  std::vector<int> table;
  int num_groups, m_total, rows_per_group, n;
  // The rows each group really owns (valid tables only): [start, start + rows).
  std::vector<std::pair<int, int>> rows;
};

GroupedProblem random_problem(std::mt19937& rng, GroupTableKind kind) {
  GroupedProblem p{};
  p.kind = kind;
  p.num_groups = 1 + static_cast<int>(rng() % 12);
  p.n = 16 * (1 + static_cast<int>(rng() % 40));
  if (kind == GroupTableKind::kMasked) {
    p.rows_per_group = 1 + static_cast<int>(rng() % 700);
    p.m_total = p.num_groups * p.rows_per_group;
    for (int g = 0; g < p.num_groups; ++g) {
      const int count = static_cast<int>(rng() % (p.rows_per_group + 1));
      p.table.push_back(count);
      p.rows.push_back({g * p.rows_per_group, count});
    }
    return p;
  }
  // Contiguous: random group sizes (empty groups included) after some padding rows.
  int row = static_cast<int>(rng() % 5);
  std::vector<int> starts, sizes;
  for (int g = 0; g < p.num_groups; ++g) {
    const int size = rng() % 4 == 0 ? 0 : static_cast<int>(rng() % 900);
    starts.push_back(row);
    sizes.push_back(size);
    p.rows.push_back({row, size});
    row += size;
  }
  p.m_total = row + static_cast<int>(rng() % 5);
  if (kind == GroupTableKind::kOffsets) {
    for (int g = 0; g < p.num_groups; ++g) p.table.push_back(starts[g]);
    p.table.push_back(row);
  } else {  // kRanges, as group_index_to_ranges writes it: (M - first row, last row + 1), 0 when empty
    for (int g = 0; g < p.num_groups; ++g) {
      p.table.push_back(sizes[g] ? p.m_total - starts[g] : 0);
      p.table.push_back(sizes[g] ? starts[g] + sizes[g] : 0);
    }
  }
  return p;
}

GroupedGemmParams params_of(const GroupedProblem& p) {
  GroupedGemmParams params{};
  params.m = p.m_total;
  params.n = p.n;
  params.k = 512;
  params.group_table = p.table.data();
  params.group_table_kind = static_cast<int>(p.kind);
  params.num_groups = p.num_groups;
  params.rows_per_group = p.rows_per_group;
  return params;
}

// Walks every CTA of `grid_clusters` clusters, each CTA with its own cursor as in the kernel. With
// `valid_table` every real tile must come out exactly once; with any table nothing may leave the view.
template <int BM, int BN, int kClusterN, int kClusterM>
void expect_grouped_walk(const GroupedProblem& p, int grid_clusters, bool valid_table,
                         const std::string& where) {
  constexpr int kCluster = kClusterN * kClusterM;
  const GroupedGemmParams params = params_of(p);
  const int n_blocks = (p.n + BN - 1) / BN;
  std::map<std::tuple<int, int, int>, int> seen;  // (group, m_block, n_block)
  int64_t tiles_walked = 0;
  for (int cluster = 0; cluster < grid_clusters; ++cluster) {
    std::vector<GroupedTileScheduler<BM, BN, 8, kClusterN, kClusterM>> cursors(
        kCluster, GroupedTileScheduler<BM, BN, 8, kClusterN, kClusterM>(params, 4));
    for (int unit = cluster;; unit += grid_clusters) {
      // Each CTA of the cluster asks its own cursor: they must agree whether there is a unit at all.
      bool any = false, all = true;
      for (auto& cursor : cursors) {
        const bool has = cursor.has_unit(unit);
        any = any || has;
        all = all && has;
      }
      ASSERT_EQ(any, all) << where << ": the CTAs of cluster " << cluster << " disagree on unit " << unit;
      if (!any) break;
      const kernels::GroupedTileCoord first = cursors[0].coord(unit, 0);
      for (int rank = 0; rank < kCluster; ++rank) {
        const kernels::GroupedTileCoord c = cursors[rank].coord(unit, rank);
        ++tiles_walked;
        EXPECT_EQ(c.group, first.group) << where;
        EXPECT_EQ(c.row_start, first.row_start) << where;
        EXPECT_EQ(c.rows, first.rows) << where;
        if (kClusterN > 1) {
          EXPECT_EQ(c.m_block, first.m_block) << where;
          EXPECT_EQ(c.n_block, first.n_block + rank) << where;
        }
        // Every CTA of the cluster agrees whether the unit is a tail unit and on its K blocks (a disagreement
        // deadlocks the shared ring or lets it drift out of step).
        EXPECT_EQ(c.tail, first.tail) << where;
        EXPECT_EQ(c.k_block_begin, first.k_block_begin) << where;
        EXPECT_EQ(c.k_block_end, first.k_block_end) << where;
        if (kClusterN > 1) {
          EXPECT_FALSE(c.tail) << where;
        }
        if (kClusterM > 1 && !c.tail) {
          EXPECT_EQ(c.n_block, first.n_block) << where;
          EXPECT_EQ(c.m_block, first.m_block + rank) << where;
        }
        if (kClusterM > 1 && c.tail) {
          // A tail unit: one row block, adjacent column blocks, in a group whose row blocks are not whole
          // pairs, on its last row block.
          EXPECT_EQ(c.m_block, first.m_block) << where;
          EXPECT_EQ(c.n_block, first.n_block + rank) << where;
          EXPECT_EQ(first.n_block % kClusterM, 0) << where;
          const int row_blocks = (c.rows + BM - 1) / BM;
          EXPECT_NE(row_blocks % kClusterM, 0) << where;
          EXPECT_GE(c.m_block, row_blocks / kClusterM * kClusterM) << where;
        }
        // Memory safety whatever the table: the group's rows lie inside the view.
        ASSERT_GE(c.row_start, 0) << where;
        ASSERT_GE(c.rows, 0) << where;
        ASSERT_LE(c.row_start + c.rows, p.m_total) << where;
        ASSERT_TRUE(c.group >= 0 && c.group < p.num_groups) << where;
        const int m_blocks = (c.rows + BM - 1) / BM;
        const bool inside = c.m_block < m_blocks && c.n_block < n_blocks;
        if (!inside) {
          // Padding: the partner of a real tile, one column block past an odd count (a cluster along N, or
          // a tail unit of one along M, which computes no tile past the group's rows); it stores nothing.
          ASSERT_GT(kCluster, 1) << where;
          EXPECT_TRUE(c.m_block < m_blocks && c.n_block == n_blocks)
              << where << " padding tile " << c.m_block << "," << c.n_block;
        } else {
          ++seen[{c.group, c.m_block, c.n_block}];
        }
      }
    }
  }
  const heuristics::TileShape tile{BM, BN, kCluster, false, kClusterN > 1};
  // Masked counts are clamped into [0, M_max], so the grid's bound holds for any masked table.
  if (p.kind == GroupTableKind::kMasked) {
    EXPECT_LE(tiles_walked, heuristics::masked_tiles_upper_bound(tile, p.num_groups, p.rows_per_group, p.n))
        << where;
  }
  if (!valid_table) return;
  int64_t expected_tiles = 0;
  for (int g = 0; g < p.num_groups; ++g) {
    const int rows = p.rows[static_cast<std::size_t>(g)].second;
    const int m_blocks = (rows + BM - 1) / BM;
    for (int mb = 0; mb < m_blocks; ++mb)
      for (int nb = 0; nb < n_blocks; ++nb) {
        const auto it = seen.find({g, mb, nb});
        ASSERT_NE(it, seen.end()) << where << ": group " << g << " tile " << mb << "," << nb << " never ran";
        EXPECT_EQ(it->second, 1) << where << ": group " << g << " tile " << mb << "," << nb;
      }
    expected_tiles += static_cast<int64_t>(m_blocks) * n_blocks;
  }
  EXPECT_EQ(static_cast<int64_t>(seen.size()), expected_tiles) << where;
  // The persistent grid is sized from the host's upper bound: it must hold every tile the walk ran.
  const int64_t bound = p.kind == GroupTableKind::kMasked
                            ? heuristics::masked_tiles_upper_bound(tile, p.num_groups, p.rows_per_group, p.n)
                            : heuristics::contiguous_tiles_upper_bound(tile, p.m_total, p.num_groups, p.n);
  EXPECT_LE(tiles_walked, bound) << where;
}

template <int BM, int BN, int kClusterN, int kClusterM>
void expect_grouped_walks(const std::string& name) {
  std::mt19937 rng(23 + BM + BN + 3 * kClusterN + 5 * kClusterM);
  for (const GroupTableKind kind :
       {GroupTableKind::kOffsets, GroupTableKind::kMasked, GroupTableKind::kRanges})
    for (int trial = 0; trial < 40; ++trial) {
      const GroupedProblem p = random_problem(rng, kind);
      const int clusters = 1 + static_cast<int>(rng() % 70);
      const std::string where = name + " kind " + std::to_string(static_cast<int>(kind)) + " trial " +
                                std::to_string(trial) + " clusters " + std::to_string(clusters);
      expect_grouped_walk<BM, BN, kClusterN, kClusterM>(p, clusters, true, where);
      // The same walk on a scrambled table (any values, as a buggy router might leave): memory-safe, and the
      // CTAs of a cluster still agree.
      GroupedProblem bad = p;
      for (int& v : bad.table) v = static_cast<int>(rng() % 4000) - 1000;
      expect_grouped_walk<BM, BN, kClusterN, kClusterM>(bad, clusters, false, where + " scrambled");
    }
}

TEST(TileScheduler, GroupedWalkCoversEveryTileOnce) {
  expect_grouped_walks<128, 128, 1, 1>("128x128");
  expect_grouped_walks<128, 192, 1, 1>("128x192");
  expect_grouped_walks<256, 128, 1, 1>("256x128");
}

TEST(TileScheduler, GroupedPairsSharingTheInputTileStayInOneGroup) {
  expect_grouped_walks<256, 128, 2, 1>("256x128x2a");
}

TEST(TileScheduler, GroupedPairsSharingTheWeightTileStayInOneGroup) {
  expect_grouped_walks<128, 128, 1, 2>("128x128x2");
  expect_grouped_walks<128, 192, 1, 2>("128x192x2");
}

// A masked group of 3 row blocks on the 128x192 pair at N = 4096 (22 column blocks), as expected M = 256
// gives a third of the groups: 22 shared units (both row-block pairs' tiles) and then 11 tail units over
// the last row block; 66 tiles, none past the group's rows (the padded form ran 88). With N = 4288 (23
// column blocks) the last tail unit's second tile lies past N.
TEST(TileScheduler, GroupedPairsRunAnOddRowBlockAsTailUnits) {
  for (const auto& [n, n_blocks, tail_units] :
       std::vector<std::tuple<int, int, int>>{{4096, 22, 11}, {4288, 23, 12}}) {
    const std::vector<int> counts{300, 0, 129};
    GroupedGemmParams params{};
    params.m = 3 * 384;
    params.n = n;
    params.k = 512;
    params.group_table = counts.data();
    params.group_table_kind = static_cast<int>(GroupTableKind::kMasked);
    params.num_groups = 3;
    params.rows_per_group = 384;
    GroupedTileScheduler<128, 192, 8, 1, 2> scheduler(params, 4);
    std::vector<std::tuple<int, int, int, bool>> walked;  // (group, m_block, n_block, tail) of rank 0
    int unit = 0;
    for (; scheduler.has_unit(unit); ++unit) {
      const kernels::GroupedTileCoord c0 = scheduler.coord(unit, 0), c1 = scheduler.coord(unit, 1);
      walked.emplace_back(c0.group, c0.m_block, c0.n_block, c0.tail);
      if (!c0.tail)
        EXPECT_EQ(std::make_pair(c1.m_block, c1.n_block), std::make_pair(c0.m_block + 1, c0.n_block));
      else
        EXPECT_EQ(std::make_pair(c1.m_block, c1.n_block), std::make_pair(c0.m_block, c0.n_block + 1));
    }
    // Group 0 (300 rows): 3 row blocks; group 1 empty; group 2 (129 rows): 2 row blocks, no tail.
    ASSERT_EQ(unit, n_blocks + tail_units + n_blocks) << "N=" << n;
    for (int u = 0; u < n_blocks; ++u) {
      EXPECT_FALSE(std::get<3>(walked[static_cast<std::size_t>(u)])) << "N=" << n << " unit " << u;
      EXPECT_EQ(std::get<1>(walked[static_cast<std::size_t>(u)]), 0) << "N=" << n << " unit " << u;
    }
    for (int t = 0; t < tail_units; ++t) {
      const auto& [group, m_block, n_block, tail] = walked[static_cast<std::size_t>(n_blocks + t)];
      EXPECT_EQ(group, 0);
      EXPECT_EQ(m_block, 2);
      EXPECT_EQ(n_block, 2 * t);
      EXPECT_TRUE(tail);
    }
    const auto& [group, m_block, n_block, tail] = walked.back();
    EXPECT_EQ(group, 2);
    EXPECT_FALSE(tail);
    const heuristics::TileShape pair{128, 192, 2};
    EXPECT_EQ(heuristics::masked_tiles_upper_bound(pair, 3, 384, n), 3 * (3 * n_blocks + (n_blocks % 2)));
  }
}

}  // namespace
}  // namespace blockgemm::testing
