// GPU quantizers bf16 -> fp8 e4m3 with fp32 scales. The math is blockgemm::reference's, operation for
// operation, so that the results are bitwise equal to it; see include/blockgemm/quantize.h.
#include <cuda_fp8.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>

#include "api/argument_check.h"
#include "blockgemm/quantize.h"
#include "ptx/ptx.cuh"

namespace blockgemm {
namespace {

constexpr int kGroupSize = 128;      // quantization granularity, as in the reference (kGroupK)
constexpr float kFp8Max = 448.f;     // largest finite e4m3 value
constexpr float kAmaxFloor = 1e-4f;  // keeps the scale of an all-zero group finite and non-zero
// One 16-byte load holds 8 bf16: the widest access a thread can issue, and the row-stride and alignment
// requirements on x guarantee that every 8-column chunk starts on a 16-byte boundary.
constexpr int kElementsPerChunk = 8;
constexpr int kLanesPerGroup = kGroupSize / kElementsPerChunk;  // 16: a half-warp covers one group row
constexpr int kThreadsPerBlock = 256;
constexpr int kWarpsPerBlock = kThreadsPerBlock / 32;
constexpr unsigned kFullWarp = 0xFFFFFFFFu;

// Per-token: each half-warp quantizes kTokenSteps groups per loop iteration, all loads issued before any
// reduction, so that every lane has several 16-byte loads in flight (memory-level parallelism is what a
// bandwidth-bound kernel needs). In step s the two half-warps of a warp take adjacent groups, so one load
// instruction of the warp reads 512 contiguous bytes when both groups are in the same row.
constexpr int kTokenSteps = 4;
constexpr int kGroupsPerWarpIteration = 2 * kTokenSteps;

// Per-block: one CTA per 128x128 block; each thread holds its 8 chunks in registers between the amax
// pass and the conversion pass, so x is read from memory exactly once.
constexpr int kBlockRowsPerPass = kThreadsPerBlock / kLanesPerGroup;  // 16
constexpr int kBlockPasses = kGroupSize / kBlockRowsPerPass;          // 8
static_assert(kBlockRowsPerPass * kBlockPasses == kGroupSize, "a CTA must cover the 128 rows of a block");

// Grid-stride loops cover any size; more CTAs than this would only queue behind the resident ones.
constexpr int64_t kMaxGridBlocks = int64_t{1} << 16;

struct CastArgs {
  const uint16_t* x;  // bf16 bits
  int64_t x_row_stride;
  uint8_t* out;  // fp8 e4m3 bits
  int64_t out_row_stride;
  float* scales;
  int64_t scale_row_stride, scale_col_stride;
  int64_t rows, cols;
  int64_t row_groups, col_groups;  // shape of scales
};

// The reference's amax rule. A NaN operand wins whichever side it is on (NaN > amax and amax > NaN are both
// false, and a NaN amax is kept), so combining partial maxima in any tree order gives NaN exactly when the
// sequential loop does, and the same value otherwise (max of non-NaN values is order-independent).
// fmaxf would drop the NaN instead.
__device__ __forceinline__ float nan_propagating_max(float amax, float a) {
  return (isnan(a) || a > amax) ? a : amax;
}

// max(amax, 1e-4) / 448 with IEEE division; a NaN amax stays NaN because NaN < floor is false.
__device__ __forceinline__ float scale_from_amax(float amax) {
  if (amax < kAmaxFloor) amax = kAmaxFloor;
  return __fdiv_rn(amax, kFp8Max);
}

// bf16 -> fp32 is exact: the bf16 bits are the high half of the fp32 bits.
__device__ __forceinline__ float bf16_low(uint32_t word) {
  return __uint_as_float(word << 16);
}
__device__ __forceinline__ float bf16_high(uint32_t word) {
  return __uint_as_float(word & 0xFFFF0000u);
}

__device__ __forceinline__ float chunk_amax(const uint4 chunk, float amax) {
  const uint32_t words[4] = {chunk.x, chunk.y, chunk.z, chunk.w};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    amax = nan_propagating_max(amax, fabsf(bf16_low(words[i])));
    amax = nan_propagating_max(amax, fabsf(bf16_high(words[i])));
  }
  return amax;
}

// x / scale as seen through the fp8 conversion. IEEE division (__fdiv_rn) costs about ten instructions per
// element, a large share of the issue slots of a kernel that moves 3 bytes per element; with the correctly
// rounded reciprocal r of the group's scale, one Markstein correction step q + (x - q * scale) * r costs
// three. Its fp32 result equals RN(x / scale) except when x is within a few binades of FLT_MIN, where the
// quotient is below 2^-100 and fp8 rounds both to a zero of x's sign: the fp8 bytes are equal for every
// finite bf16 x with |x| <= amax and every finite scale the amax rule can produce (checked exhaustively,
// 1.28e9 pairs, against reference::float_to_fp8_e4m3). The residual is formed as q * scale - x and negated
// through -r so that x = -0 keeps its sign (+0 + -0 would round to +0). Inf and NaN scales take __fdiv_rn:
// the residual of an Inf scale would be 0 * Inf = NaN where x / Inf is 0.
struct Divisor {
  float scale, reciprocal;
  bool finite;
};

__device__ __forceinline__ Divisor make_divisor(float scale) {
  return {scale, __frcp_rn(scale), static_cast<bool>(isfinite(scale))};
}

__device__ __forceinline__ float divide(float x, const Divisor& d) {
  if (!d.finite) return __fdiv_rn(x, d.scale);
  const float q = __fmul_rn(x, d.reciprocal);
  const float negative_residual = __fmaf_rn(q, d.scale, -x);
  return __fmaf_rn(negative_residual, -d.reciprocal, q);
}

// Two words of bf16 (4 elements) -> 4 fp8 bytes, element 0 in the lowest byte (memory order).
// __nv_cvt_float2_to_fp8x2 issues the same cvt.rn.satfinite.e4m3x2.f32 as __nv_cvt_float_to_fp8 does for
// one value, converting both halves at once.
__device__ __forceinline__ uint32_t quantize4(uint32_t word0, uint32_t word1, const Divisor& d) {
  const float2 pair0 = make_float2(divide(bf16_low(word0), d), divide(bf16_high(word0), d));
  const float2 pair1 = make_float2(divide(bf16_low(word1), d), divide(bf16_high(word1), d));
  const uint32_t fp8_01 = __nv_cvt_float2_to_fp8x2(pair0, __NV_SATFINITE, __NV_E4M3);
  const uint32_t fp8_23 = __nv_cvt_float2_to_fp8x2(pair1, __NV_SATFINITE, __NV_E4M3);
  return fp8_01 | (fp8_23 << 16);
}

__device__ __forceinline__ uint2 quantize_chunk(const uint4 chunk, float scale) {
  const Divisor d = make_divisor(scale);
  return make_uint2(quantize4(chunk.x, chunk.y, d), quantize4(chunk.z, chunk.w, d));
}

__device__ __forceinline__ uint4 load_chunk(const uint16_t* x) {
  return __ldg(reinterpret_cast<const uint4*>(x));
}

__device__ __forceinline__ void store_chunk(uint8_t* out, uint2 fp8) {
  *reinterpret_cast<uint2*>(out) = fp8;
}

__global__ void __launch_bounds__(kThreadsPerBlock) per_token_cast_kernel(const CastArgs args) {
  // The GEMM that follows may start its prologue now (it waits for this grid's writes before reading).
  // Every CTA of this grid is already resident when the trigger completes, so the GEMM's persistent CTAs
  // cannot take the SMs this grid still needs.
  ptx::griddepcontrol_launch_dependents();
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int half = lane / kLanesPerGroup;
  const int chunk_in_group = lane % kLanesPerGroup;
  const int64_t total_groups = args.rows * args.col_groups;
  const int64_t warp_stride = static_cast<int64_t>(gridDim.x) * kWarpsPerBlock;

  // The loop condition is warp-uniform, so the shuffles below always run with the whole warp.
  for (int64_t warp = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
       warp * kGroupsPerWarpIteration < total_groups; warp += warp_stride) {
    // Flat group index (row * col_groups + group) of step 0; step s adds 2 * s. One 64-bit division per
    // iteration, then carries, since 64-bit division costs as much as the conversion work of a chunk.
    const int64_t first = warp * kGroupsPerWarpIteration + half;
    int64_t row = first / args.col_groups;
    int64_t group = first - row * args.col_groups;

    uint4 chunks[kTokenSteps];
    int64_t rows_of_step[kTokenSteps], groups_of_step[kTokenSteps];
    bool has_group[kTokenSteps], has_chunk[kTokenSteps];
#pragma unroll
    for (int s = 0; s < kTokenSteps; ++s) {
      rows_of_step[s] = row;
      groups_of_step[s] = group;
      has_group[s] = row < args.rows;
      const int64_t col = group * kGroupSize + chunk_in_group * kElementsPerChunk;
      // cols % 8 == 0, so a chunk is either entirely inside the row or entirely past its end.
      has_chunk[s] = has_group[s] && col < args.cols;
      // Zeros for absent chunks leave the amax unchanged: it starts at 0 and absolute values are >= 0.
      chunks[s] = has_chunk[s] ? load_chunk(args.x + row * args.x_row_stride + col) : make_uint4(0, 0, 0, 0);
      group += 2;
      while (group >= args.col_groups) {
        group -= args.col_groups;
        ++row;
      }
    }

    // Shuffle xor offsets below 16 stay inside a half-warp: each half reduces its own group.
    float amax[kTokenSteps];
#pragma unroll
    for (int s = 0; s < kTokenSteps; ++s) amax[s] = chunk_amax(chunks[s], 0.f);
#pragma unroll
    for (int offset = kLanesPerGroup / 2; offset > 0; offset /= 2) {
#pragma unroll
      for (int s = 0; s < kTokenSteps; ++s)
        amax[s] = nan_propagating_max(amax[s], __shfl_xor_sync(kFullWarp, amax[s], offset));
    }

#pragma unroll
    for (int s = 0; s < kTokenSteps; ++s) {
      const float scale = scale_from_amax(amax[s]);
      if (has_group[s] && chunk_in_group == 0)
        args.scales[rows_of_step[s] * args.scale_row_stride + groups_of_step[s] * args.scale_col_stride] =
            scale;
      if (has_chunk[s]) {
        const int64_t col = groups_of_step[s] * kGroupSize + chunk_in_group * kElementsPerChunk;
        store_chunk(args.out + rows_of_step[s] * args.out_row_stride + col, quantize_chunk(chunks[s], scale));
      }
    }
  }
}

__global__ void __launch_bounds__(kThreadsPerBlock) per_block_cast_kernel(const CastArgs args) {
  // The GEMM that follows may start its prologue now (it waits for this grid's writes before reading).
  // Every CTA of this grid is already resident when the trigger completes, so the GEMM's persistent CTAs
  // cannot take the SMs this grid still needs.
  ptx::griddepcontrol_launch_dependents();
  __shared__ float warp_amax[kWarpsPerBlock];
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int warp = static_cast<int>(threadIdx.x / 32);
  const int chunk_in_group = static_cast<int>(threadIdx.x % kLanesPerGroup);
  const int row_in_pass = static_cast<int>(threadIdx.x / kLanesPerGroup);
  const int64_t total_blocks = args.row_groups * args.col_groups;

  // CTA-uniform loop: the __syncthreads inside are reached by every thread.
  for (int64_t block = blockIdx.x; block < total_blocks; block += gridDim.x) {
    const int64_t block_row = block / args.col_groups;
    const int64_t block_col = block - block_row * args.col_groups;
    const int64_t col = block_col * kGroupSize + chunk_in_group * kElementsPerChunk;
    const bool col_inside = col < args.cols;
    const int64_t first_row = block_row * kGroupSize + row_in_pass;

    uint4 chunks[kBlockPasses];
#pragma unroll
    for (int p = 0; p < kBlockPasses; ++p) {
      const int64_t row = first_row + p * kBlockRowsPerPass;
      // Rows and columns past the tensor contribute zeros, which leave the amax unchanged.
      chunks[p] = (col_inside && row < args.rows) ? load_chunk(args.x + row * args.x_row_stride + col)
                                                  : make_uint4(0, 0, 0, 0);
    }
    float amax = 0.f;
#pragma unroll
    for (int p = 0; p < kBlockPasses; ++p) amax = chunk_amax(chunks[p], amax);
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2)
      amax = nan_propagating_max(amax, __shfl_xor_sync(kFullWarp, amax, offset));
    if (lane == 0) warp_amax[warp] = amax;
    __syncthreads();
    amax = warp_amax[0];
#pragma unroll
    for (int w = 1; w < kWarpsPerBlock; ++w) amax = nan_propagating_max(amax, warp_amax[w]);
    const float scale = scale_from_amax(amax);
    if (threadIdx.x == 0)
      args.scales[block_row * args.scale_row_stride + block_col * args.scale_col_stride] = scale;

#pragma unroll
    for (int p = 0; p < kBlockPasses; ++p) {
      const int64_t row = first_row + p * kBlockRowsPerPass;
      if (col_inside && row < args.rows)
        store_chunk(args.out + row * args.out_row_stride + col, quantize_chunk(chunks[p], scale));
    }
    // warp_amax is rewritten by the next block's reduction: every thread must have read it first.
    __syncthreads();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------------------

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// Checks everything and fills the kernel arguments; returns false when there is nothing to do (an empty
// x), in which case nothing past the shapes is checked because nothing is accessed.
bool validate_cast_args(const char* function, const TensorView& x, const TensorView& out,
                        const TensorView& scales, bool per_block, CastArgs& args) {
  const api::ArgumentCheck v(function);
  v.require_matrix("x", x);
  v.require_matrix("out", out);
  v.require_matrix("scales", scales);
  v.require_dtype("x", x, DType::kBFloat16);
  v.require_dtype("out", out, DType::kFloat8E4M3);
  v.require_dtype("scales", scales, DType::kFloat32);

  const int64_t rows = x.rows(), cols = x.cols();
  v.require_shape("out", out, rows, cols);
  if (cols % kElementsPerChunk != 0)
    v.fail("x", "a column count that is a multiple of " + std::to_string(kElementsPerChunk),
           std::to_string(cols));
  const int64_t col_groups = ceil_div(cols, kGroupSize);
  const int64_t row_groups = per_block ? ceil_div(rows, kGroupSize) : rows;
  v.require_shape("scales", scales, row_groups, col_groups);
  if (rows == 0 || cols == 0) return false;

  v.require_data("x", x);
  v.require_data("out", out);
  v.require_data("scales", scales);
  if (x.device == TensorView::kHostDevice) v.fail("x.device", "a CUDA device", "host memory");
  v.require_device("out", out, x.device);
  v.require_device("scales", scales, x.device);

  v.require_row_major("x", x, 16);     // one 8-element chunk is one 16-byte load
  v.require_row_major("out", out, 8);  // and one 8-byte fp8 store
  v.require_scale_layout("scales", scales);
  v.require_disjoint("out", out, "x", x);
  v.require_disjoint("scales", scales, "x", x);
  v.require_disjoint("scales", scales, "out", out);

  // A launch goes to the current device; a stream of another device would fail later and less clearly.
  int current = -1;
  const cudaError_t status = cudaGetDevice(&current);
  if (status != cudaSuccess) {
    cudaGetLastError();  // not sticky: leave no stale error for the caller's next check
    throw Error(Error::Kind::kDevice,
                std::string(function) + ": cannot query the current device: " + cudaGetErrorString(status));
  }
  if (current != x.device)
    throw Error(Error::Kind::kDevice, std::string(function) +
                                          ": tensors are on cuda:" + std::to_string(x.device) +
                                          " but the current device is cuda:" + std::to_string(current) +
                                          " (call cudaSetDevice first)");

  args.x = static_cast<const uint16_t*>(x.data);
  args.x_row_stride = rows > 1 ? x.strides[0] : cols;
  args.out = static_cast<uint8_t*>(out.data);
  args.out_row_stride = rows > 1 ? out.strides[0] : cols;
  args.scales = static_cast<float*>(scales.data);
  args.scale_row_stride = scales.strides[0];
  args.scale_col_stride = scales.strides[1];
  args.rows = rows;
  args.cols = cols;
  args.row_groups = row_groups;
  args.col_groups = col_groups;
  return true;
}

void check_launch(const char* function) {
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)
    throw Error(Error::Kind::kDevice,
                std::string(function) + ": kernel launch failed: " + cudaGetErrorString(status));
}

}  // namespace

void per_token_cast_to_fp8(const TensorView& x, const TensorView& out, const TensorView& scales,
                           cudaStream_t stream) {
  constexpr const char* kFunction = "per_token_cast_to_fp8";
  CastArgs args{};
  if (!validate_cast_args(kFunction, x, out, scales, /*per_block=*/false, args)) return;
  const int64_t warps = ceil_div(args.rows * args.col_groups, kGroupsPerWarpIteration);
  const int64_t blocks = std::min(ceil_div(warps, kWarpsPerBlock), kMaxGridBlocks);
  cudaGetLastError();  // drop any stale error so the check after the launch sees only this launch's
  per_token_cast_kernel<<<static_cast<unsigned>(blocks), kThreadsPerBlock, 0, stream>>>(args);
  check_launch(kFunction);
}

void per_block_cast_to_fp8(const TensorView& x, const TensorView& out, const TensorView& scales,
                           cudaStream_t stream) {
  constexpr const char* kFunction = "per_block_cast_to_fp8";
  CastArgs args{};
  if (!validate_cast_args(kFunction, x, out, scales, /*per_block=*/true, args)) return;
  const int64_t blocks = std::min(args.row_groups * args.col_groups, kMaxGridBlocks);
  cudaGetLastError();  // drop any stale error so the check after the launch sees only this launch's
  per_block_cast_kernel<<<static_cast<unsigned>(blocks), kThreadsPerBlock, 0, stream>>>(args);
  check_launch(kFunction);
}

}  // namespace blockgemm
