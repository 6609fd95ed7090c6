// blockgemm-plan-sweep: times every plan the kernels can run for each shape (swapAB tiles x split-K for
// M <= 32, the normal tiles otherwise) beside the plan the heuristics pick. A calibration tool for
// src/heuristics: it shows where the cost model's choice stands among the alternatives.
//
//   blockgemm-plan-sweep [--shape M,N,K]...   (default: M in {1, 16, 24, 32, 40, 48, 64} x the DeepSeek-V3
//                                            projections)
//   SWEEP_ALL=1 lists every plan's time; SWEEP_PER_ROW=1 uses per-row (N, K/128) weight scales;
//   SWEEP_SCALE_A_COLMAJOR=1 passes the input scales column-major (stride (1, M); also --grouped);
//   SWEEP_TILES=64x128,128x160 times only those normal tiles (BLOCK_MxBLOCK_N, or BLOCK_MxBLOCK_Nmc2 for
//   multicast; M >= 32), not the heuristic's plan unless named;
//   SWEEP_REPEAT=N times each plan N times and keeps the median; SWEEP_NORMAL_ALL_M=1 also times the normal
//   tiles below M = 32 (where the dispatch always runs swapAB), to check that rule.
//   --grouped G,ROWS,N,K times every normal grouped tile (heuristics::kGroupedTileShapes, per-block weight
//   scales; SWEEP_TILES filters them too) on the contiguous layout, G groups of ROWS rows each given by
//   offsets, round-robin over SWEEP_REPEAT rounds (the card's clock drifts under load: every tile sees the
//   same drift); SWEEP_OFFSET_SHIFT=S starts every group after the first S rows later (unaligned starts).
//   --masked G,EXPECTED_M,N,K times every grouped tile, swapAB included, on the masked layout: group g holds
//   EXPECTED_M * u valid rows, u in [0.7, 1.3] (the Python benchmark's spread), M_max their maximum rounded
//   up to 128, and every plan is made from the hint EXPECTED_M as the API makes it (SWEEP_SCALE_A_COLMAJOR:
//   per-group column-major input scales, as the masked call's copy makes them; SWEEP_TILES times only the
//   normal tiles it names).
//
// Operands are fp8 bytes distributed like quantized data and random positive scales, rotated over enough sets
// that L2 never holds them; times are CUDA-graph replays (bench/timing.h). Correctness is the tests' job.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "api/grouped_validate.h"
#include "api/validate.h"
#include "blockgemm/blockgemm.h"
#include "blockgemm/reference.h"
#include "heuristics/heuristics.h"
#include "kernels/launch.h"
#include "timing.h"

namespace {

using blockgemm::DType;
using blockgemm::TensorView;
namespace heuristics = blockgemm::heuristics;

struct Shape {
  int64_t m, n, k;
};

struct DeviceBytes {
  void* ptr = nullptr;
  explicit DeviceBytes(std::size_t bytes) { BENCH_CHECK_CUDA(cudaMalloc(&ptr, bytes)); }
  ~DeviceBytes() { cudaFree(ptr); }
  DeviceBytes(const DeviceBytes&) = delete;
  DeviceBytes& operator=(const DeviceBytes&) = delete;
};

// Bytes distributed like a per-token-quantized activation or weight (a normal variable whose 1x128 group
// amax maps to 448, so |x| ~ 120 typically), not uniform bit patterns: the tensor cores' power draw, and so
// the clock they hold, depends on the operands' bits, and uniform random bytes ran up to 20% slower.
std::vector<uint8_t> random_fp8(std::size_t count, std::mt19937_64& rng) {
  static const std::vector<uint8_t> table = [] {
    std::mt19937_64 table_rng(7);
    std::normal_distribution<float> normal(0.f, 120.f);
    std::vector<uint8_t> t(1 << 16);
    for (auto& b : t)
      b = blockgemm::reference::float_to_fp8_e4m3(std::clamp(normal(table_rng), -448.f, 448.f));
    return t;
  }();
  std::vector<uint8_t> bytes(count);
  for (auto& b : bytes) b = table[rng() & 0xFFFF];
  return bytes;
}
std::vector<float> random_scales(std::size_t count, std::mt19937_64& rng) {
  std::uniform_real_distribution<float> dist(0.5f, 2.0f);
  std::vector<float> v(count);
  for (auto& x : v) x = dist(rng) / 448.0f;
  return v;
}

struct OperandSet {
  std::unique_ptr<DeviceBytes> a, b, sa, sb, out;
  blockgemm::kernels::Fp8GemmArgs args;
};

// SWEEP_TILES: a comma-separated list of normal tiles, BLOCK_MxBLOCK_N[mcK[a]] (a: the cluster shares the
// input tile); empty means every plan.
bool tile_selected(const heuristics::TileShape& tile) {
  const char* list = std::getenv("SWEEP_TILES");
  if (list == nullptr || *list == 0) return true;
  if (tile.swap_ab) return false;
  const std::string wanted = std::string(",") + list + ",";
  const std::string name = "," + std::to_string(tile.block_m) + "x" + std::to_string(tile.block_n) +
                           (tile.multicast > 1 ? "mc" + std::to_string(tile.multicast) : "") +
                           (tile.multicast_a ? "a" : "") + ",";
  return wanted.find(name) != std::string::npos;
}

// SWEEP_RASTER: a comma-separated list of raster group widths (weight column blocks) each normal plan runs
// with, as separate plans (an A/B of the tile order); unset, the heuristics' width.
std::vector<int> raster_widths() {
  std::vector<int> widths;
  const char* list = std::getenv("SWEEP_RASTER");
  for (const char* p = list; p != nullptr && *p != 0;) {
    char* end = nullptr;
    const long value = std::strtol(p, &end, 10);
    if (end == p) break;
    if (value > 0) widths.push_back(static_cast<int>(value));
    p = *end == ',' ? end + 1 : end;
  }
  return widths;
}

std::vector<heuristics::GemmPlan> candidates(const Shape& s, const heuristics::DeviceModel& device) {
  std::vector<heuristics::GemmPlan> plans;
  const int k_blocks = static_cast<int>(s.k / 128);
  const int64_t min_normal_m = std::getenv("SWEEP_NORMAL_ALL_M") != nullptr ? 1 : 32;
  for (const heuristics::TileShape& tile : heuristics::kTileShapes) {
    if (!tile_selected(tile)) continue;
    if (tile.swap_ab) {
      if (tile.block_m < s.m) continue;
      for (int splits = 1; splits <= std::min(heuristics::kMaxSplitK, k_blocks); ++splits)
        plans.push_back(heuristics::make_plan(tile, splits, s.m, s.n, s.k, device));
    } else if (s.m >= min_normal_m) {
      const heuristics::GemmPlan plan = heuristics::make_plan(tile, 1, s.m, s.n, s.k, device);
      const std::vector<int> rasters = raster_widths();
      if (rasters.empty()) plans.push_back(plan);
      for (const int cols : rasters) {
        plans.push_back(plan);
        plans.back().raster_group_cols = cols;
      }
    }
  }
  return plans;
}

void sweep(const Shape& s, const heuristics::DeviceModel& device, cudaStream_t stream) {
  std::mt19937_64 rng(static_cast<uint64_t>(s.m * 1000003 + s.n * 131 + s.k));
  const int64_t kg = s.k / 128;
  const double bytes_per_call = static_cast<double>(s.n * s.k + s.m * s.k + s.m * s.n * 2);
  const int num_sets = static_cast<int>(std::max<double>(2, std::ceil(200e6 / bytes_per_call)));
  std::vector<OperandSet> sets(num_sets);
  const auto weight = random_fp8(static_cast<std::size_t>(s.n * s.k), rng);
  // SWEEP_PER_ROW=1: one weight scale per 1x128 group of each row, (N, K/128); else per 128x128 block.
  const bool per_row = std::getenv("SWEEP_PER_ROW") != nullptr;
  const int64_t weight_scale_rows = per_row ? s.n : (s.n + 127) / 128;
  const auto weight_scales = random_scales(static_cast<std::size_t>(weight_scale_rows * kg), rng);
  const bool scale_a_col_major = std::getenv("SWEEP_SCALE_A_COLMAJOR") != nullptr;
  for (OperandSet& set : sets) {
    const auto input = random_fp8(static_cast<std::size_t>(s.m * s.k), rng);
    const auto input_scales = random_scales(static_cast<std::size_t>(s.m * kg), rng);
    set.a = std::make_unique<DeviceBytes>(input.size());
    set.b = std::make_unique<DeviceBytes>(weight.size());
    set.sa = std::make_unique<DeviceBytes>(input_scales.size() * 4);
    set.sb = std::make_unique<DeviceBytes>(weight_scales.size() * 4);
    set.out = std::make_unique<DeviceBytes>(static_cast<std::size_t>(s.m * s.n * 2));
    BENCH_CHECK_CUDA(cudaMemcpy(set.a->ptr, input.data(), input.size(), cudaMemcpyHostToDevice));
    BENCH_CHECK_CUDA(cudaMemcpy(set.b->ptr, weight.data(), weight.size(), cudaMemcpyHostToDevice));
    BENCH_CHECK_CUDA(
        cudaMemcpy(set.sa->ptr, input_scales.data(), input_scales.size() * 4, cudaMemcpyHostToDevice));
    BENCH_CHECK_CUDA(
        cudaMemcpy(set.sb->ptr, weight_scales.data(), weight_scales.size() * 4, cudaMemcpyHostToDevice));
    set.args = blockgemm::api::validate_gemm_args(
        TensorView::matrix(set.a->ptr, DType::kFloat8E4M3, s.m, s.k, 0),
        TensorView::matrix(set.b->ptr, DType::kFloat8E4M3, s.n, s.k, 0),
        scale_a_col_major ? TensorView::strided(set.sa->ptr, DType::kFloat32, s.m, kg, 1, s.m, 0)
                          : TensorView::matrix(set.sa->ptr, DType::kFloat32, s.m, kg, 0),
        TensorView::matrix(set.sb->ptr, DType::kFloat32, weight_scale_rows, kg, 0),
        TensorView::matrix(set.out->ptr, DType::kBFloat16, s.m, s.n, 0), std::nullopt);
  }

  const heuristics::GemmPlan chosen = heuristics::plan_gemm(s.m, s.n, s.k, device);
  struct Row {
    heuristics::GemmPlan plan;
    double us;
  };
  std::vector<Row> rows;
  std::vector<heuristics::GemmPlan> plans = candidates(s, device);
  // With SWEEP_TILES only the named tiles run (the heuristic's plan is printed, timed only if named), so
  // that a profile of one tile holds one kernel.
  const bool filtered = std::getenv("SWEEP_TILES") != nullptr && *std::getenv("SWEEP_TILES") != 0;
  if (filtered && plans.empty()) {
    std::fprintf(stderr,
                 "blockgemm-plan-sweep: SWEEP_TILES=%s names no normal tile of this build for M=%lld\n",
                 std::getenv("SWEEP_TILES"), static_cast<long long>(s.m));
    std::exit(2);
  }
  if (!filtered && std::none_of(plans.begin(), plans.end(), [&](const heuristics::GemmPlan& p) {
        return p.tile == chosen.tile && p.k_splits == chosen.k_splits &&
               p.raster_group_cols == chosen.raster_group_cols;
      }))
    plans.push_back(chosen);
  for (const heuristics::GemmPlan& plan : plans) {
    // SWEEP_REPEAT=N times each plan N times back to back (the median is kept): seconds of steady load,
    // under which the card's clock settles to what its power limit allows.
    const char* repeat_env = std::getenv("SWEEP_REPEAT");
    const int repeats = repeat_env ? std::max(1, std::atoi(repeat_env)) : 1;
    std::vector<double> us;
    for (int r = 0; r < repeats; ++r)
      us.push_back(blockgemm_bench::time_with_graph(stream, num_sets, [&](int set, cudaStream_t st) {
                     blockgemm::kernels::launch_fp8_gemm(plan, sets[set].args, st);
                   }).us_per_call);
    if (repeats > 1)
      std::printf("        repeats of %s: first %.2f us, last %.2f us\n", plan.describe().c_str(), us.front(),
                  us.back());
    std::nth_element(us.begin(), us.begin() + repeats / 2, us.end());
    rows.push_back({plan, us[repeats / 2]});
  }
  std::sort(rows.begin(), rows.end(), [](const Row& x, const Row& y) { return x.us < y.us; });
  double chosen_us = 0, best_swap_us = 0, best_normal_us = 0;
  for (const Row& r : rows) {
    if (r.plan.tile == chosen.tile && r.plan.k_splits == chosen.k_splits &&
        r.plan.raster_group_cols == chosen.raster_group_cols)
      chosen_us = r.us;
    double& best_kind = r.plan.tile.swap_ab ? best_swap_us : best_normal_us;
    if (best_kind == 0) best_kind = r.us;
  }
  std::printf(
      "%6lld %6lld %6lld | swapAB %8.2f normal %8.2f | best %8.2f us %7.0f GB/s  %-70s | heuristic %8.2f us "
      "(%.3fx best) %s\n",
      static_cast<long long>(s.m), static_cast<long long>(s.n), static_cast<long long>(s.k), best_swap_us,
      best_normal_us, rows[0].us, bytes_per_call / rows[0].us / 1e3, rows[0].plan.describe().c_str(),
      chosen_us, chosen_us / rows[0].us, chosen.describe().c_str());
  if (std::getenv("SWEEP_ALL"))
    for (const Row& r : rows)
      std::printf("        %8.2f us  model %8.2f  %s\n", r.us, r.plan.estimated_us,
                  r.plan.describe().c_str());
  std::fflush(stdout);
}

struct GroupedShape {
  int64_t g, rows, n, k;
};

// One rotation of grouped operand sets: G weights shared by every set (its fp8 bytes and block scales), a
// fresh `rows` x K input per set, enough sets that L2 never holds them. `make_args` builds a set's arguments
// from its device pointers (a, b, scale_a, scale_b, out), validated as the API would.
struct GroupedSet {
  std::unique_ptr<DeviceBytes> a, b, sa, sb, out;
  blockgemm::kernels::GroupedGemmArgs args;
};

template <class MakeArgs>
std::vector<GroupedSet> make_grouped_sets(const GroupedShape& s, int64_t rows, std::mt19937_64& rng,
                                          MakeArgs&& make_args) {
  const int64_t kg = s.k / 128;
  const double bytes_per_call = static_cast<double>(s.g * s.n * s.k + rows * s.k + rows * s.n * 2);
  const int num_sets = static_cast<int>(std::max<double>(2, std::ceil(200e6 / bytes_per_call)));
  const auto weight = random_fp8(static_cast<std::size_t>(s.g * s.n * s.k), rng);
  const auto weight_scales = random_scales(static_cast<std::size_t>(s.g * ((s.n + 127) / 128) * kg), rng);
  std::vector<GroupedSet> sets(num_sets);
  for (GroupedSet& set : sets) {
    const auto input = random_fp8(static_cast<std::size_t>(rows * s.k), rng);
    const auto input_scales = random_scales(static_cast<std::size_t>(rows * kg), rng);
    set.a = std::make_unique<DeviceBytes>(input.size());
    set.b = std::make_unique<DeviceBytes>(weight.size());
    set.sa = std::make_unique<DeviceBytes>(input_scales.size() * 4);
    set.sb = std::make_unique<DeviceBytes>(weight_scales.size() * 4);
    set.out = std::make_unique<DeviceBytes>(static_cast<std::size_t>(rows * s.n * 2));
    BENCH_CHECK_CUDA(cudaMemcpy(set.a->ptr, input.data(), input.size(), cudaMemcpyHostToDevice));
    BENCH_CHECK_CUDA(cudaMemcpy(set.b->ptr, weight.data(), weight.size(), cudaMemcpyHostToDevice));
    BENCH_CHECK_CUDA(
        cudaMemcpy(set.sa->ptr, input_scales.data(), input_scales.size() * 4, cudaMemcpyHostToDevice));
    BENCH_CHECK_CUDA(
        cudaMemcpy(set.sb->ptr, weight_scales.data(), weight_scales.size() * 4, cudaMemcpyHostToDevice));
    set.args = make_args(set.a->ptr, set.b->ptr, set.sa->ptr, set.sb->ptr, set.out->ptr);
  }
  return sets;
}

// Each plan's time per call, round-robin over SWEEP_REPEAT rounds (every plan sees the card's clock drift):
// {median, first, last} in us.
std::vector<std::array<double, 3>> time_grouped_plans(const std::vector<heuristics::GemmPlan>& plans,
                                                      const std::vector<GroupedSet>& sets,
                                                      cudaStream_t stream) {
  const char* repeat_env = std::getenv("SWEEP_REPEAT");
  const int repeats = repeat_env ? std::max(1, std::atoi(repeat_env)) : 1;
  std::vector<std::vector<double>> us(plans.size());
  for (int r = 0; r < repeats; ++r)
    for (std::size_t i = 0; i < plans.size(); ++i)
      us[i].push_back(blockgemm_bench::time_with_graph(stream, static_cast<int>(sets.size()),
                                                       [&](int set, cudaStream_t st) {
                                                         blockgemm::kernels::launch_fp8_gemm_grouped(
                                                             plans[i], sets[set].args, st);
                                                       })
                          .us_per_call);
  std::vector<std::array<double, 3>> times;
  for (const std::vector<double>& v : us) {
    std::vector<double> sorted = v;
    std::nth_element(sorted.begin(), sorted.begin() + repeats / 2, sorted.end());
    times.push_back({sorted[repeats / 2], v.front(), v.back()});
  }
  return times;
}

void sweep_grouped(const GroupedShape& s, const heuristics::DeviceModel& device, cudaStream_t stream) {
  std::mt19937_64 rng(static_cast<uint64_t>(s.g * 7919 + s.rows * 131 + s.n + s.k));
  const int64_t m = s.g * s.rows, kg = s.k / 128, scale_rows = (s.n + 127) / 128;
  const bool scale_a_col_major = std::getenv("SWEEP_SCALE_A_COLMAJOR") != nullptr;
  // SWEEP_OFFSET_SHIFT=s moves every inner group boundary s rows on (the first group s longer, the last s
  // shorter): groups that start at unaligned rows, as the offsets form allows.
  const char* shift_env = std::getenv("SWEEP_OFFSET_SHIFT");
  const int64_t shift = shift_env ? std::atoi(shift_env) : 0;
  if (shift < 0 || shift >= s.rows) {
    std::fprintf(stderr, "SWEEP_OFFSET_SHIFT: expected 0 <= S < ROWS (%lld), got %lld\n",
                 static_cast<long long>(s.rows), static_cast<long long>(shift));
    std::exit(2);
  }
  std::vector<int32_t> offsets;
  for (int64_t i = 0; i <= s.g; ++i)
    offsets.push_back(static_cast<int32_t>(i * s.rows + (i > 0 && i < s.g ? shift : 0)));
  DeviceBytes offsets_dev(offsets.size() * 4);
  BENCH_CHECK_CUDA(cudaMemcpy(offsets_dev.ptr, offsets.data(), offsets.size() * 4, cudaMemcpyHostToDevice));
  const std::vector<GroupedSet> sets =
      make_grouped_sets(s, m, rng, [&](void* a, void* b, void* sa, void* sb, void* out) {
        return blockgemm::api::validate_grouped_contiguous(
                   TensorView::matrix(a, DType::kFloat8E4M3, m, s.k, 0),
                   TensorView::tensor3(b, DType::kFloat8E4M3, s.g, s.n, s.k, 0),
                   scale_a_col_major ? TensorView::strided(sa, DType::kFloat32, m, kg, 1, m, 0)
                                     : TensorView::matrix(sa, DType::kFloat32, m, kg, 0),
                   TensorView::tensor3(sb, DType::kFloat32, s.g, scale_rows, kg, 0),
                   blockgemm::GroupLayout::from_offsets(blockgemm::Int32View::vector(
                       static_cast<const int32_t*>(offsets_dev.ptr), s.g + 1, 0)),
                   TensorView::matrix(out, DType::kBFloat16, m, s.n, 0), std::nullopt)
            .args;
      });
  const heuristics::GemmPlan chosen = heuristics::plan_grouped_contiguous(m, s.g, s.n, s.k, false, device);
  std::vector<heuristics::GemmPlan> plans;
  for (const heuristics::TileShape& tile : heuristics::kGroupedTileShapes)
    if (!tile.swap_ab && heuristics::grouped_tile_compiled(tile, false) && tile_selected(tile))
      plans.push_back(heuristics::make_grouped_plan(
          tile, heuristics::contiguous_tiles_upper_bound(tile, m, s.g, s.n), s.g, s.rows, s.n, s.k, device));
  const auto times = time_grouped_plans(plans, sets, stream);
  std::printf("grouped contiguous G=%lld rows=%lld N=%lld K=%lld | heuristic: %s\n",
              static_cast<long long>(s.g), static_cast<long long>(s.rows), static_cast<long long>(s.n),
              static_cast<long long>(s.k), chosen.describe().c_str());
  for (std::size_t i = 0; i < plans.size(); ++i)
    std::printf("        %8.2f us (first %8.2f, last %8.2f)  %7.0f TFLOP/s  model %8.2f  %s\n", times[i][0],
                times[i][1], times[i][2], 2.0 * m * s.n * s.k / times[i][0] / 1e6, plans[i].estimated_us,
                plans[i].describe().c_str());
  std::fflush(stdout);
}

// Valid rows of each group of a masked case: expected_m * u with u spread evenly over [0.7, 1.3] (shuffled),
// at least 1: the spread of the Python benchmark's masked cases (python/blockgemm/bench/shapes.py).
std::vector<int32_t> masked_counts(int64_t g, int64_t expected_m, std::mt19937_64& rng) {
  std::vector<int32_t> counts;
  for (int64_t i = 0; i < g; ++i) {
    const double u = 0.7 + 0.6 * (static_cast<double>(i) + 0.5) / static_cast<double>(g);
    counts.push_back(static_cast<int32_t>(std::max<int64_t>(1, static_cast<int64_t>(expected_m * u))));
  }
  std::shuffle(counts.begin(), counts.end(), rng);
  return counts;
}

void sweep_masked(const GroupedShape& s, const heuristics::DeviceModel& device, cudaStream_t stream) {
  std::mt19937_64 rng(static_cast<uint64_t>(s.g * 7919 + s.rows * 131 + s.n + s.k + 1));
  const std::vector<int32_t> counts = masked_counts(s.g, s.rows, rng);
  const int64_t m_max = (*std::max_element(counts.begin(), counts.end()) + 127) / 128 * 128;
  const int64_t kg = s.k / 128, scale_rows = (s.n + 127) / 128;
  // Column-major per group, (G, K/128, M_max) transposed: the layout the masked call's copy makes (#73).
  const bool scale_a_col_major = std::getenv("SWEEP_SCALE_A_COLMAJOR") != nullptr;
  int64_t valid_rows = 0;
  for (int32_t c : counts) valid_rows += c;
  DeviceBytes counts_dev(counts.size() * 4);
  BENCH_CHECK_CUDA(cudaMemcpy(counts_dev.ptr, counts.data(), counts.size() * 4, cudaMemcpyHostToDevice));
  const std::vector<GroupedSet> sets =
      make_grouped_sets(s, s.g * m_max, rng, [&](void* a, void* b, void* sa, void* sb, void* out) {
        return blockgemm::api::validate_grouped_masked(
                   TensorView::tensor3(a, DType::kFloat8E4M3, s.g, m_max, s.k, 0),
                   TensorView::tensor3(b, DType::kFloat8E4M3, s.g, s.n, s.k, 0),
                   scale_a_col_major
                       ? TensorView::strided3(sa, DType::kFloat32, s.g, m_max, kg, kg * m_max, 1, m_max, 0)
                       : TensorView::tensor3(sa, DType::kFloat32, s.g, m_max, kg, 0),
                   TensorView::tensor3(sb, DType::kFloat32, s.g, scale_rows, kg, 0),
                   blockgemm::Int32View::vector(static_cast<const int32_t*>(counts_dev.ptr), s.g, 0), s.rows,
                   TensorView::tensor3(out, DType::kBFloat16, s.g, m_max, s.n, 0), std::nullopt)
            .args;
      });
  const heuristics::GemmPlan chosen =
      heuristics::plan_grouped_masked(s.g, m_max, s.rows, s.n, s.k, false, device);
  std::vector<heuristics::GemmPlan> plans;
  for (const heuristics::TileShape& tile : heuristics::kGroupedTileShapes)
    if (heuristics::grouped_tile_compiled(tile, false) && tile_selected(tile))
      plans.push_back(heuristics::make_grouped_plan(
          tile, heuristics::masked_tiles_upper_bound(tile, s.g, m_max, s.n), s.g, s.rows, s.n, s.k, device));
  const auto times = time_grouped_plans(plans, sets, stream);
  std::printf(
      "grouped masked G=%lld expected_m=%lld (valid rows %lld, M_max %lld) N=%lld K=%lld | heuristic: %s\n",
      static_cast<long long>(s.g), static_cast<long long>(s.rows), static_cast<long long>(valid_rows),
      static_cast<long long>(m_max), static_cast<long long>(s.n), static_cast<long long>(s.k),
      chosen.describe().c_str());
  const double weight_bytes = static_cast<double>(s.g * s.n * s.k);
  for (std::size_t i = 0; i < plans.size(); ++i)
    std::printf("        %8.2f us (first %8.2f, last %8.2f)  %6.0f weight GB/s  model %8.2f  %s\n",
                times[i][0], times[i][1], times[i][2], weight_bytes / times[i][0] / 1e3,
                plans[i].estimated_us, plans[i].describe().c_str());
  std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) {
  std::vector<Shape> shapes;
  std::vector<GroupedShape> grouped, masked;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    long long m = 0, n = 0, k = 0;
    long long g = 0;
    if (arg == "--shape" && i + 1 < argc && std::sscanf(argv[++i], "%lld,%lld,%lld", &m, &n, &k) == 3) {
      shapes.push_back({m, n, k});
    } else if (arg == "--grouped" && i + 1 < argc &&
               std::sscanf(argv[++i], "%lld,%lld,%lld,%lld", &g, &m, &n, &k) == 4) {
      grouped.push_back({g, m, n, k});
    } else if (arg == "--masked" && i + 1 < argc &&
               std::sscanf(argv[++i], "%lld,%lld,%lld,%lld", &g, &m, &n, &k) == 4) {
      masked.push_back({g, m, n, k});
    } else {
      std::fprintf(stderr,
                   "usage: blockgemm-plan-sweep [--shape M,N,K]... [--grouped G,ROWS,N,K]... [--masked "
                   "G,EXPECTED_M,N,K]...\n");
      return 2;
    }
  }
  if (shapes.empty() && grouped.empty() && masked.empty()) {
    const std::pair<int64_t, int64_t> nk[] = {{2112, 7168},  {576, 7168},  {24576, 1536}, {32768, 512},
                                              {7168, 16384}, {4096, 7168}, {7168, 2048}};
    for (int64_t m : {1, 16, 24, 32, 40, 48, 64})
      for (const auto& [n, k] : nk) shapes.push_back({m, n, k});
  }
  try {
    int sms = 0;
    BENCH_CHECK_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    heuristics::DeviceModel device;
    device.num_sms = sms;
    cudaStream_t stream;
    BENCH_CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    for (const Shape& s : shapes) sweep(s, device, stream);
    for (const GroupedShape& s : grouped) sweep_grouped(s, device, stream);
    for (const GroupedShape& s : masked) sweep_masked(s, device, stream);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blockgemm-plan-sweep: %s\n", e.what());
    return 3;
  }
  return 0;
}
