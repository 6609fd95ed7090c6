// GPU fp32 reference GEMM for the fuzzer (see gpu_reference.h). A classic shared-memory SGEMM on the CUDA
// cores: simple enough to trust by reading, fast enough (tens of TFLOP/s on an H100) that checking all rows
// of a 16384 x 16384 x 8192 case costs a fraction of a second.
#include <cuda_fp16.h>
#include <cuda_fp8.h>

#include <climits>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "gpu_reference.h"

namespace blockgemm::fuzz {
namespace {

constexpr int kTileM = 128;
constexpr int kTileN = 128;
constexpr int kSliceK = 32;   // K per shared-memory stage: 16 KB per operand as fp32, under the 48 KB limit
constexpr int kGroupK = 128;  // scale granularity along K
constexpr int kScaleBlockN = 128;  // rows of b per scale with per-block scales
constexpr int kSlicesPerGroup = kGroupK / kSliceK;
constexpr int kThreads = 256;  // a 16 x 16 grid of threads, 8 x 8 outputs each
constexpr int kMaxGridY = 65535;

static_assert(kThreads * 16 == kTileM * kSliceK && kThreads * 16 == kTileN * kSliceK,
              "each thread loads 16 fp8 bytes of each operand per slice");
static_assert(kGroupK % kSliceK == 0, "a slice never straddles two scale groups");

// Thread (ty, tx) owns rows {ty*4 .. ty*4+3} and {64+ty*4 .. 64+ty*4+3} of the tile, and the same pattern of
// columns with tx: splitting each thread's 8 into two halves 64 apart makes the 16 column threads of a warp
// read 256 contiguous bytes per half, which shared memory serves without bank conflicts.
__device__ __forceinline__ int tile_offset(int lane16, int i) {
  return (i / 4) * 64 + lane16 * 4 + i % 4;
}

// 16 fp8 e4m3 values (byte 0 = lowest k) to fp32. Every e4m3 value is exact in fp16, and fp16 in fp32, so
// the hardware fp8x2 -> f16x2 conversion decodes exactly.
__device__ __forceinline__ void decode16(const uint4 bits, float (&v)[16]) {
  const uint32_t words[4] = {bits.x, bits.y, bits.z, bits.w};
#pragma unroll
  for (int w = 0; w < 4; ++w) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const __half2_raw raw = __nv_cvt_fp8x2_to_halfraw2(
          static_cast<__nv_fp8x2_storage_t>((words[w] >> (16 * h)) & 0xFFFFu), __NV_E4M3);
      const float2 f = __half22float2(__half2(raw));
      v[4 * w + 2 * h] = f.x;
      v[4 * w + 2 * h + 1] = f.y;
    }
  }
}

__global__ void __launch_bounds__(kThreads, 1)
    reference_kernel(const uint8_t* __restrict__ a, const float* __restrict__ a_scales,
                     const uint8_t* __restrict__ b, const float* __restrict__ b_scales, bool b_per_row,
                     int64_t m, int64_t n, int64_t k, float* __restrict__ out) {
  // Stored transposed ([k][row]) so that each thread's 4 consecutive rows (or columns) are one float4.
  __shared__ __align__(16) float a_tile[kSliceK][kTileM];
  __shared__ __align__(16) float b_tile[kSliceK][kTileN];

  const int tid = static_cast<int>(threadIdx.x);
  const int tx = tid % 16, ty = tid / 16;
  const int64_t row0 = static_cast<int64_t>(blockIdx.y) * kTileM;
  const int64_t col0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  const int64_t groups = k / kGroupK;
  const int64_t slices = k / kSliceK;

  // Loader role: 16 bytes of tile row tid/2 at k offset (tid%2)*16 per slice, so a warp reads 16 whole
  // 32-byte sectors. Rows past m (or n) load zeros and never form a pointer past the end.
  const int load_row = tid / 2, load_k = (tid % 2) * 16;
  const bool a_in = row0 + load_row < m;
  const bool b_in = col0 + load_row < n;
  const uint8_t* a_src = a + (a_in ? (row0 + load_row) * k + load_k : 0);
  const uint8_t* b_src = b + (b_in ? (col0 + load_row) * k + load_k : 0);
  const uint4 zero = make_uint4(0, 0, 0, 0);

  // Per-group partial sums are kept apart from the scaled total, as in the library's kernels: the scales
  // multiply each 128-wide group's fp32 sum, never the individual products.
  float part[8][8], acc[8][8];
#pragma unroll
  for (int i = 0; i < 8; ++i)
#pragma unroll
    for (int j = 0; j < 8; ++j) part[i][j] = acc[i][j] = 0.f;

  // The next slice's bytes are fetched into registers while the current one is multiplied: one shared
  // buffer, global latency hidden behind the 2048 FMAs per thread of a slice.
  uint4 a_next = zero, b_next = zero;
  if (slices > 0) {
    a_next = a_in ? __ldg(reinterpret_cast<const uint4*>(a_src)) : zero;
    b_next = b_in ? __ldg(reinterpret_cast<const uint4*>(b_src)) : zero;
  }

  for (int64_t s = 0; s < slices; ++s) {
    float v[16];
    decode16(a_next, v);
#pragma unroll
    for (int j = 0; j < 16; ++j) a_tile[load_k + j][load_row] = v[j];
    decode16(b_next, v);
#pragma unroll
    for (int j = 0; j < 16; ++j) b_tile[load_k + j][load_row] = v[j];
    __syncthreads();

    if (s + 1 < slices) {
      const int64_t offset = (s + 1) * kSliceK;
      a_next = a_in ? __ldg(reinterpret_cast<const uint4*>(a_src + offset)) : zero;
      b_next = b_in ? __ldg(reinterpret_cast<const uint4*>(b_src + offset)) : zero;
    }

#pragma unroll
    for (int kk = 0; kk < kSliceK; ++kk) {
      float av[8], bv[8];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const float4 x = *reinterpret_cast<const float4*>(&a_tile[kk][h * 64 + ty * 4]);
        const float4 y = *reinterpret_cast<const float4*>(&b_tile[kk][h * 64 + tx * 4]);
        av[4 * h] = x.x;
        av[4 * h + 1] = x.y;
        av[4 * h + 2] = x.z;
        av[4 * h + 3] = x.w;
        bv[4 * h] = y.x;
        bv[4 * h + 1] = y.y;
        bv[4 * h + 2] = y.z;
        bv[4 * h + 3] = y.w;
      }
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) part[i][j] = fmaf(av[i], bv[j], part[i][j]);
    }

    if ((s + 1) % kSlicesPerGroup == 0) {  // k % 128 == 0: the last slice always closes a group
      const int64_t g = s / kSlicesPerGroup;
      float sa[8], sb[8];
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        const int64_t r = row0 + tile_offset(ty, i);
        sa[i] = r < m ? __ldg(a_scales + r * groups + g) : 0.f;
      }
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int64_t c = col0 + tile_offset(tx, j);
        const int64_t scale_row = b_per_row ? c : c / kScaleBlockN;
        sb[j] = c < n ? __ldg(b_scales + scale_row * groups + g) : 0.f;
      }
#pragma unroll
      for (int i = 0; i < 8; ++i)
#pragma unroll
        for (int j = 0; j < 8; ++j) {
          acc[i][j] = fmaf(part[i][j] * sa[i], sb[j], acc[i][j]);
          part[i][j] = 0.f;
        }
    }
    __syncthreads();  // the next iteration overwrites the tiles
  }

#pragma unroll
  for (int i = 0; i < 8; ++i) {
    const int64_t r = row0 + tile_offset(ty, i);
    if (r >= m) continue;
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      // n % 16 == 0 and c % 4 == 0: a float4 that starts inside the row ends inside it.
      const int64_t c = col0 + h * 64 + tx * 4;
      if (c < n) {
        *reinterpret_cast<float4*>(out + r * n + c) =
            make_float4(acc[i][4 * h], acc[i][4 * h + 1], acc[i][4 * h + 2], acc[i][4 * h + 3]);
      }
    }
  }
}

bool aligned16(const void* p) {
  return reinterpret_cast<uintptr_t>(p) % 16 == 0;
}

}  // namespace

void gpu_reference_gemm(const uint8_t* a_fp8, const float* a_scales, const uint8_t* b_fp8,
                        const float* b_scales, bool b_per_row, int64_t m, int64_t n, int64_t k, float* out,
                        cudaStream_t stream) {
  if (m < 0 || n < 0 || k < 0 || n % 16 != 0 || k % kGroupK != 0)
    throw std::invalid_argument(
        "gpu_reference_gemm: needs m, n, k >= 0, n % 16 == 0, k % 128 == 0 (got m=" + std::to_string(m) +
        " n=" + std::to_string(n) + " k=" + std::to_string(k) + ")");
  if (!aligned16(a_fp8) || !aligned16(b_fp8) || !aligned16(out))
    throw std::invalid_argument("gpu_reference_gemm: a_fp8, b_fp8 and out must be 16-byte aligned");
  if (m == 0 || n == 0) return;
  const int64_t tiles_m = (m + kTileM - 1) / kTileM, tiles_n = (n + kTileN - 1) / kTileN;
  if (tiles_m > kMaxGridY || tiles_n > INT_MAX)
    throw std::invalid_argument("gpu_reference_gemm: problem too large for one grid (m=" + std::to_string(m) +
                                " n=" + std::to_string(n) + ")");
  const dim3 grid(static_cast<unsigned>(tiles_n), static_cast<unsigned>(tiles_m));
  reference_kernel<<<grid, kThreads, 0, stream>>>(a_fp8, a_scales, b_fp8, b_scales, b_per_row, m, n, k, out);
  if (const cudaError_t status = cudaGetLastError(); status != cudaSuccess)
    throw std::runtime_error(std::string("gpu_reference_gemm: launch failed: ") + cudaGetErrorString(status));
}

}  // namespace blockgemm::fuzz
