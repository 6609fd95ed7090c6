// FP8 block-scaled GEMM for Hopper: out (M, N) = A (M, K) . B (N, K)^T with per-128-K scales.
//
// Structure (one persistent CTA per SM, tiles of BLOCK_M x BLOCK_N):
//   warpgroup 0  producer: warp 0 issues TMA loads of the A and B tiles of each 128-wide K block into a
//                ring of kNumStages shared-memory stages; warp 1 gathers that K block's scales (one per
//                row of A; one per column of B) with cp.async, or brings M-contiguous input scales with one
//                bulk copy (in 256-row tiles warp 0 copies those with the tiles). Both complete the stage's
//                `full` barrier.
//   warpgroups 1..kNumMathWarpgroups  math: 64 wgmma rows each (input rows, or weight rows when the
//                config swaps A and B for small M). Per K block: four wgmma m64nNk32 into a scratch
//                accumulator, wait, release the stage (`empty` barrier), then promote (a 256-row tile
//                does this twice per K block, one 128-row wave after the other, into a promoted set each):
//                acc += scratch * scale_a[token] * scale_b[weight row] in fp32 registers. The per-block
//                scales make promotion per K block unavoidable: the tensor core cannot apply them itself.
//   split-K      (swapAB tiles) when a problem has too few tiles to keep the SMs streaming the weight,
//                the K blocks of each tile are shared among the CTAs of a cluster; rank 0 sums the
//                others' fp32 partial tiles straight from their shared memory, in rank order.
//   epilogue     each math warpgroup converts its accumulators to OutT in a swizzled staging buffer
//                (transposing them when swapped) and stores it with TMA, which clips the M and N tails.
//                The store drains while the next tile's main loop runs.
// The pieces it is built from (shared-memory carve-up, stage ring, scale-row gathers, the in-kernel cast)
// are in kernels/gemm_parts.cuh. The producer's scale paths stay inline here (the file passes 600 lines for
// them): as a helper the bulk path compiled to 37 instructions other than the measured inline form (#67).
#pragma once

#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <type_traits>
#include <utility>

#include "kernels/gemm_config.h"
#include "kernels/gemm_parts.cuh"
#include "kernels/tile_scheduler.cuh"
#include "ptx/ptx.cuh"
#include "ptx/wgmma_fp8.cuh"
#include "quantize/fp8_cast.cuh"

namespace blockgemm::kernels {

template <class Config>
__global__ void __launch_bounds__(Config::kNumThreads, 1)
    fp8_gemm_1d2d_kernel(const __grid_constant__ CUtensorMap tmap_a,
                         const __grid_constant__ CUtensorMap tmap_b,
                         const __grid_constant__ CUtensorMap tmap_out, const KernelParams<Config> params) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int BLOCK_M = Config::BLOCK_M;
  constexpr int BLOCK_N = Config::BLOCK_N;
  constexpr int BLOCK_K = Config::BLOCK_K;
  constexpr int kNumStages = Config::kNumStages;
  constexpr int kNumMathThreads = 128 * Config::kNumMathWarpgroups;
  using OutT = typename Config::OutT;
  constexpr bool kSwapAB = Config::kSwapAB;
  using Wgmma = ptx::Fp8WgmmaM64<Config::MMA_N>;
  constexpr int kNumAccum = Wgmma::kNumAccum;

  extern __shared__ __align__(1024) uint8_t smem_raw[];
  SharedStorage<Config> smem(smem_raw);

  const int warpgroup = threadIdx.x / 128;
  const int warp_in_group = (threadIdx.x / 32) % 4;
  const int lane = threadIdx.x % 32;
  const int num_k_blocks = params.k / BLOCK_K;
  constexpr int kMulticast = Config::kMulticast;
  const int num_k_splits = Config::kSupportsSplitK ? params.num_k_splits : 1;
  constexpr bool kGrouped = Config::kGrouped;
  // Dense: the raster over the whole problem. Grouped: a cursor over the groups, which reads the group
  // table only once the role that owns it has passed griddepcontrol.wait.
  auto scheduler = [&] {
    if constexpr (kGrouped)
      return GroupedTileScheduler < BLOCK_M, BLOCK_N, 8, Config::kMulticastA ? kMulticast : 1,
             Config::kMulticastA ? 1 : kMulticast > (params, num_k_blocks);
    else
      return TileScheduler < BLOCK_M, BLOCK_N, Config::kMulticastA ? 1 : kMulticast, 8,
             Config::kMulticastA
                 ? kMulticast
                 : 1 > (params.m, params.n, num_k_blocks, num_k_splits, params.raster_group_cols);
  }();
  // A cluster holds the kMulticast CTAs of a multicast unit or the num_k_splits CTAs of a split tile.
  const int cluster_size = kMulticast * num_k_splits;
  const int cta_rank = cluster_size > 1 ? static_cast<int>(ptx::cluster_ctarank()) : 0;
  // Which slice of the shared tile this CTA loads and multicasts (split-K clusters share none).
  const int multicast_rank = kMulticast > 1 ? cta_rank : 0;
  const int first_unit = blockIdx.x / cluster_size;
  const int unit_stride = gridDim.x / cluster_size;

  if (threadIdx.x == 0) {
    ptx::prefetch_tensormap(&tmap_a);
    ptx::prefetch_tensormap(&tmap_b);
    ptx::prefetch_tensormap(&tmap_out);
    for (int s = 0; s < kNumStages; ++s) {
      // The TMA thread + the 32 scale-gathering lanes (+ the 32 lanes of the quantizer warp that owns it).
      ptx::mbarrier_init(smem.full(s), 1 + 32 + (Config::kQuantizeInput ? 32 : 0));
      if constexpr (Config::kQuantizeInput) ptx::mbarrier_init(smem.input_landed(s), 1);
      // Every math warp of every CTA whose slice of the shared tile lands here releases the stage.
      ptx::mbarrier_init(smem.empty(s),
                         Config::kNumMathWarpgroups * 4 * Config::kReleasesPerMathWarp * kMulticast);
    }
    // Split-K hand-over: every thread of the sending (receiving) warpgroup arrives once per tile.
    for (int i = 0; i < 2 * Config::kMaxSplitK + 2; ++i) ptx::mbarrier_init(smem.split_ready(0, 0) + i, 128);
    ptx::mbarrier_init(smem.completed(), 1);
    ptx::mbarrier_arrive(smem.completed());
    ptx::fence_mbarrier_init();
  }
  // A rows that no TMA box covers (M < BLOCK_M) stay zero for the whole kernel. Whole 8-row swizzle atoms
  // are zeroed, so the swizzle cannot move anything into them; the async-proxy fence makes the generic
  // stores visible to wgmma. (A shared input tile lands whole: its CTAs each bring a slice of a_box_rows.)
  constexpr int kASlices = Config::kMulticastA ? kMulticast : 1;
  if (params.a_box_rows * kASlices < BLOCK_M) {
    constexpr int kChunksPerStage = BLOCK_M * BLOCK_K / 16;
    const int first_chunk = params.a_box_rows * kASlices * BLOCK_K / 16;
    for (int s = 0; s < kNumStages; ++s)
      for (int c = first_chunk + threadIdx.x; c < kChunksPerStage; c += Config::kNumThreads)
        reinterpret_cast<uint4*>(smem.tile_a(s))[c] = make_uint4(0, 0, 0, 0);
    ptx::fence_proxy_async_shared_cta();
  }
  // Partners multicast into (or arrive on) this CTA's barriers: they must be initialised cluster-wide first.
  if (cluster_size > 1)
    ptx::barrier_cluster_sync();
  else
    __syncthreads();
  // The next kernel in the stream may start its prologue on SMs this grid leaves free (every CTA of this
  // persistent grid is already resident); its griddepcontrol.wait still waits for all of this grid.
  if (threadIdx.x == 0) ptx::griddepcontrol_launch_dependents();

  if (warpgroup == 0) {
    // ------------------------------------------------------------------ producer warpgroup
    ptx::setmaxnreg_dec<Config::kProducerRegisters>();
    // Under programmatic dependent launch the previous kernel (the quantizer of a bf16 input, say) may
    // still be running: nothing global is read before it has finished. The math warpgroups touch global
    // memory only through stages this warpgroup fills, so they are ordered after this wait too.
    ptx::griddepcontrol_wait();
    PipelineState<kNumStages> pipe;
    // In the 256-row tiles, M-contiguous input scales with 16-byte aligned columns and M a multiple of 4
    // reach a stage as one bulk copy issued by the TMA thread with the tiles (its bytes complete `full`);
    // the scale warp, which holds its row addresses there (#58), copies only the weight scales. The scale
    // warp issuing the copy itself spilled there (#67); this way the pair runs 0.8-2.3% fewer cycles
    // (bench/NOTES.md #69). M % 4 keeps every tile's byte count a multiple of 16. Narrower tiles: #67.
    constexpr bool kTmaThreadScaleA = !kGrouped && !kSwapAB && !Config::kQuantizeInput && BLOCK_M >= 256;
    const bool tma_scale_a = kTmaThreadScaleA && params.scale_a_row_stride == 1 &&
                             params.scale_a_k_stride % 4 == 0 && params.m % 4 == 0 &&
                             (reinterpret_cast<uintptr_t>(params.scale_a) & 15) == 0;
    if (warp_in_group == 0) {
      if (lane == 0) {
        for (int unit = first_unit; kGrouped ? scheduler.has_unit(unit) : unit < scheduler.num_units;
             unit += unit_stride) {
          const auto coord = scheduler.coord(unit, cta_rank);
          [[maybe_unused]] uint32_t scale_a_bytes = 0;
          [[maybe_unused]] const float* scale_a_src = params.scale_a;
          if (kTmaThreadScaleA && tma_scale_a) {
            scale_a_bytes = min(BLOCK_M, params.m - coord.m_block * BLOCK_M) * 4;
            scale_a_src += coord.m_block * BLOCK_M + coord.k_block_begin * params.scale_a_k_stride;
          }
          // Grouped: A rows past the group's end belong to the next group (or are TMA zero fill past the
          // view) and weight rows past N to the next group's weight: their outputs are never stored.
          [[maybe_unused]] int a_group_row = 0, b_group_row = 0;
          if constexpr (kGrouped) a_group_row = coord.row_start, b_group_row = coord.group * params.n;
          for (int kb = coord.k_block_begin; kb < coord.k_block_end; ++kb, pipe.advance()) {
            // With multicast this waits for the consumers of every CTA the shared slice is sent to.
            ptx::mbarrier_wait(smem.empty(pipe.stage), pipe.phase ^ 1);
            if constexpr (Config::kQuantizeInput) {
              // The bf16 input goes to the quantizer (`input_landed`); the fp8 tile it writes completes
              // `full` through the quantizer's arrivals, so TMA brings only the weight there.
              ptx::mbarrier_arrive_expect_tx(smem.full(pipe.stage), Config::kTileBBytes);
              ptx::mbarrier_arrive_expect_tx(smem.input_landed(pipe.stage), params.a_box_rows * BLOCK_K * 2);
              ptx::cp_async_bulk_tensor_2d_load(
                  smem.input_bf16(pipe.stage), &tmap_a, smem.input_landed(pipe.stage), kb * BLOCK_K,
                  kGrouped ? a_group_row + coord.m_block * BLOCK_M : coord.m_block * BLOCK_M);
            } else {
              // The full tiles are expected: every CTA's slice of the shared one plus this CTA's other one.
              ptx::mbarrier_arrive_expect_tx(smem.full(pipe.stage), params.a_box_rows * kASlices * BLOCK_K +
                                                                        Config::kTileBBytes + scale_a_bytes);
              if (kTmaThreadScaleA && scale_a_bytes > 0) {
                ptx::cp_async_bulk_load(smem.scale_a(pipe.stage), scale_a_src, scale_a_bytes,
                                        smem.full(pipe.stage));
                scale_a_src += params.scale_a_k_stride;
              }
              if constexpr (Config::kMulticastA) {
                constexpr int kSliceRows = Config::kASliceRows;
                ptx::cp_async_bulk_tensor_2d_load_multicast(
                    smem.tile_a(pipe.stage) + multicast_rank * kSliceRows * BLOCK_K, &tmap_a,
                    smem.full(pipe.stage), kb * BLOCK_K,
                    a_group_row + coord.m_block * BLOCK_M + multicast_rank * kSliceRows,
                    (1u << kMulticast) - 1);
              } else if constexpr (kMulticast > 1 && kGrouped) {
                // A pair along M: a tail unit's two tiles share their row block, which rank 0 brings to both
                // CTAs (its wait on `empty` covers the partner's stage: every consumer releases both).
                const int a_row = a_group_row + coord.m_block * BLOCK_M;
                if (!coord.tail)
                  ptx::cp_async_bulk_tensor_2d_load(smem.tile_a(pipe.stage), &tmap_a, smem.full(pipe.stage),
                                                    kb * BLOCK_K, a_row);
                else if (multicast_rank == 0)
                  ptx::cp_async_bulk_tensor_2d_load_multicast(smem.tile_a(pipe.stage), &tmap_a,
                                                              smem.full(pipe.stage), kb * BLOCK_K, a_row,
                                                              (1u << kMulticast) - 1);
              } else {
                ptx::cp_async_bulk_tensor_2d_load(
                    smem.tile_a(pipe.stage), &tmap_a, smem.full(pipe.stage), kb * BLOCK_K,
                    kGrouped ? a_group_row + coord.m_block * BLOCK_M : coord.m_block * BLOCK_M);
              }
            }
            constexpr int kSliceRows = Config::kBSliceRows;
            constexpr bool kShareB = kMulticast > 1 && !Config::kMulticastA;
            const int b_rank = kShareB ? multicast_rank : 0;
            uint8_t* slice = smem.tile_b(pipe.stage) + b_rank * kSliceRows * BLOCK_K;
            const int slice_row = b_group_row + coord.n_block * BLOCK_N + b_rank * kSliceRows;
            if constexpr (kShareB && kGrouped) {
              if (!coord.tail) {
                ptx::cp_async_bulk_tensor_2d_load_multicast(slice, &tmap_b, smem.full(pipe.stage),
                                                            kb * BLOCK_K, slice_row, (1u << kMulticast) - 1);
              } else {
                // A tail unit: the CTAs hold different weight tiles, so each loads all slices of its own.
                // `full` expects the same bytes, and the partners still release every stage on both CTAs,
                // so the ring's phases stay in step for the next shared unit.
#pragma unroll
                for (int s = 0; s < kMulticast; ++s)
                  ptx::cp_async_bulk_tensor_2d_load(smem.tile_b(pipe.stage) + s * kSliceRows * BLOCK_K,
                                                    &tmap_b, smem.full(pipe.stage), kb * BLOCK_K,
                                                    b_group_row + coord.n_block * BLOCK_N + s * kSliceRows);
              }
            } else if constexpr (kShareB) {
              ptx::cp_async_bulk_tensor_2d_load_multicast(slice, &tmap_b, smem.full(pipe.stage), kb * BLOCK_K,
                                                          slice_row, (1u << kMulticast) - 1);
            } else {
              ptx::cp_async_bulk_tensor_2d_load(slice, &tmap_b, smem.full(pipe.stage), kb * BLOCK_K,
                                                slice_row);
            }
          }
        }
        // Stay until every stage is released: partners' consumers arrive on this CTA's barriers, which
        // must outlive those arrivals.
        if constexpr (kMulticast > 1) {
          for (int s = 0; s < kNumStages; ++s, pipe.advance())
            ptx::mbarrier_wait(smem.empty(pipe.stage), pipe.phase ^ 1);
        }
      }
    } else if (warp_in_group == 1) {
      constexpr bool kPerRow = Config::kWeightScale == WeightScaleKind::kPerRow;
      // 256-row tiles hold each lane's eight row addresses across the tile (ScaleRows): 11.5% fewer cycles
      // at 4096x4096x7168. Narrower tiles compute them per K block as before: holding them measured 2-3%
      // more cycles in 128x160 (bench/NOTES.md #58).
      constexpr bool kHoldScaleRows = BLOCK_M >= 256;
      for (int unit = first_unit; kGrouped ? scheduler.has_unit(unit) : unit < scheduler.num_units;
           unit += unit_stride) {
        const auto coord = scheduler.coord(unit, cta_rank);
        const int m0 = coord.m_block * BLOCK_M;
        const int n0 = coord.n_block * BLOCK_N;
        // Grouped: where this group's scales start (rows of A are counted from the view's first row, or from
        // the group's first row for a (G, M_max, K/128) input scale).
        const float* scale_a_base = params.scale_a;
        const float* scale_b_base = params.scale_b;
        [[maybe_unused]] int scale_a_row0 = 0, a_rows = params.m;
        if constexpr (kGrouped) {
          scale_a_base += coord.group * params.scale_a_group_stride;
          scale_b_base += coord.group * params.scale_b_group_stride;
          scale_a_row0 = coord.row_start - coord.group * params.scale_a_group_rows;
          a_rows = coord.rows;
        }
        // Per row: one scale per column. Per block: the tile's first weight block and, for a two-block tile,
        // the next one (past N only when no column of the tile lies in it).
        auto gather_weight_scales = [&](int stage, int kb) {
          for (int i = lane; i < Config::kNumScaleB; i += 32) {
            const int64_t scale_row = kPerRow ? n0 + i : n0 / 128 + i;
            const bool valid = (kPerRow ? scale_row : scale_row * 128) < params.n;
            const float* src =
                scale_b_base +
                (valid ? scale_row * params.scale_b_row_stride + kb * params.scale_b_k_stride : 0);
            ptx::cp_async_ca_4(&smem.scale_b(stage)[i], src, valid);
          }
        };
        // M-contiguous input scales (the API's copy of row-major ones before long plans, or a caller's
        // column-major layout with a 16-byte aligned base and K stride) arrive as one bulk copy of the tile's
        // whole 16-byte chunks per stage (lane 0; its bytes complete `full`) and the fewer than four rows
        // left before M as gathers: a gather is one 4-byte cp.async and one shared-memory wavefront per row
        // (#60), which cost 128x160 3.7-6.1% of its cycles (bench/NOTES.md #67). Rows past M keep whatever
        // the stage held: their A rows are zero and their outputs are never stored. Not in the 256-row tiles,
        // whose scale warp holds its row addresses (#58): ptxas spilled 16-32 bytes there with both paths.
        // The grouped tiles too (#70): a group's rows may start anywhere in the offsets form, so the copy
        // starts at the 16-byte chunk of the tile's first scale and the stage holds scale_a_lead rows of
        // the group before (the math warps skip them; #72).
        constexpr bool kMayBulkScaleA = !kSwapAB && !Config::kQuantizeInput && BLOCK_M < 256;
        bool bulk_scale_a = false;
        [[maybe_unused]] int lead = 0;
        if constexpr (kMayBulkScaleA) {
          // bulk_input_scales(params), spelled out: through the helper ptxas compiled the dense 128-row
          // producers differently (the math warps' test in the grouped tiles is the helper's).
          bulk_scale_a = params.scale_a_row_stride == 1 && params.scale_a_k_stride % 4 == 0 &&
                         (reinterpret_cast<uintptr_t>(params.scale_a) & 15) == 0;
          if constexpr (kGrouped) lead = scale_a_lead(scale_a_base + scale_a_row0 + m0);
        }
        if (kMayBulkScaleA && bulk_scale_a) {
          const int rows = min(BLOCK_M, a_rows - m0) + lead;
          const int bulk_rows = rows / 4 * 4;
          // Addresses advanced by a stride per K block: the producer warpgroup runs on 56 registers.
          const float* a_src =
              scale_a_base + scale_a_row0 + m0 - lead + coord.k_block_begin * params.scale_a_k_stride;
          // Per block: lanes below kNumScaleB copy one weight scale each (one past N reads nothing).
          const int64_t b_row = kPerRow ? 0 : n0 / 128 + lane;
          const bool b_valid = !kPerRow && lane < Config::kNumScaleB && b_row * 128 < params.n;
          const float* b_src = scale_b_base + (b_valid ? b_row * params.scale_b_row_stride +
                                                             coord.k_block_begin * params.scale_b_k_stride
                                                       : 0);
          for (int kb = coord.k_block_begin; kb < coord.k_block_end; ++kb, pipe.advance()) {
            ptx::mbarrier_wait(smem.empty(pipe.stage), pipe.phase ^ 1);
            if (lane == 0 && bulk_rows > 0) {
              ptx::mbarrier_expect_tx(smem.full(pipe.stage), bulk_rows * 4);
              ptx::cp_async_bulk_load(smem.scale_a(pipe.stage), a_src, bulk_rows * 4, smem.full(pipe.stage));
            }
            if (lane < rows - bulk_rows)
              ptx::cp_async_ca_4(smem.scale_a(pipe.stage) + bulk_rows + lane, a_src + bulk_rows + lane, true);
            a_src += params.scale_a_k_stride;
            if constexpr (kPerRow) {
              gather_weight_scales(pipe.stage, kb);
            } else {
              if (lane < Config::kNumScaleB)
                ptx::cp_async_ca_4(&smem.scale_b(pipe.stage)[lane], b_src, b_valid);
              if (b_valid) b_src += params.scale_b_k_stride;
            }
            ptx::cp_async_mbarrier_arrive_noinc(smem.full(pipe.stage));
          }
          continue;
        }
        if constexpr (kHoldScaleRows) {
          // Row addresses once per tile, so that a K block costs an add and a copy per row (bench/NOTES.md
          // #58): this warp shares its SM sub-partition with a math warp, whose promotion it used to slow by
          // ~180 instructions of 64-bit address arithmetic issued in the same cycles. Rows past M (past the
          // group's end) read nothing and get scale 0: their A rows are TMA zero fill anyway. (A quantized in
          // the kernel brings its own scales.)
          ScaleRows<Config::kQuantizeInput ? 0 : BLOCK_M> a_rows_of_lane;
          a_rows_of_lane.init(lane, scale_a_base, [&](int i, const float*& src) {
            if (m0 + i >= a_rows || tma_scale_a) return false;
            src += (scale_a_row0 + m0 + i) * params.scale_a_row_stride;
            return true;
          });
          // Per row: one scale per column. Per block: the tile's first weight block and, for a two-block
          // tile, the next one (past N only when no column of the tile lies in it).
          ScaleRows<Config::kNumScaleB> b_rows_of_lane;
          b_rows_of_lane.init(lane, scale_b_base, [&](int i, const float*& src) {
            const int64_t scale_row = kPerRow ? n0 + i : n0 / 128 + i;
            if ((kPerRow ? scale_row : scale_row * 128) >= params.n) return false;
            src += scale_row * params.scale_b_row_stride;
            return true;
          });
          for (int kb = coord.k_block_begin; kb < coord.k_block_end; ++kb, pipe.advance()) {
            ptx::mbarrier_wait(smem.empty(pipe.stage), pipe.phase ^ 1);
            if (!tma_scale_a)
              a_rows_of_lane.copy(smem.scale_a(pipe.stage), lane, kb * params.scale_a_k_stride);
            b_rows_of_lane.copy(smem.scale_b(pipe.stage), lane, kb * params.scale_b_k_stride);
            ptx::cp_async_mbarrier_arrive_noinc(smem.full(pipe.stage));
          }
        } else {
          for (int kb = coord.k_block_begin; kb < coord.k_block_end; ++kb, pipe.advance()) {
            ptx::mbarrier_wait(smem.empty(pipe.stage), pipe.phase ^ 1);
            // Rows past M (past the group's end) read nothing and get scale 0, as above.
            for (int i = lane; i < (Config::kQuantizeInput ? 0 : BLOCK_M); i += 32) {
              const bool valid = m0 + i < a_rows;
              const float* src = scale_a_base + (valid ? (scale_a_row0 + m0 + i) * params.scale_a_row_stride +
                                                             kb * params.scale_a_k_stride
                                                       : 0);
              ptx::cp_async_ca_4(&smem.scale_a(pipe.stage)[i], src, valid);
            }
            gather_weight_scales(pipe.stage, kb);
            ptx::cp_async_mbarrier_arrive_noinc(smem.full(pipe.stage));
          }
        }
      }
    }
  } else if (Config::kQuantizeInput && warpgroup == Config::kQuantizerWarpgroup) {
    // ------------------------------------------------------------------ quantizer warpgroup
    // Each warp owns every fourth K block and casts all of its rows (cast_input_stage), so four stages are
    // cast at once.
    if constexpr (Config::kQuantizeInput) {
      ptx::setmaxnreg_dec<Config::kQuantizerRegisters>();
      const int quantizer_warp = (threadIdx.x % 128) / 32;
      PipelineState<kNumStages> pipe;
      int k_block_index = 0;
      // Grouped: the scheduler reads the group table, which an earlier kernel may still be writing.
      if constexpr (kGrouped) ptx::griddepcontrol_wait();
      for (int unit = first_unit; kGrouped ? scheduler.has_unit(unit) : unit < scheduler.num_units;
           unit += unit_stride) {
        const auto coord = scheduler.coord(unit, cta_rank);
        for (int kb = coord.k_block_begin; kb < coord.k_block_end; ++kb, pipe.advance()) {
          if (k_block_index++ % Config::kNumQuantizerWarps != quantizer_warp) continue;
          ptx::mbarrier_wait(smem.input_landed(pipe.stage), pipe.phase);
          cast_input_stage<BLOCK_M>(smem.input_bf16(pipe.stage), smem.tile_a(pipe.stage),
                                    smem.scale_a(pipe.stage), lane);
          // wgmma reads the tile through the async proxy; the stage's `full` completes with this warp's
          // arrivals (and TMA's weight bytes).
          ptx::fence_proxy_async_shared_cta();
          ptx::mbarrier_arrive(smem.full(pipe.stage));
        }
      }
    }
  } else {
    // ------------------------------------------------------------------ math warpgroups
    ptx::setmaxnreg_inc<Config::kMathRegisters>();
    // Broadcast from lane 0 so that ptxas can prove it warp-uniform: the wgmma descriptors built from it
    // then live in uniform registers instead of being copied into them (R2UR) before every wgmma.
    const int math_group = __shfl_sync(0xffffffffu, warpgroup - 1, 0);
    const int math_thread = threadIdx.x - 128;
    const int group_thread = math_thread % 128;
    // wgmma accumulator layout: this thread owns rows r and r + 8 of its warpgroup's 64, and columns
    // 8 j + 2 (lane % 4) + {0, 1} for every j < MMA_N / 8. Rows are input rows (weight rows when
    // swapped), columns weight rows (tokens when swapped).
    const int row_in_group = warp_in_group * 16 + lane / 4;
    const int col_in_octet = 2 * (lane % 4);
    const uint32_t named_barrier = 1 + math_group;
    constexpr int kNumWaves = Config::kNumWaves;
    uint8_t* out_staging = smem.out() + math_group * Config::kEpilogueRows * Config::kEpilogueCols *
                                            static_cast<int>(sizeof(OutT));

    // A stage's shared tile came from every CTA of the cluster: all of them learn that it is free.
    auto release_stage = [](uint32_t empty_barrier) {
      if constexpr (kMulticast > 1) {
#pragma unroll
        for (int rank = 0; rank < kMulticast; ++rank) ptx::mbarrier_arrive_cluster(empty_barrier, rank);
      } else {
        ptx::mbarrier_arrive(empty_barrier);
      }
    };
    // wgmma's A operand is the tile along its 64-row side: the input tile, or the weight tile when
    // swapped; each math warpgroup takes its 64 rows of it.
    constexpr int kMmaATileBytes = kSwapAB ? Config::kTileBBytes : Config::kTileABytes;
    constexpr int kMmaBTileBytes = kSwapAB ? Config::kTileABytes : Config::kTileBBytes;
    // The K loop addresses shared memory through integers derived from this uniform register. Left to
    // itself ptxas recomputed every address of the loop (the cluster CTA id read, offsets, the descriptor
    // bit fields) in every K block, ~20 instructions in front of the wgmmas; a shuffled value it cannot
    // rematerialise (bench/NOTES.md #25).
    using Smem = SharedStorage<Config>;
    const uint32_t smem_base = __shfl_sync(0xffffffffu, ptx::smem_addr(smem.base), 0);
    const uint32_t full_barriers = smem_base + Smem::kBarrierOffset;
    const uint32_t empty_barriers = full_barriers + 8 * kNumStages;
    // smem.completed(), as an offset from a register the loop holds anyway
    [[maybe_unused]] const uint32_t completed_barrier = full_barriers + 8 * Smem::kCompletedSlot;
    const uint32_t row_scales_stage0 = smem_base + (kSwapAB ? Smem::kScaleBOffset : Smem::kScaleAOffset);
    const uint32_t col_scales_stage0 = smem_base + (kSwapAB ? Smem::kScaleAOffset : Smem::kScaleBOffset);
    constexpr int kRowScaleStageBytes = 4 * (kSwapAB ? BLOCK_N : Config::kScaleAStageFloats);
    constexpr int kColScaleStageBytes = 4 * (kSwapAB ? Config::kScaleAStageFloats : BLOCK_N);
    const uint64_t desc_a_stage0 = ptx::make_smem_desc_k_major_sw128(
        smem_base + (kSwapAB ? Smem::kTileBOffset : Smem::kTileAOffset) + math_group * 64 * BLOCK_K);
    const uint64_t desc_b_stage0 =
        ptx::make_smem_desc_k_major_sw128(smem_base + (kSwapAB ? Smem::kTileAOffset : Smem::kTileBOffset));
    // The scale of a wgmma row is the input row's (the weight row's when swapped), of a column the
    // weight's (the token's). A per-block weight scale is one number for the whole tile.
    constexpr bool kUniformRowScale = kSwapAB && Config::kUniformWeightScale;
    // Normal tiles with 128x128 weight blocks take their column scales from one or two registers.
    constexpr bool kFixedColScales =
        !kSwapAB && (Config::kUniformWeightScale || Config::kTwoBlockWeightScale);
    PipelineState<kNumStages> pipe;
    uint32_t split_phase = 0;           // phase of this warpgroup's split-K barriers
    float accum[kNumWaves][kNumAccum];  // promoted, one set per wave
    float scratch[kNumAccum];
#pragma unroll
    for (int i = 0; i < kNumAccum; ++i) scratch[i] = 0.f;

    // Grouped: the scheduler reads the group table, which an earlier kernel may still be writing.
    if constexpr (kGrouped) ptx::griddepcontrol_wait();
    for (int unit = first_unit; kGrouped ? scheduler.has_unit(unit) : unit < scheduler.num_units;
         unit += unit_stride) {
      const auto coord = scheduler.coord(unit, cta_rank);
#pragma unroll
      for (int w = 0; w < kNumWaves; ++w)
#pragma unroll
        for (int i = 0; i < kNumAccum; ++i) accum[w][i] = 0.f;

      // A grouped tile's stage may hold up to three input scales before its first (the producer's bulk
      // copy starts at that scale's 16-byte chunk; #72).
      const uint32_t row_scales_tile = row_scales_stage0 + [&]() -> uint32_t {
        if constexpr (Config::kScaleALeadRoom > 0) {
          if (bulk_input_scales(params))
            return 4 *
                   scale_a_lead(params.scale_a + coord.group * params.scale_a_group_stride + coord.row_start -
                                coord.group * params.scale_a_group_rows + coord.m_block * BLOCK_M);
        }
        return 0;
      }();
      // kFormerOctets: how many 8-column groups of the wgmma view take the first of the tile's two weight
      // scales (all of them for a single scale).
      auto run_k_blocks = [&](auto former_octets) {
        [[maybe_unused]] constexpr int kFormerOctets = decltype(former_octets)::value;
        // Each K block waits for the next one's `full` at its end, after its promotion: there ptxas can issue
        // the barrier test among the promotion's FMAs and branch on it after them, so the test's shared-
        // memory round trip (~60 cycles with the data already there) leaves the path to the next wgmmas
        // (bench/NOTES.md #54, #77). (DeepGEMM's K loop, unrolled 8 times, gets the same from ptxas; a wait
        // at the top of a rolled loop cannot be moved across the back edge.) After the tile's last K block it
        // waits on `completed`: a wait on a stage that no later tile fills would never return. Configs
        // without kWaitNextFullAhead wait at the top of each iteration (measured faster there).
        constexpr bool kWaitAhead = Config::kWaitNextFullAhead;
        if (kWaitAhead && coord.k_block_begin < coord.k_block_end)
          ptx::mbarrier_wait(full_barriers + 8 * pipe.stage, pipe.phase);
        for (int kb = coord.k_block_begin; kb < coord.k_block_end; ++kb, pipe.advance()) {
          if constexpr (!kWaitAhead) ptx::mbarrier_wait(full_barriers + 8 * pipe.stage, pipe.phase);
          const uint32_t row_scales = row_scales_tile + pipe.stage * kRowScaleStageBytes;
          const uint32_t col_scales = col_scales_stage0 + pipe.stage * kColScaleStageBytes;
          // Rows r and r + 8 of this warpgroup's 64 in each wave (wave w starts at row 128 w).
          float row_scale_lo[kNumWaves], row_scale_hi[kNumWaves];
#pragma unroll
          for (int w = 0; w < kNumWaves; ++w) {
            const uint32_t row = 4 * (w * 128 + math_group * 64 + row_in_group);
            row_scale_lo[w] = ptx::ld_shared_f32(kUniformRowScale ? row_scales : row_scales + row);
            row_scale_hi[w] =
                kUniformRowScale ? row_scale_lo[w] : ptx::ld_shared_f32(row_scales + row + 4 * 8);
          }
          const float col_scale_first = kFixedColScales ? ptx::ld_shared_f32(col_scales) : 0.f;
          [[maybe_unused]] const float col_scale_second =
              Config::kTwoBlockWeightScale ? ptx::ld_shared_f32(col_scales + 4) : col_scale_first;

          // Descriptors differ from stage 0's only in the start-address field (address >> 4, no carry out
          // of it below 256 KB): one 64-bit add per operand instead of rebuilding them, which took about
          // 40 instructions per K block in front of the wgmmas.
          const uint64_t desc_a = desc_a_stage0 + ((pipe.stage * kMmaATileBytes) >> 4);
          const uint64_t desc_b = desc_b_stage0 + ((pipe.stage * kMmaBTileBytes) >> 4);
#pragma unroll
          for (int w = 0; w < kNumWaves; ++w) {
            // The waves share the scratch set: wave w + 1's wgmmas start once wave w's results are read.
#pragma unroll
            for (int i = 0; i < kNumAccum; ++i) ptx::fence_register(scratch[i]);
            ptx::wgmma_fence();
            const uint64_t desc_a_wave = desc_a + ((w * 128 * BLOCK_K) >> 4);
#pragma unroll
            for (int k32 = 0; k32 < BLOCK_K / 32; ++k32) {
              // 32 fp8 = 32 bytes along K inside the swizzled 128-byte row.
              Wgmma::mma(scratch, desc_a_wave + k32 * (32 >> 4), desc_b + k32 * (32 >> 4), k32 > 0);
            }
            // Committed right behind the wgmmas: a commit that ptxas cannot prove follows a wgmma on every
            // path gets a dummy HGMMA and an extra warpgroup arrive, which cost ~40% (bench/NOTES.md).
            ptx::wgmma_commit_group();
            ptx::wgmma_wait_group<0>();
#pragma unroll
            for (int i = 0; i < kNumAccum; ++i) ptx::fence_register(scratch[i]);

            float* wave_accum = accum[w];
            if constexpr (kFixedColScales) {
              // After the last wave this thread's reads of the stage are done: release it before the
              // promotion so the producer can refill it meanwhile.
              if (w == kNumWaves - 1) release_stage(empty_barriers + 8 * pipe.stage);
              const float first_lo = row_scale_lo[w] * col_scale_first,
                          first_hi = row_scale_hi[w] * col_scale_first;
              const float second_lo = row_scale_lo[w] * col_scale_second,
                          second_hi = row_scale_hi[w] * col_scale_second;
#pragma unroll
              for (int j = 0; j < Config::MMA_N / 8; ++j) {
                const float scale_lo = j < kFormerOctets ? first_lo : second_lo;
                const float scale_hi = j < kFormerOctets ? first_hi : second_hi;
                wave_accum[4 * j + 0] = fmaf(scratch[4 * j + 0], scale_lo, wave_accum[4 * j + 0]);
                wave_accum[4 * j + 1] = fmaf(scratch[4 * j + 1], scale_lo, wave_accum[4 * j + 1]);
                wave_accum[4 * j + 2] = fmaf(scratch[4 * j + 2], scale_hi, wave_accum[4 * j + 2]);
                wave_accum[4 * j + 3] = fmaf(scratch[4 * j + 3], scale_hi, wave_accum[4 * j + 3]);
              }
            } else {
              // Per-column scales (per-row weight scales, or the tokens' when swapped) are read straight
              // from the stage (holding them would cost MMA_N / 4 registers), so the stage is released only
              // after the last wave's promotion.
              const float lo = row_scale_lo[w], hi = row_scale_hi[w];
#pragma unroll
              for (int j = 0; j < Config::MMA_N / 8; ++j) {
                const float2 col_scale = ptx::ld_shared_v2_f32(col_scales + 4 * (8 * j + col_in_octet));
                wave_accum[4 * j + 0] = fmaf(scratch[4 * j + 0], lo * col_scale.x, wave_accum[4 * j + 0]);
                wave_accum[4 * j + 1] = fmaf(scratch[4 * j + 1], lo * col_scale.y, wave_accum[4 * j + 1]);
                wave_accum[4 * j + 2] = fmaf(scratch[4 * j + 2], hi * col_scale.x, wave_accum[4 * j + 2]);
                wave_accum[4 * j + 3] = fmaf(scratch[4 * j + 3], hi * col_scale.y, wave_accum[4 * j + 3]);
              }
              if (w == kNumWaves - 1) release_stage(empty_barriers + 8 * pipe.stage);
            }
          }
          if constexpr (kWaitAhead) {
            const auto next = pipe.next();
            const bool last = kb + 1 == coord.k_block_end;
            ptx::mbarrier_wait(last ? completed_barrier : full_barriers + 8 * next.stage,
                               last ? 0u : next.phase);
          }
        }
      };
      // A grouped tile whose rows of this warpgroup all lie past its group's end (a group's last row block
      // holding 64 rows or fewer: about half the groups of a masked e = 256 routing) computes nothing that is
      // stored: the warpgroup only passes each stage on, so the other one has the tensor pipe to itself.
      // It still waits for `full` before releasing, which keeps its arrivals in the stage's current phase.
      constexpr bool kSkipRowsPastGroup =
          kGrouped && !kSwapAB && kNumWaves == 1 && Config::kNumMathWarpgroups == 2;
      bool rows_past_group = false;
      if constexpr (kSkipRowsPastGroup)
        rows_past_group = coord.m_block * BLOCK_M + math_group * 64 >= coord.rows;
      if (rows_past_group) {
        for (int kb = coord.k_block_begin; kb < coord.k_block_end; ++kb, pipe.advance()) {
          ptx::mbarrier_wait(full_barriers + 8 * pipe.stage, pipe.phase);
          release_stage(empty_barriers + 8 * pipe.stage);
        }
      } else if constexpr (Config::kTwoBlockWeightScale) {
        // The tile's column offset inside its first weight block decides where the second scale starts.
        const int offset_index = coord.n_block * BLOCK_N % 128 / Config::kScaleOffsetStep;
        with_static_index<Config::kNumScaleOffsets>(offset_index, [&](auto index) {
          constexpr int kOffset = decltype(index)::value * Config::kScaleOffsetStep;
          run_k_blocks(
              std::integral_constant<int, (128 - kOffset < BLOCK_N ? 128 - kOffset : BLOCK_N) / 8>{});
        });
      } else {
        run_k_blocks(std::integral_constant<int, Config::MMA_N / 8>{});
      }

      if (num_k_splits > 1) {
        // ------------------------------------------------------------ split-K hand-over
        // Partial tiles keep the accumulators' register order, four floats per thread per step: every
        // access is a conflict-free 16-byte vector and rank 0's thread t adds exactly its own elements.
        static_assert(!Config::kSupportsSplitK || kNumWaves == 1, "split-K tiles are single-wave");
        float* split_accum = accum[0];
        constexpr int kVectors = kNumAccum / 4;
        float4* partial = reinterpret_cast<float4*>(smem.out()) + math_group * kVectors * 128 + group_thread;
        if (cta_rank > 0) {
          // The buffer still holds the previous tile's partial until rank 0 has read it; waiting also keeps
          // this rank at most one `ready` phase ahead of rank 0.
          ptx::mbarrier_wait_acquire_cluster(smem.split_consumed(math_group), split_phase ^ 1);
          split_phase ^= 1;
#pragma unroll
          for (int v = 0; v < kVectors; ++v)
            partial[v * 128] = make_float4(split_accum[4 * v], split_accum[4 * v + 1], split_accum[4 * v + 2],
                                           split_accum[4 * v + 3]);
          ptx::mbarrier_arrive_release_cluster(smem.split_ready(cta_rank, math_group), 0);
          continue;
        }
        // Summed in rank order: results are bitwise reproducible whichever rank finished first.
        for (int rank = 1; rank < num_k_splits; ++rank) {
          ptx::mbarrier_wait_acquire_cluster(smem.split_ready(rank, math_group), split_phase);
#pragma unroll
          for (int v = 0; v < kVectors; ++v) {
            const float4 p = ptx::ld_shared_cluster_v4(partial + v * 128, rank);
            split_accum[4 * v + 0] += p.x;
            split_accum[4 * v + 1] += p.y;
            split_accum[4 * v + 2] += p.z;
            split_accum[4 * v + 3] += p.w;
          }
          ptx::mbarrier_arrive_release_cluster(smem.split_consumed(math_group), rank);
        }
        split_phase ^= 1;
      }

      // ---------------------------------------------------------------- epilogue
      // This warpgroup's kEpilogueRows x kEpilogueCols block of out in each wave (128 rows apart).
      const int out_row0 = coord.m_block * BLOCK_M + (kSwapAB ? 0 : math_group * 64);
      const int out_col0 = coord.n_block * BLOCK_N + (kSwapAB ? math_group * 64 : 0);
      // The staging buffer may still be read by this warpgroup's previous TMA store.
      if (group_thread == 0) ptx::cp_async_bulk_wait_group_read<0>();
      ptx::bar_sync(named_barrier, 128);

      constexpr int kStripCols = Config::kOutStripCols;
      constexpr int kStripBytes = Config::kOutStripBytes;
      using Pair = PackedPair<OutT>;
      // TMA's swizzle at the strip's width XORs the 16-byte chunk index with address bits 7 and up, so
      // the rows a warp writes at once fall into different bank groups.
      auto staging = [&](int row, int col) {
        const int strip = col / kStripCols;
        const int linear = row * kStripBytes + (col % kStripCols) * static_cast<int>(sizeof(OutT));
        const int swizzled = linear ^ (((linear >> 7) & (kStripBytes / 16 - 1)) << 4);
        return out_staging + strip * Config::kOutStripTileBytes + swizzled;
      };
      // The waves take turns in the staging buffer (it holds one wave): a 256-row tile's would leave fp32
      // outputs no room for stages.
#pragma unroll
      for (int w = 0; w < kNumWaves; ++w) {
        if (w > 0) {
          if (group_thread == 0) ptx::cp_async_bulk_wait_group_read<0>();
          ptx::bar_sync(named_barrier, 128);
        }
#pragma unroll
        for (int j = 0; j < Config::MMA_N / 8; ++j) {
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            const int mma_row = row_in_group + 8 * half;
            const int mma_col = 8 * j + col_in_octet;
            const float x = accum[w][4 * j + 2 * half], y = accum[w][4 * j + 2 * half + 1];
            if constexpr (kSwapAB) {
              // Transposed: the pair's two tokens are two rows of out.
              *reinterpret_cast<OutT*>(staging(mma_col, mma_row)) = Pair::one(x);
              *reinterpret_cast<OutT*>(staging(mma_col + 1, mma_row)) = Pair::one(y);
            } else {
              *reinterpret_cast<typename Pair::Type*>(staging(mma_row, mma_col)) = Pair::pack(x, y);
            }
          }
        }
        ptx::fence_proxy_async_shared_cta();
        ptx::bar_sync(named_barrier, 128);
        const int wave_row0 = out_row0 + w * 128;
        if constexpr (kGrouped) {
          // Rows are counted from the group's first row; only the group's own rows may be written.
          const int valid_rows = coord.rows - wave_row0;
          if (valid_rows >= Config::kEpilogueRows) {
            // A full tile: TMA, which clips the N tail at the tensor bound.
            if (group_thread == 0 && out_col0 < params.n) {
#pragma unroll
              for (int strip = 0; strip < Config::kEpilogueCols / kStripCols; ++strip) {
                if (out_col0 + strip * kStripCols < params.n)
                  ptx::cp_async_bulk_tensor_2d_store(
                      &tmap_out, out_staging + strip * Config::kOutStripTileBytes,
                      out_col0 + strip * kStripCols, coord.row_start + wave_row0);
              }
              ptx::cp_async_bulk_commit_group();
            }
          } else if (valid_rows > 0) {
            // The group ends inside the tile: its valid rows go out as 16-byte stores from the staging buffer
            // (a 16-byte chunk stays contiguous under the swizzle), columns past N skipped. N is a multiple
            // of 16, so a chunk is either all inside or all past it.
            constexpr int kChunkCols = 16 / static_cast<int>(sizeof(OutT));
            constexpr int kChunksPerRow = Config::kEpilogueCols / kChunkCols;
            auto* out_rows =
                static_cast<uint8_t*>(params.out) +
                (static_cast<int64_t>(coord.row_start + wave_row0) * params.out_row_stride + out_col0) *
                    static_cast<int64_t>(sizeof(OutT));
            for (int i = group_thread; i < valid_rows * kChunksPerRow; i += 128) {
              const int row = i / kChunksPerRow, col = i % kChunksPerRow * kChunkCols;
              if (out_col0 + col < params.n)
                *reinterpret_cast<uint4*>(out_rows + (row * params.out_row_stride + col) *
                                                         static_cast<int64_t>(sizeof(OutT))) =
                    *reinterpret_cast<const uint4*>(staging(row, col));
            }
          }
        } else {
          if (group_thread == 0 && wave_row0 < params.m && out_col0 < params.n) {
#pragma unroll
            for (int strip = 0; strip < Config::kEpilogueCols / kStripCols; ++strip) {
              if (out_col0 + strip * kStripCols < params.n)
                ptx::cp_async_bulk_tensor_2d_store(&tmap_out,
                                                   out_staging + strip * Config::kOutStripTileBytes,
                                                   out_col0 + strip * kStripCols, wave_row0);
            }
            ptx::cp_async_bulk_commit_group();
          }
        }
      }
    }
    // Shared memory must outlive the stores that read it, and a split-K rank > 0 must outlive rank 0's
    // reads of its partial tile and arrivals on its barrier.
    if (group_thread == 0) ptx::cp_async_bulk_wait_group<0>();
    if (num_k_splits > 1 && cta_rank > 0)
      ptx::mbarrier_wait_acquire_cluster(smem.split_consumed(math_group), split_phase ^ 1);
  }
  // The waits above already keep every CTA alive while its partners touch its shared memory; this cluster
  // barrier states the same in the form compute-sanitizer's racecheck recognises (without it, it reported
  // every split-K read of a partner's partial tile as a read of a block that "might have already exited").
  if (cluster_size > 1) {
    __syncwarp();  // the .aligned cluster barrier wants converged warps; lane 0 of the producer ran alone
    ptx::barrier_cluster_sync();
  }
#endif
}

}  // namespace blockgemm::kernels
