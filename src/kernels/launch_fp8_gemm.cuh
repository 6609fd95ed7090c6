// Tensor maps, launch and template dispatch for the 1D2D FP8 GEMM kernel. Included once per output dtype
// (launch_fp8_gemm_<dtype>.cu) so the kernel families compile in parallel.
#pragma once
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>

#include "kernels/fp8_gemm_1d2d.cuh"
#include "kernels/launch.h"

namespace blockgemm::kernels::detail {

[[noreturn]] inline void throw_cuda(const char* what, cudaError_t status) {
  throw Error(Error::Kind::kDevice, std::string(what) + ": " + cudaGetErrorString(status));
}

// The driver's tensor-map encoder, found through the runtime so the library never links libcuda itself.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 encoder = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    const cudaError_t status =
        cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found);
    if (status != cudaSuccess || found != cudaDriverEntryPointSuccess || fn == nullptr)
      throw Error(Error::Kind::kDevice, "cuTensorMapEncodeTiled is not available from the CUDA driver");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encoder;
}

inline CUtensorMapSwizzle swizzle_for_row_bytes(int row_bytes) {
  switch (row_bytes) {
    case 32:
      return CU_TENSOR_MAP_SWIZZLE_32B;
    case 64:
      return CU_TENSOR_MAP_SWIZZLE_64B;
    default:
      return CU_TENSOR_MAP_SWIZZLE_128B;
  }
}

// A 2D row-major tensor (rows x cols, row stride in bytes) read or written in boxes of
// box_rows x box_cols elements; in shared memory each box row is swizzled at its own width (<= 128 B).
inline CUtensorMap make_tensor_map_2d(const void* base, CUtensorMapDataType dtype, uint64_t rows,
                                      uint64_t cols, uint64_t row_stride_bytes, uint32_t box_rows,
                                      uint32_t box_cols, CUtensorMapSwizzle swizzle) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {cols, rows};
  const cuuint64_t strides[1] = {row_stride_bytes};
  const cuuint32_t box[2] = {box_cols, box_rows};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult result =
      tensor_map_encoder()(&map, dtype, 2, const_cast<void*>(base), dims, strides, box, element_strides,
                           CU_TENSOR_MAP_INTERLEAVE_NONE, swizzle, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                           CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (result != CUDA_SUCCESS)
    throw Error(Error::Kind::kDevice,
                "cuTensorMapEncodeTiled failed with CUresult " + std::to_string(result));
  return map;
}

template <typename OutT>
constexpr CUtensorMapDataType tensor_map_dtype() {
  if constexpr (std::is_same_v<OutT, float>) return CU_TENSOR_MAP_DATA_TYPE_FLOAT32;
  if constexpr (std::is_same_v<OutT, __half>) return CU_TENSOR_MAP_DATA_TYPE_FLOAT16;
  return CU_TENSOR_MAP_DATA_TYPE_BFLOAT16;
}

// Launch configuration of a Config's kernel: its block, shared memory and cluster shape.
template <class Config>
struct ClusterLaunch {
  cudaLaunchConfig_t config{};
  cudaLaunchAttribute attributes[2]{};
  ClusterLaunch(int grid, int cluster_size, cudaStream_t stream) {
    config.gridDim = dim3(static_cast<unsigned>(grid));
    config.blockDim = dim3(Config::kNumThreads);
    config.dynamicSmemBytes = Config::kSmemBytes;
    config.stream = stream;
    attributes[0].id = cudaLaunchAttributeClusterDimension;
    attributes[0].val.clusterDim.x = static_cast<unsigned>(cluster_size);
    attributes[0].val.clusterDim.y = 1;
    attributes[0].val.clusterDim.z = 1;
    // Programmatic dependent launch: the kernel may start (barrier init, tensor-map prefetch) while the
    // previous kernel in the stream, e.g. the activation quantizer, finishes. Every global access of the
    // kernel comes after its griddepcontrol.wait, so this is safe after any kernel.
    attributes[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attributes[1].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = attributes;
    config.numAttrs = 2;
  }
  ClusterLaunch(const ClusterLaunch&) = delete;  // config.attrs points into this object
  ClusterLaunch& operator=(const ClusterLaunch&) = delete;
};

// Clusters of `size` CTAs of Config's kernel that fit on the device at once (a cluster needs all its CTAs
// on one GPC), or 0 where the driver cannot say.
template <class Config>
int max_active_clusters(int size) {
  ClusterLaunch<Config> probe(size * 8, size, nullptr);
  int clusters = 0;
  if (cudaOccupancyMaxActiveClusters(&clusters, fp8_gemm_1d2d_kernel<Config>, &probe.config) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return clusters;
}

template <class Config>
void launch_config(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream) {
  using OutT = typename Config::OutT;
  static_assert(Config::kMaxSplitK == heuristics::kMaxSplitK, "plans and kernels agree on the largest split");
  auto kernel = fp8_gemm_1d2d_kernel<Config>;
  // The dynamic shared-memory limit and the co-resident cluster count are per device: set and query
  // them once for each device this process launches on.
  struct DeviceSetup {
    std::once_flag once;
    cudaError_t status = cudaSuccess;
    int max_clusters[Config::kMaxSplitK + 1] = {};  // by cluster size; 0 where unknown
  };
  constexpr int kMaxDevices = 64;
  static DeviceSetup setups[kMaxDevices];
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) {
    cudaGetLastError();
    throw Error(Error::Kind::kDevice, "fp8_blockscale_gemm_sm90: cannot identify the current device");
  }
  DeviceSetup& setup = setups[device];
  std::call_once(setup.once, [&] {
    setup.status =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Config::kSmemBytes);
    if (setup.status != cudaSuccess) {
      cudaGetLastError();
      return;
    }
    // A cluster needs all its CTAs on one GPC at once: fewer clusters than SMs / size may fit. A
    // persistent grid larger than what is co-resident would run its last clusters in a second round.
    const int first_size = Config::kSupportsSplitK ? 2 : Config::kMulticast;
    const int last_size = Config::kSupportsSplitK ? Config::kMaxSplitK : Config::kMulticast;
    for (int size = std::max(first_size, 2); size <= last_size; ++size)
      setup.max_clusters[size] = max_active_clusters<Config>(size);
    if (std::getenv("BLOCKGEMM_DEBUG")) {
      std::fprintf(stderr,
                   "blockgemm: cuda:%d BLOCK_M=%d BLOCK_N=%d multicast=%d swap_ab=%d stages=%d smem=%d "
                   "max_active_clusters by size:",
                   device, Config::BLOCK_M, Config::BLOCK_N, Config::kMulticast,
                   static_cast<int>(Config::kSwapAB), Config::kNumStages, Config::kSmemBytes);
      for (int size = 2; size <= Config::kMaxSplitK; ++size)
        std::fprintf(stderr, " %d", setup.max_clusters[size]);
      std::fprintf(stderr, "\n");
    }
  });
  if (setup.status != cudaSuccess) throw_cuda("cudaFuncSetAttribute", setup.status);
  int k_splits = plan.k_splits;
  if (k_splits < 1 || (k_splits > 1 && !Config::kSupportsSplitK) || k_splits > Config::kMaxSplitK ||
      k_splits > args.k / Config::BLOCK_K)
    throw Error(Error::Kind::kInvalidArgument, "plan names an unsupported split-K factor");
  int grid = plan.grid;
  if (k_splits > 1) {
    // The heuristics size split-K from a model of the GPCs. Where the driver fits fewer clusters of that
    // size than the plan's one wave needs, a smaller split that still runs in one wave beats a second
    // wave (30-100% slower, bench/NOTES.md #14).
    const int clusters = plan.grid / k_splits;
    while (k_splits > 1 && setup.max_clusters[k_splits] > 0 && setup.max_clusters[k_splits] < clusters)
      --k_splits;
    grid = clusters * k_splits;
  }
  const int cluster_size = Config::kMulticast * k_splits;
  grid = grid / cluster_size * cluster_size;
  // Only clusters of several CTAs are clamped: for single-CTA "clusters" the query answered 13 on an H100
  // that ran 132 such CTAs at once (bench/NOTES.md), so its answer is not used there.
  if (cluster_size > 1 && setup.max_clusters[cluster_size] > 0)
    grid = std::min(grid, setup.max_clusters[cluster_size] * cluster_size);
  grid = std::max(grid, cluster_size);

  // A bf16 input the kernel quantizes lands unswizzled in a staging buffer (256-byte rows), always a whole
  // tile of rows (TMA zero-fills those past M): the quantizer warps cast a compile-time row count,
  // straight-line code. An fp8 input goes straight into the wgmma tile, 128-byte swizzled, in boxes of the
  // rows M needs.
  // A shared input tile is loaded in whole slices (TMA zero fills the rows past M: the heuristics share it
  // only where M spans several row blocks).
  const int a_box_rows = Config::kQuantizeInput || Config::kMulticastA
                             ? Config::kASliceRows
                             : std::min(Config::BLOCK_M, (args.m + 7) / 8 * 8);
  const CUtensorMap tmap_a =
      Config::kQuantizeInput
          ? make_tensor_map_2d(args.a, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, args.m, args.k,
                               args.a_row_stride * 2, a_box_rows, Config::BLOCK_K, CU_TENSOR_MAP_SWIZZLE_NONE)
          : make_tensor_map_2d(args.a, CU_TENSOR_MAP_DATA_TYPE_UINT8, args.m, args.k, args.a_row_stride,
                               a_box_rows, Config::BLOCK_K, CU_TENSOR_MAP_SWIZZLE_128B);
  // Each CTA of a cluster loads (and multicasts) its slice of the shared tile.
  const CUtensorMap tmap_b =
      make_tensor_map_2d(args.b, CU_TENSOR_MAP_DATA_TYPE_UINT8, args.n, args.k, args.b_row_stride,
                         Config::kBSliceRows, Config::BLOCK_K, CU_TENSOR_MAP_SWIZZLE_128B);
  const CUtensorMap tmap_out = make_tensor_map_2d(
      args.out, tensor_map_dtype<OutT>(), args.m, args.n, args.out_row_stride * sizeof(OutT),
      Config::kEpilogueRows, Config::kOutStripCols, swizzle_for_row_bytes(Config::kOutStripBytes));
  GemmParams params{};
  params.m = args.m;
  params.n = args.n;
  params.k = args.k;
  params.a_box_rows = a_box_rows;
  params.scale_a = args.scale_a;
  params.scale_a_row_stride = args.scale_a_row_stride;
  params.scale_a_k_stride = args.scale_a_k_stride;
  params.scale_b = args.scale_b;
  params.scale_b_row_stride = args.scale_b_row_stride;
  params.scale_b_k_stride = args.scale_b_k_stride;
  params.num_k_splits = k_splits;
  params.raster_group_cols = plan.raster_group_cols;
  ClusterLaunch<Config> launch(grid, cluster_size, stream);
  // The launch's own status decides: a stale error left on this thread by an earlier, unrelated call
  // must not be reported as this launch failing.
  const cudaError_t status = cudaLaunchKernelEx(&launch.config, kernel, tmap_a, tmap_b, tmap_out, params);
  if (status != cudaSuccess) throw_cuda("fp8_gemm_1d2d launch", status);
}

template <class OutT, int BLOCK_M, int BLOCK_N, int kMulticast, bool kSwapAB, bool kQuantizeInput,
          bool kMulticastA>
void launch_for_scales(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream) {
  if (args.per_row_weight_scale)
    launch_config<GemmConfig<BLOCK_M, BLOCK_N, kMulticast, kSwapAB, WeightScaleKind::kPerRow, OutT,
                             kQuantizeInput, false, kMulticastA>>(plan, args, stream);
  else
    launch_config<GemmConfig<BLOCK_M, BLOCK_N, kMulticast, kSwapAB, WeightScaleKind::kPerBlock, OutT,
                             kQuantizeInput, false, kMulticastA>>(plan, args, stream);
}

static_assert(heuristics::kMaxTokensQuantizedInKernel <= kMaxQuantizeInputRows,
              "the heuristics may ask only for compiled quantizer kernels");

template <class OutT, int BLOCK_M, int BLOCK_N, int kMulticast, bool kSwapAB, bool kMulticastA>
void launch_for_tile(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream) {
  if constexpr (kSwapAB && BLOCK_M <= kMaxQuantizeInputRows) {
    if (args.quantize_input_in_kernel)
      return launch_for_scales<OutT, BLOCK_M, BLOCK_N, kMulticast, kSwapAB, true, false>(plan, args, stream);
  } else {
    if (args.quantize_input_in_kernel)
      throw Error(Error::Kind::kNotImplemented, "only swapAB tiles of up to " +
                                                    std::to_string(kMaxQuantizeInputRows) +
                                                    " tokens quantize their input in the kernel");
  }
  launch_for_scales<OutT, BLOCK_M, BLOCK_N, kMulticast, kSwapAB, false, kMulticastA>(plan, args, stream);
}

// Instantiates one kernel family per entry of heuristics::kTileShapes and runs the one the plan names.
template <class OutT, std::size_t... I>
void dispatch_tile(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream,
                   std::index_sequence<I...>) {
  bool launched = false;
  ((!launched && plan.tile == heuristics::kTileShapes[I]
        ? (launch_for_tile<OutT, heuristics::kTileShapes[I].block_m, heuristics::kTileShapes[I].block_n,
                           heuristics::kTileShapes[I].multicast, heuristics::kTileShapes[I].swap_ab,
                           heuristics::kTileShapes[I].multicast_a>(plan, args, stream),
           launched = true)
        : false),
   ...);
  if (!launched) throw Error(Error::Kind::kNotImplemented, "plan names a tile shape with no compiled kernel");
}

template <class OutT>
void launch_fp8_gemm_for(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream) {
  dispatch_tile<OutT>(plan, args, stream, std::make_index_sequence<heuristics::kNumTileShapes>{});
}

}  // namespace blockgemm::kernels::detail
