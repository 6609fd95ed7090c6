// Compile-time configuration of the FP8 block-scaled GEMM kernel, shared by the kernel and its launcher.
#pragma once

#include <cstdint>
#include <type_traits>

namespace blockgemm::kernels {

// How the weight (B operand) is scaled along N.
enum class WeightScaleKind {
  kPerBlock,  // (ceil(N/128), K/128): one scale per 128x128 block
  kPerRow,    // (N, K/128): one scale per 1x128 group of each row
};

constexpr int kSharedMemoryBudget = 232448;  // sm_90 opt-in maximum per block (227 KB)

// A tile is BLOCK_M rows of the input (tokens) by BLOCK_N rows of the weight, whatever the kernel's
// orientation.
//
// kMulticast_: CTAs per cluster, stacked along M. They share the weight tile: each loads 1/kMulticast of
// its rows and multicasts them to all, so L2 -> SM traffic per CTA drops by that much of B.
// kMulticastA_: the cluster's CTAs sit side by side along N instead and share the input tile (A) the same
// way. A 256x128 tile then pulls 16 + 16 KB per K block from L2 instead of 32 + 16: at the ~65-70 B/ns
// per SM that L2 delivers, the bytes per FLOP set the K block's pace (issue 23). Each CTA still gathers all
// BLOCK_M activation scales itself (1 KB per stage, through the scale warp's cp.async).
//
// kSwapAB_: the weight tile is wgmma's A operand (its 64-row M side, one math warpgroup per 64 weight
// rows) and the tokens are wgmma's narrow N side (8..64). For a handful of tokens a normal tile would
// leave most of the 64-row side empty; swapped, every row of the instruction carries weight. The
// accumulators then hold out^T, which the epilogue transposes on its way through shared memory.
//
// kQuantizeInput_ (swapAB tiles of up to kMaxQuantizeInputRows tokens): the input arrives as bf16. TMA brings
// each stage's BLOCK_M x 128 bf16 into a staging buffer, and a quantizer warpgroup casts it into the fp8 tile
// and its per-token scales in shared memory, with the arithmetic of per_token_cast_to_fp8 (bitwise the same
// operands as the quantizer then the fp8 kernel). At small M this replaces a quantizer launch, its HBM round
// trip and its latency (bench/NOTES.md #34).
//
// One quantizer warp casts a whole stage with a lane per 4 values of every row (the kernel's
// cast_input_stage), so a tile holds at most one row per lane.
constexpr int kMaxQuantizeInputRows = 32;

// How a grouped kernel reads its device-resident group table (GemmParams::group_table); see
// GroupedTileScheduler. Every form is clamped as it is read, so any values are memory-safe.
enum class GroupTableKind : int {
  kOffsets = 0,  // int32 (G + 1,): group g owns rows [offsets[g], offsets[g + 1]) of the 2-D view
  kMasked = 1,   // int32 (G,): group g owns rows [g M_max, g M_max + masked_m[g])
  kRanges =
      2,  // int32 (G, 2): (M_total - first row, last row + 1), 0 for an empty group (from a group index)
};

// kGrouped_: the grouped GEMM (mixture of experts). The tile scheduler walks (group, row block, column
// block) units with a per-group row range read from a device-resident table, the weight is (G N, K) with
// per-group scales, and the epilogue never writes a row outside its group. Dense configs leave it false and
// compile exactly as before.
template <int BLOCK_M_, int BLOCK_N_, int kMulticast_, bool kSwapAB_, WeightScaleKind kWeightScale_,
          typename OutT_, bool kQuantizeInput_ = false, bool kGrouped_ = false, bool kMulticastA_ = false>
struct GemmConfig {
  using OutT = OutT_;
  static constexpr bool kQuantizeInput = kQuantizeInput_;
  static constexpr bool kGrouped = kGrouped_;
  static constexpr bool kMulticastA = kMulticastA_ && kMulticast_ > 1;
  static_assert(!kQuantizeInput || (kSwapAB_ && BLOCK_M_ <= kMaxQuantizeInputRows),
                "in-kernel input quantization is for the swapAB tiles of up to kMaxQuantizeInputRows tokens");
  static constexpr int BLOCK_M = BLOCK_M_;
  static constexpr int BLOCK_N = BLOCK_N_;
  static constexpr int kMulticast = kMulticast_;
  static constexpr bool kSwapAB = kSwapAB_;
  static_assert(kMulticast == 1 || kMulticast == 2, "clusters of one or two CTAs");
  static_assert(!kSwapAB || kMulticast == 1, "swapAB tiles are for small M: no clusters");
  static_assert(!kMulticastA || (!kSwapAB && !kQuantizeInput), "the input tile is shared as fp8 TMA boxes");
  // Rows of the shared tile each CTA loads and multicasts; the other operand is loaded whole.
  static constexpr int kASliceRows = kMulticastA ? BLOCK_M_ / kMulticast : BLOCK_M_;
  static constexpr int kBSliceRows = kMulticastA ? BLOCK_N_ : BLOCK_N_ / kMulticast;
  // Each slice must be whole 8-row swizzle atoms (1024 bytes) to land where wgmma expects it.
  static_assert(kASliceRows % 8 == 0 && kBSliceRows % 8 == 0, "multicast slices must be whole swizzle atoms");
  static constexpr int BLOCK_K = 128;  // one scale group: promotion happens once per K block
  static_assert(!kQuantizeInput || BLOCK_K == 128,
                "the quantizer casts one 128-wide group (a 256-byte bf16 row) per token and stage");
  static constexpr WeightScaleKind kWeightScale = kWeightScale_;

  // The wgmma view: MMA_M rows (64 per math warpgroup) by MMA_N columns.
  static constexpr int MMA_M = kSwapAB ? BLOCK_N : BLOCK_M;
  static constexpr int MMA_N = kSwapAB ? BLOCK_M : BLOCK_N;
  static_assert(MMA_M == 64 || MMA_M == 128 || (MMA_M == 256 && !kSwapAB_),
                "one or two math warpgroups of 64 rows, or (normal tiles) two waves of them");
  static_assert(MMA_N % 8 == 0 && MMA_N >= 8 && MMA_N <= 256, "wgmma N range");
  // The input tile is whole 8-row swizzle atoms; a normal tile's weight columns fill whole output strips.
  static_assert(BLOCK_M % 8 == 0 && (kSwapAB || BLOCK_N % 16 == 0), "tile sides");

  // Each math warpgroup stores a 64-row slice of the wgmma view per wave: 64 output rows by BLOCK_N
  // columns, or when swapped BLOCK_M output rows (tokens) by 64 columns (weight rows).
  static constexpr int kEpilogueRows = kSwapAB ? BLOCK_M : 64;
  static constexpr int kEpilogueCols = kSwapAB ? 64 : BLOCK_N;
  // The TMA-store epilogue writes column strips of up to 128 bytes, swizzled at the strip's width.
  static constexpr int kOutRowBytes = kEpilogueCols * static_cast<int>(sizeof(OutT));
  // The widest swizzle width that tiles the row exactly (wider strips: fewer TMA stores, fewer conflicts).
  static constexpr int kOutStripBytes = kOutRowBytes % 128 == 0 ? 128 : kOutRowBytes % 64 == 0 ? 64 : 32;
  static_assert(kOutStripBytes == 32 || kOutStripBytes == 64 || kOutStripBytes == 128,
                "output strips are 32, 64 or 128 bytes wide (a TMA swizzle width)");
  static_assert(kOutRowBytes % kOutStripBytes == 0, "BLOCK_N must fill whole output strips");
  static constexpr int kOutStripCols = kOutStripBytes / static_cast<int>(sizeof(OutT));

  static constexpr int kNumMathWarpgroups = MMA_M >= 128 ? 2 : 1;
  // A 256-row tile is two waves of 128 rows: math warpgroup g computes rows 128 w + 64 g .. + 64 of wave w
  // with one scratch accumulator set for both waves and a promoted set per wave. Each stage then feeds
  // twice the FLOPs per barrier round trip and per byte of the weight tile (bench/NOTES.md #38).
  static constexpr int kNumWaves = MMA_M / (64 * kNumMathWarpgroups);
  static_assert(kNumWaves == 1 || MMA_N <= 128, "a wave's promoted set + the scratch set fit 224 registers");
  // Whether each K block waits for the next one's `full` at its end, where ptxas issues the test among the
  // promotion's FMAs (bench/NOTES.md #77), or at the top of its own iteration. Measured at a locked clock
  // (H100, twenty-fifth session, cycles with / without): the 256x128 pair -2.0%, 128x128 -3.4%, 64x64 -2.9%,
  // but 128x160 +1.7% (4096x7168x16384) and 128x64 +1.7% (512x2112x7168), which keep the wait at the top.
  // (A guess, not yet tested: there the stage is often not full at the early test, and a try_wait may suspend
  // the warp until the phase completes, so the promotion waits behind it instead of overlapping the wait.)
  // The per-row-scale and grouped 128x160 / 128x64 kernels follow the measured per-block dense ones.
  static constexpr bool kWaitNextFullAhead =
      !(!kSwapAB && BLOCK_M == 128 && (BLOCK_N == 160 || BLOCK_N == 64));
  // kQuantizeInput: a warpgroup that quantizes the bf16 input, after the math warpgroups; each warp casts
  // every fourth K block (one warp per SM sub-partition).
  static constexpr int kQuantizerWarpgroup = 1 + kNumMathWarpgroups;
  static constexpr int kNumQuantizerWarps = 4;
  static constexpr int kNumQuantizerThreads = kQuantizeInput ? 32 * kNumQuantizerWarps : 0;
  static constexpr int kNumThreads =
      128 * (1 + kNumMathWarpgroups) + kNumQuantizerThreads;  // producer warpgroup first
  // A tile spanning no 128-column boundary of the weight uses one scale for all its columns.
  static constexpr bool kUniformWeightScale =
      kWeightScale == WeightScaleKind::kPerBlock && 128 % BLOCK_N == 0;
  // A wider (or unaligned) normal tile with 128x128 weight blocks spans two of them: its first
  // columns use one block's scale, the rest the next one's. Where the switch falls depends on the tile's
  // column offset inside its block, a multiple of gcd(BLOCK_N, 128); the kernel instantiates its
  // promotion once per offset, so each column's scale is a compile-time choice between two registers.
  // (Reading one scale per column from shared memory instead cost 0.3 us per K block on 128x192: the
  // promotion then outlasted the other warpgroup's wgmmas, bench/NOTES.md #19.)
  static constexpr bool kTwoBlockWeightScale =
      kWeightScale == WeightScaleKind::kPerBlock && !kUniformWeightScale && !kSwapAB;
  static constexpr int kScaleOffsetStep = BLOCK_N % 128 == 0  ? 128
                                          : BLOCK_N % 64 == 0 ? 64
                                          : BLOCK_N % 32 == 0 ? 32
                                                              : 16;  // gcd(BLOCK_N, 128)
  static constexpr int kNumScaleOffsets = 128 / kScaleOffsetStep;
  static_assert(!kTwoBlockWeightScale || 128 - kScaleOffsetStep + BLOCK_N <= 256,
                "a tile spans at most two 128-column weight blocks at any offset");
  // Weight scales gathered per stage: one per tile, two per tile, or one per column (per-row scales).
  static constexpr int kNumScaleB = kUniformWeightScale ? 1 : kTwoBlockWeightScale ? 2 : BLOCK_N;

  // Shared memory: [out staging][A x stages][B x stages][bf16 input x stages, kQuantizeInput only]
  // [A scales x stages][B scales x stages][barriers: full, empty, split-K's, completed, input_landed].
  // Every A/B tile is 1024-byte aligned (128-byte swizzle atoms), which the sizes below preserve.
  static constexpr int kOutStripTileBytes = kEpilogueRows * kOutStripBytes;  // one warpgroup's strip
  // Split-K (swapAB tiles): the CTAs of a cluster share a tile's K blocks and ranks > 0 hand their fp32
  // partial tile to rank 0 through the staging buffer, which they never use for output; so it holds fp32.
  static constexpr bool kSupportsSplitK = kSwapAB;
  static constexpr int kMaxSplitK = 8;  // portable cluster size
  // A two-wave tile stages one wave (128 rows) at a time.
  static constexpr int kOutBytes =
      BLOCK_M / kNumWaves * BLOCK_N * static_cast<int>(kSupportsSplitK ? sizeof(float) : sizeof(OutT));
  static constexpr int kTileABytes = BLOCK_M * BLOCK_K;  // fp8: one byte per element
  static constexpr int kTileBBytes = BLOCK_N * BLOCK_K;
  // A grouped tile's first input scale may sit anywhere in a 16-byte chunk (a group's rows start at any row
  // in the offsets form), and a bulk copy moves whole aligned chunks to an aligned address: the stage then
  // holds up to three rows before the tile's first, so the grouped tiles that take scales by bulk copy get
  // four floats more per stage (bench/NOTES.md #72).
  static constexpr int kScaleALeadRoom = kGrouped && !kSwapAB && !kQuantizeInput && BLOCK_M < 256 ? 4 : 0;
  static constexpr int kScaleAStageFloats = BLOCK_M + kScaleALeadRoom;
  static constexpr int kScaleBytes = (kScaleAStageFloats + BLOCK_N) * 4;
  // The bf16 input tile before quantization (kQuantizeInput): rows of 256 bytes, unswizzled.
  static constexpr int kInputBf16Bytes = kQuantizeInput ? BLOCK_M * BLOCK_K * 2 : 0;
  static constexpr int kStageBytes = kTileABytes + kTileBBytes + kScaleBytes + kInputBf16Bytes;
  // Barriers per stage: full and empty, and with kQuantizeInput `input_landed` (the bf16 tile has landed).
  static constexpr int kBarrierBytesPerStage = kQuantizeInput ? 24 : 16;
  // After the stages' full and empty barriers, split-K's: `ready` per (rank, math warpgroup), `consumed` per
  // warpgroup; then `completed` (not split-K's: the one barrier every config has beyond its stages); then
  // input_landed per stage.
  static constexpr int kSplitKBarrierBytes = 8 * (kMaxSplitK * 2 + 2 + 1);
#ifdef BLOCKGEMM_MAX_STAGES  // tuning experiments only (bench/NOTES.md): caps the pipeline depth
  static constexpr int kMaxStages = BLOCKGEMM_MAX_STAGES;
#else
  // Deeper rings measured no faster, 16 stages of a swapAB tile 2-9% slower (bench/NOTES.md).
  static constexpr int kMaxStages = 8;
#endif
  static constexpr int kStagesThatFit =
      (kSharedMemoryBudget - kOutBytes - kBarrierBytesPerStage * kMaxStages - kSplitKBarrierBytes) /
      kStageBytes;
  static constexpr int kNumStages = kStagesThatFit < kMaxStages ? kStagesThatFit : kMaxStages;
  static_assert(kNumStages >= 2, "tile too large for a double-buffered pipeline");
  static_assert(kTileABytes % 1024 == 0 && kTileBBytes % 1024 == 0 && kOutBytes % 1024 == 0 &&
                    kInputBf16Bytes % 1024 == 0,
                "tiles keep 1024-byte alignment");

  // Arrivals each math warp makes on a stage's `empty` barrier: every thread releases the stage for its
  // own reads. (A __syncwarp then one arrival per warp is also correct under the PTX memory model, but
  // compute-sanitizer's racecheck cannot follow it and reported hazards; measured cost: bench/NOTES.md.)
  static constexpr int kReleasesPerMathWarp = 32;

  static constexpr int kSmemBytes =
      kOutBytes + kNumStages * (kStageBytes + kBarrierBytesPerStage) + kSplitKBarrierBytes;
  static_assert(kSmemBytes <= kSharedMemoryBudget, "the carve-up must fit the opt-in shared memory");

  // Register split (setmaxnreg): the producer needs few, the math warpgroups hold two accumulator sets.
  // ptxas compiles each branch to its setmaxnreg budget. With two math warpgroups the budgets must fit the
  // launch allocation of 168 x 384 registers: 56 x 128 + 224 x 256 = 64512. Below 56 the producer of the
  // wide (144..192) tiles spilled, its scale-gather loops unrolled; 224 still holds two 96-float sets.
  // A grouped producer also keeps its group cursor: at 56 the per-row 128x128 one spilled 20 bytes (its
  // scale-gather loop), so grouped configs with two math warpgroups move 8 registers to it (64 + 2 x 216;
  // no spills in the grouped 128x128 or 256x128 kernels at 216).
  static constexpr uint32_t kProducerRegisters = kGrouped && kNumMathWarpgroups == 2 ? 64 : 56;
  static constexpr uint32_t kMathRegisters = kNumMathWarpgroups == 2 ? (kGrouped ? 216 : 224) : 240;
  // A quantizer lane holds all BLOCK_M rows' values (2 registers each) and their steps in flight at once.
  static constexpr uint32_t kQuantizerRegisters = 160;
  // setmaxnreg moves registers within what the launch allocated: every thread's share of the 64K register
  // file, in whole units of 8.
  static constexpr int kLaunchRegisters = kNumThreads * (65536 / kNumThreads / 8 * 8);
  static_assert(128 * (kProducerRegisters + kMathRegisters * kNumMathWarpgroups +
                       (kQuantizeInput ? kQuantizerRegisters : 0)) <=
                    kLaunchRegisters,
                "setmaxnreg budgets must fit the registers allocated at launch");
};

// Run-time arguments of one GEMM launch (the tensor maps travel separately as __grid_constant__).
struct GemmParams {
  int m, n, k;
  // Rows of A each TMA load brings (a multiple of 8, <= BLOCK_M): min(BLOCK_M, M rounded up to 8). Zero
  // filling the rows of a box past M is slow in the TMA unit, so when M < BLOCK_M those rows are not
  // loaded at all; the kernel zeroes them once in every stage instead. (kMulticastA: each CTA's slice of
  // the shared tile, BLOCK_M / kMulticast rows, always whole.)
  int a_box_rows;
  const float* scale_a;  // (M, K/128), element (row, kb) at row * scale_a_row_stride + kb * scale_a_k_stride
  int64_t scale_a_row_stride, scale_a_k_stride;
  const float* scale_b;  // per block: (ceil(N/128), K/128); per row: (N, K/128)
  int64_t scale_b_row_stride, scale_b_k_stride;
  // Split-K (swapAB tiles only): the K blocks of each tile are shared among the num_k_splits CTAs of a
  // cluster; rank 0 sums the others' fp32 partial tiles from their shared memory and stores the tile.
  int num_k_splits;
  // Dense: weight column blocks per raster group of the tile order (TileScheduler; the plan's choice).
  int raster_group_cols;
};

// The grouped kernels' arguments (GemmConfig::kGrouped): the dense ones, where m is the rows of the 2-D view
// of the input and out (M_total, or G * M_max for the masked layout) and n the columns of one group (the
// weight is (G N, K)), and the groups'. A type of its own, so that the dense kernels' parameters stay as
// they were (a larger parameter block changed their generated code).
struct GroupedGemmParams : GemmParams {
  const int* group_table;  // device memory, read by every role of every CTA as its scheduler advances
  int group_table_kind;    // GroupTableKind
  int num_groups;
  int rows_per_group;  // kMasked: M_max
  // Input scale of view row r of group g: scale_a + g * scale_a_group_stride + (r - g * scale_a_group_rows)
  // * scale_a_row_stride + kb * scale_a_k_stride (a 2-D scale: both 0; a (G, M_max, K/128) one: its group
  // stride and M_max). Weight scales: scale_b + g * scale_b_group_stride + row * scale_b_row_stride + ...
  int64_t scale_a_group_stride;
  int scale_a_group_rows;
  int64_t scale_b_group_stride;
  // A tile whose rows end inside it (at its group's end) is stored row by row from the staging buffer,
  // not by TMA, so that no row of the next group is overwritten.
  void* out;
  int64_t out_row_stride;  // elements
};

template <class Config>
using KernelParams = std::conditional_t<Config::kGrouped, GroupedGemmParams, GemmParams>;

}  // namespace blockgemm::kernels
