// Compile-time configuration of the FP8 block-scaled GEMM kernel, shared by the kernel and its launcher.
#pragma once

#include <cstdint>

namespace blockgemm::kernels {

// How the weight (B operand) is scaled along N.
enum class WeightScaleKind {
  kPerBlock,  // (ceil(N/128), K/128): one scale per 128x128 block
  kPerRow,    // (N, K/128): one scale per 1x128 group of each row
};

constexpr int kSharedMemoryBudget = 232448;  // sm_90 opt-in maximum per block (227 KB)

// kMulticast_: CTAs per cluster, stacked along M. They share the weight tile: each loads 1/kMulticast of
// its rows and multicasts them to all, so L2 -> SM traffic per CTA drops by that much of B.
template <int BLOCK_M_, int BLOCK_N_, int kMulticast_, WeightScaleKind kWeightScale_, typename OutT_>
struct GemmConfig {
  using OutT = OutT_;
  static constexpr int BLOCK_M = BLOCK_M_;
  static constexpr int BLOCK_N = BLOCK_N_;
  static constexpr int kMulticast = kMulticast_;
  static_assert(kMulticast == 1 || kMulticast == 2, "clusters of one or two CTAs");
  // Each CTA's slice of B must be whole 8-row swizzle atoms (1024 bytes) to land where wgmma expects it.
  static_assert((BLOCK_N / kMulticast) % 8 == 0, "multicast slice of B must be whole swizzle atoms");
  static constexpr int BLOCK_K = 128;  // one scale group: promotion happens once per K block
  static constexpr WeightScaleKind kWeightScale = kWeightScale_;

  static_assert(BLOCK_M == 64 || BLOCK_M == 128, "one or two math warpgroups of 64 rows");
  static_assert(BLOCK_N % 16 == 0 && BLOCK_N >= 16 && BLOCK_N <= 256, "wgmma N range");
  // The TMA-store epilogue writes column strips of up to 128 bytes, swizzled at the strip's width.
  static constexpr int kOutRowBytes = BLOCK_N * static_cast<int>(sizeof(OutT));
  // The widest swizzle width that tiles the row exactly (wider strips: fewer TMA stores, fewer conflicts).
  static constexpr int kOutStripBytes = kOutRowBytes % 128 == 0 ? 128 : kOutRowBytes % 64 == 0 ? 64 : 32;
  static_assert(kOutStripBytes == 32 || kOutStripBytes == 64 || kOutStripBytes == 128,
                "output strips are 32, 64 or 128 bytes wide (a TMA swizzle width)");
  static_assert(kOutRowBytes % kOutStripBytes == 0, "BLOCK_N must fill whole output strips");
  static constexpr int kOutStripCols = kOutStripBytes / static_cast<int>(sizeof(OutT));

  static constexpr int kNumMathWarpgroups = BLOCK_M / 64;
  static constexpr int kNumThreads = 128 * (1 + kNumMathWarpgroups);  // producer warpgroup first
  // A tile spanning no 128-column boundary of the weight uses one scale for all its columns.
  static constexpr bool kUniformWeightScale =
      kWeightScale == WeightScaleKind::kPerBlock && 128 % BLOCK_N == 0;

  // Shared memory: [out staging][A x stages][B x stages][A scales x stages][B scales x stages][barriers].
  // Every A/B tile is 1024-byte aligned (128-byte swizzle atoms), which the sizes below preserve.
  static constexpr int kOutStripTileBytes = 64 * kOutStripBytes;  // one warpgroup's 64 rows of a strip
  static constexpr int kOutBytes = BLOCK_M * BLOCK_N * static_cast<int>(sizeof(OutT));
  static constexpr int kTileABytes = BLOCK_M * BLOCK_K;  // fp8: one byte per element
  static constexpr int kTileBBytes = BLOCK_N * BLOCK_K;
  static constexpr int kScaleBytes = (BLOCK_M + BLOCK_N) * 4;
  static constexpr int kStageBytes = kTileABytes + kTileBBytes + kScaleBytes;
  static constexpr int kAlignSlack = 1024;  // dynamic shared memory is aligned up to 1024 in the kernel
#ifdef BLOCKGEMM_MAX_STAGES  // tuning experiments only (bench/NOTES.md): caps the pipeline depth
  static constexpr int kMaxStages = BLOCKGEMM_MAX_STAGES;
#else
  static constexpr int kMaxStages = 8;
#endif
  static constexpr int kStagesThatFit =
      (kSharedMemoryBudget - kAlignSlack - kOutBytes - 16 * kMaxStages) / kStageBytes;
  static constexpr int kNumStages = kStagesThatFit < kMaxStages ? kStagesThatFit : kMaxStages;
  static_assert(kNumStages >= 2, "tile too large for a double-buffered pipeline");
  static_assert(kTileBBytes % 1024 == 0 && kOutBytes % 1024 == 0, "tiles keep 1024-byte alignment");

  // Arrivals each math warp makes on a stage's `empty` barrier: every thread releases the stage for its
  // own reads. (A __syncwarp then one arrival per warp is also correct under the PTX memory model, but
  // compute-sanitizer's racecheck cannot follow it and reported hazards; measured cost: bench/NOTES.md.)
  static constexpr int kReleasesPerMathWarp = 32;

  static constexpr int kSmemBytes = kAlignSlack + kOutBytes + kNumStages * kStageBytes + 16 * kNumStages;

  // Register split (setmaxnreg): the producer needs few, the math warpgroups hold two accumulator sets.
  static constexpr uint32_t kProducerRegisters = 40;
  static constexpr uint32_t kMathRegisters = kNumMathWarpgroups == 2 ? 232 : 240;
};

// Run-time arguments of one GEMM launch (the tensor maps travel separately as __grid_constant__).
struct GemmParams {
  int m, n, k;
  // Rows of A each TMA load brings (a multiple of 8, <= BLOCK_M): min(BLOCK_M, M rounded up to 8). Zero
  // filling the rows of a box past M is slow in the TMA unit, so when M < BLOCK_M those rows are not
  // loaded at all; the kernel zeroes them once in every stage instead.
  int a_box_rows;
  const float* scale_a;  // (M, K/128), element (row, kb) at row * scale_a_row_stride + kb * scale_a_k_stride
  int64_t scale_a_row_stride, scale_a_k_stride;
  const float* scale_b;  // per block: (ceil(N/128), K/128); per row: (N, K/128)
  int64_t scale_b_row_stride, scale_b_k_stride;
};

}  // namespace blockgemm::kernels
