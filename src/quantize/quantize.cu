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
#include "quantize/fp8_cast.cuh"
#include "quantize/scale_transpose.h"

namespace blockgemm {
namespace {

using namespace quantize;  // the cast arithmetic (quantize/fp8_cast.cuh)

constexpr int kGroupSize = 128;  // quantization granularity, as in the reference (kGroupK)
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

    // Shuffle xor offsets below 16 stay inside a half-warp: each half reduces its own group. Maxima of bf16
    // magnitude patterns (quantize::abs_max_bits) combine with integer max in any order.
    uint32_t amax[kTokenSteps];
#pragma unroll
    for (int s = 0; s < kTokenSteps; ++s) amax[s] = abs_max_bits(chunks[s]);
#pragma unroll
    for (int offset = kLanesPerGroup / 2; offset > 0; offset /= 2) {
#pragma unroll
      for (int s = 0; s < kTokenSteps; ++s)
        amax[s] = max(amax[s], __shfl_xor_sync(kFullWarp, amax[s], offset));
    }

#pragma unroll
    for (int s = 0; s < kTokenSteps; ++s) {
      const float scale = scale_from_amax(bf16_bits_to_float(amax[s]));
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
  __shared__ uint32_t warp_amax[kWarpsPerBlock];
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
    uint32_t amax = 0;  // bf16 magnitude patterns (quantize::abs_max_bits)
#pragma unroll
    for (int p = 0; p < kBlockPasses; ++p) amax = max(amax, abs_max_bits(chunks[p]));
    amax = __reduce_max_sync(kFullWarp, amax);
    if (lane == 0) warp_amax[warp] = amax;
    __syncthreads();
    amax = warp_amax[0];
#pragma unroll
    for (int w = 1; w < kWarpsPerBlock; ++w) amax = max(amax, warp_amax[w]);
    const float scale = scale_from_amax(bf16_bits_to_float(amax));
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

// 32 x 32 tiles through shared memory: rows of the source are read along its fast axis and columns of the
// destination written along its own, both coalesced for the row-major (M, K/128) layout and its transpose.
constexpr int kTransposeTile = 32;
constexpr int kTransposeRowsPerPass = 8;

struct TransposeArgs {
  const float* src;
  int64_t rows, cols, src_row_stride, src_col_stride, src_group_stride;
  float* dst;
  int64_t dst_ld, dst_group_stride;
  const int32_t* group_rows;
};

__global__ void __launch_bounds__(kTransposeTile* kTransposeRowsPerPass)
    transpose_scales_kernel(const TransposeArgs args) {
  ptx::griddepcontrol_wait();
  ptx::griddepcontrol_launch_dependents();
  __shared__ float tile[kTransposeTile][kTransposeTile + 1];  // +1: the column reads hit 32 banks
  // Row tiles on x (up to 2^31 - 1 blocks): M may exceed y's 65535 x 32 rows, K/128 may not (the caller
  // checks); groups on z.
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * kTransposeTile;
  const int64_t col0 = static_cast<int64_t>(blockIdx.y) * kTransposeTile;
  // A masked group's rows past its count are never read by the GEMM: a block wholly past it copies nothing.
  int64_t rows = args.rows;
  if (args.group_rows != nullptr) rows = min(rows, static_cast<int64_t>(max(args.group_rows[blockIdx.z], 0)));
  if (row0 >= rows) return;
  const float* src = args.src + blockIdx.z * args.src_group_stride;
  float* dst = args.dst + blockIdx.z * args.dst_group_stride;
  for (int i = threadIdx.y; i < kTransposeTile; i += kTransposeRowsPerPass) {
    const int64_t r = row0 + i, c = col0 + threadIdx.x;
    if (r < rows && c < args.cols)
      tile[i][threadIdx.x] = __ldg(src + r * args.src_row_stride + c * args.src_col_stride);
  }
  __syncthreads();
  for (int i = threadIdx.y; i < kTransposeTile; i += kTransposeRowsPerPass) {
    const int64_t c = col0 + i, r = row0 + threadIdx.x;
    if (r < rows && c < args.cols) dst[c * args.dst_ld + r] = tile[threadIdx.x][i];
  }
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

namespace quantize {

void transpose_scales(const ScaleTranspose& t, cudaStream_t stream) {
  if (t.groups == 0 || t.rows == 0 || t.cols == 0) return;
  const TransposeArgs args{t.src,
                           t.rows,
                           t.cols,
                           t.src_row_stride,
                           t.src_col_stride,
                           t.src_group_stride,
                           t.dst,
                           t.dst_ld,
                           t.dst_group_stride,
                           t.group_rows};
  const dim3 grid(static_cast<unsigned>(ceil_div(t.rows, kTransposeTile)),
                  static_cast<unsigned>(ceil_div(t.cols, kTransposeTile)), static_cast<unsigned>(t.groups));
  cudaGetLastError();  // drop any stale error so the check after the launch sees only this launch's
  transpose_scales_kernel<<<grid, dim3(kTransposeTile, kTransposeRowsPerPass), 0, stream>>>(args);
  check_launch("fp8_blockscale_gemm_sm90 (input scale transpose)");
}

}  // namespace quantize
}  // namespace blockgemm
