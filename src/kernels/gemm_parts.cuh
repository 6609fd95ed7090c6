// Building blocks of the GEMM kernel (kernels/fp8_gemm_1d2d.cuh): the output packing per type, the CTA's
// shared-memory carve-up, the in-kernel bf16 cast of one stage, the scale-row gather of the scale warp and
// the stage ring's position. Device code only; each piece is used by every config of the one kernel template.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/gemm_config.h"
#include "ptx/ptx.cuh"
#include "quantize/fp8_cast.cuh"

namespace blockgemm::kernels {

template <typename T>
struct PackedPair;
template <>
struct PackedPair<__nv_bfloat16> {
  using Type = __nv_bfloat162;
  __device__ static Type pack(float x, float y) { return __floats2bfloat162_rn(x, y); }
  __device__ static __nv_bfloat16 one(float x) { return __float2bfloat16_rn(x); }
};
template <>
struct PackedPair<__half> {
  using Type = __half2;
  __device__ static Type pack(float x, float y) { return __floats2half2_rn(x, y); }
  __device__ static __half one(float x) { return __float2half_rn(x); }
};
template <>
struct PackedPair<float> {
  using Type = float2;
  __device__ static Type pack(float x, float y) { return make_float2(x, y); }
  __device__ static float one(float x) { return x; }
};

// Shared-memory carve-up of one CTA; offsets follow GemmConfig's layout comment. Per-stage addresses are
// computed, not stored in arrays: a run-time index into a pointer array would put it in local memory.
//
// The base is the dynamic shared-memory symbol itself, declared 1024-byte aligned (128-byte swizzle atoms
// repeat every 1024 bytes: TMA and wgmma agree only on 1024-aligned tiles). With no static shared memory
// the dynamic window starts the CTA's shared memory, which is so aligned; every GPU test would fail if it
// were not. Realigning at run time instead made every address a run-time value, and ptxas recomputed it
// (S2UR of the cluster CTA id, masks, selects) in every K block (bench/NOTES.md #25).
template <class Config>
struct SharedStorage {
  uint8_t* base;

  __device__ explicit SharedStorage(uint8_t* raw) : base(raw) {}
  static constexpr int kTileAOffset = Config::kOutBytes;
  static constexpr int kTileBOffset = kTileAOffset + Config::kNumStages * Config::kTileABytes;
  static constexpr int kInputBf16Offset = kTileBOffset + Config::kNumStages * Config::kTileBBytes;
  static constexpr int kScaleAOffset = kInputBf16Offset + Config::kNumStages * Config::kInputBf16Bytes;
  static constexpr int kScaleBOffset = kScaleAOffset + Config::kNumStages * Config::kScaleAStageFloats * 4;
  static constexpr int kBarrierOffset = kScaleBOffset + Config::kNumStages * Config::BLOCK_N * 4;

  __device__ uint8_t* out() const { return base; }
  __device__ uint8_t* tile_a(int stage) const { return base + kTileAOffset + stage * Config::kTileABytes; }
  __device__ uint8_t* tile_b(int stage) const { return base + kTileBOffset + stage * Config::kTileBBytes; }
  // kQuantizeInput: the stage's bf16 input tile, row r at r * 256 bytes.
  __device__ uint8_t* input_bf16(int stage) const {
    return base + kInputBf16Offset + stage * Config::kInputBf16Bytes;
  }
  __device__ float* scale_a(int stage) const {
    return reinterpret_cast<float*>(base + kScaleAOffset) + stage * Config::kScaleAStageFloats;
  }
  __device__ float* scale_b(int stage) const {
    return reinterpret_cast<float*>(base + kScaleBOffset) + stage * Config::BLOCK_N;
  }
  // full: producer (and with kQuantizeInput the quantizer warps) -> math, the stage's tiles and scales are
  // in place.
  __device__ uint64_t* full(int stage) const {
    return reinterpret_cast<uint64_t*>(base + kBarrierOffset) + stage;
  }
  // empty: math -> producer, the stage may be overwritten.
  __device__ uint64_t* empty(int stage) const { return full(Config::kNumStages + stage); }
  // Split-K, on rank 0: rank `rank`'s partial tile of math warpgroup `group` is in its shared memory.
  __device__ uint64_t* split_ready(int rank, int group) const {
    return full(2 * Config::kNumStages + rank * 2 + group);
  }
  // Split-K, on ranks > 0: rank 0 has read this CTA's partial tile, whose buffer may be reused.
  __device__ uint64_t* split_consumed(int group) const {
    return full(2 * Config::kNumStages + 2 * Config::kMaxSplitK + group);
  }
  // Its phase 0 completes at launch and phase 1 never does: a wait on parity 0 passes at once. The math
  // warps' look-ahead wait on the next stage's `full` (configs with kWaitNextFullAhead) takes it after a
  // tile's last K block.
  static constexpr int kCompletedSlot = 2 * Config::kNumStages + 2 * Config::kMaxSplitK + 2;
  __device__ uint64_t* completed() const { return full(kCompletedSlot); }
  // kQuantizeInput: TMA -> quantizer warps, the stage's bf16 input tile has landed.
  __device__ uint64_t* input_landed(int stage) const { return full(kCompletedSlot + 1 + stage); }
};

// One warp casts a stage of kRows bf16 token rows (256 bytes each, as TMA left them) into the fp8 tile wgmma
// reads and the per-token scales, as per_token_cast_to_fp8 would. Lane l takes values [4l, 4l + 4) of every
// row, so one redux.sync gives a row's amax; lane r then turns row r's amax into its scale and reciprocal
// (about twenty instructions, once per row instead of once per row and lane), and every lane fetches them
// with two shuffles. The rows are independent straight-line work the compiler interleaves: one warp per SM
// sub-partition has nothing else to hide its latency behind, and its issue slots are the budget
// (bench/NOTES.md #34).
template <int kRows>
__device__ __forceinline__ void cast_input_stage(const uint8_t* input_bf16, uint8_t* tile, float* scales,
                                                 int lane) {
  static_assert(kRows <= kMaxQuantizeInputRows && kMaxQuantizeInputRows <= 32,
                "lane r computes the scale of row r");
  uint2 values[kRows];
  uint32_t lane_amax = 0;  // amax (bf16 magnitude pattern) of the row of this lane's index
#pragma unroll
  for (int row = 0; row < kRows; ++row) {
    values[row] = *reinterpret_cast<const uint2*>(input_bf16 + row * 256 + lane * 8);
    const uint32_t amax = __reduce_max_sync(0xffffffffu, quantize::abs_max_bits(values[row]));
    if (lane == row) lane_amax = amax;
  }
  const float lane_scale = quantize::scale_from_amax(quantize::bf16_bits_to_float(lane_amax));
  const quantize::Divisor lane_divisor = quantize::make_divisor(lane_scale);
  if (lane < kRows) scales[lane] = lane_scale;
#pragma unroll
  for (int row = 0; row < kRows; ++row) {
    const quantize::Divisor divisor{__shfl_sync(0xffffffffu, lane_divisor.scale, row),
                                    __shfl_sync(0xffffffffu, lane_divisor.reciprocal, row)};
    // The 128-byte swizzle TMA would have applied: 16-byte chunk c of row r sits at c ^ (r % 8).
    const int byte = row * 128 + (((lane / 4) ^ (row % 8)) * 16) + (lane % 4) * 4;
    *reinterpret_cast<uint32_t*>(tile + byte) = quantize::quantize4(values[row].x, values[row].y, divisor);
  }
}

// Calls f(std::integral_constant<int, I>{}) for the I in [0, kCount) that equals `index`: a run-time value
// becomes a compile-time one, at the cost of one copy of f per possible value.
template <class F, int... I>
__device__ __forceinline__ void with_static_index(int index, F&& f, std::integer_sequence<int, I...>) {
  ((index == I ? (f(std::integral_constant<int, I>{}), 0) : 0), ...);
}
template <int kCount, class F>
__device__ __forceinline__ void with_static_index(int index, F&& f) {
  with_static_index(index, f, std::make_integer_sequence<int, kCount>{});
}

// Input scales that a tile below 256 rows takes as one bulk copy per stage: M-contiguous, with a 16-byte
// aligned base and K stride (a bulk copy moves whole 16-byte chunks between 16-byte aligned addresses).
template <class Params>
__device__ __forceinline__ bool bulk_input_scales(const Params& params) {
  return params.scale_a_row_stride == 1 && params.scale_a_k_stride % 4 == 0 &&
         (reinterpret_cast<uintptr_t>(params.scale_a) & 15) == 0;
}
// Rows between the 16-byte chunk that holds a tile's first input scale and that scale (0..3): the stage of
// a grouped tile holds them first, and its math warps read its rows from there on.
__device__ __forceinline__ int scale_a_lead(const float* first_scale) {
  return static_cast<int>((reinterpret_cast<uintptr_t>(first_scale) >> 2) & 3);
}

// One lane's rows of a stage's scale column (rows lane, lane + 32, ... of kRows), each held as the address
// of its scale in K block 0, so that a K block's copies cost an add each. A row for which `locate` returns
// false (past M or N) copies nothing (cp.async writes its 4 bytes as zero) from an address that stays in
// the tensor: `base` plus the K block's offset.
template <int kRows>
struct ScaleRows {
  static constexpr int kPerLane = (kRows + 31) / 32;
  const float* src[kPerLane > 0 ? kPerLane : 1];
  uint32_t valid = 0;

  template <class Locate>
  __device__ __forceinline__ void init(int lane, const float* base, Locate&& locate) {
#pragma unroll
    for (int j = 0; j < kPerLane; ++j) {
      const int i = lane + 32 * j;
      src[j] = base;
      if ((kRows % 32 == 0 || i < kRows) && locate(i, src[j])) valid |= 1u << j;
    }
  }
  __device__ __forceinline__ void copy(float* stage_column, int lane, int64_t k_offset) const {
#pragma unroll
    for (int j = 0; j < kPerLane; ++j)
      if (kRows % 32 == 0 || lane + 32 * j < kRows)
        ptx::cp_async_ca_4(stage_column + lane + 32 * j, src[j] + k_offset, (valid >> j) & 1u);
  }
};

// Position in the stage ring, carried across tiles so producer and consumers stay in lock step.
template <int kNumStages>
struct PipelineState {
  int stage = 0;
  uint32_t phase = 0;
  __device__ void advance() {
    if (++stage == kNumStages) {
      stage = 0;
      phase ^= 1;
    }
  }
  __device__ PipelineState next() const {
    PipelineState n = *this;
    n.advance();
    return n;
  }
};

}  // namespace blockgemm::kernels
