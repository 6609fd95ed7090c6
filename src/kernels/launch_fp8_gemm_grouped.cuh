// Launch and template dispatch of the grouped (mixture-of-experts) instantiations of the 1D2D kernel: the
// same kernel template with GemmConfig::kGrouped, over heuristics::kGroupedTileShapes. Included by one
// translation unit per weight-scale kind (launch_fp8_gemm_grouped_<kind>.cu) so the two compile in parallel.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <utility>

#include "kernels/launch_fp8_gemm.cuh"

namespace blockgemm::kernels::detail {

template <class Config>
void launch_grouped_config(const heuristics::GemmPlan& plan, const GroupedGemmArgs& grouped,
                           cudaStream_t stream) {
  static_assert(Config::kGrouped, "the grouped launcher runs grouped configs");
  using OutT = typename Config::OutT;
  const Fp8GemmArgs& args = grouped.gemm;
  auto kernel = fp8_gemm_1d2d_kernel<Config>;
  // The dynamic shared-memory limit and the co-resident cluster count are per device: set and query them
  // once for each device this process launches on.
  struct DeviceSetup {
    std::once_flag once;
    cudaError_t status = cudaSuccess;
    int max_clusters = 0;  // clusters of kMulticast CTAs that fit at once; 0 where unknown
  };
  constexpr int kMaxDevices = 64;
  static DeviceSetup setups[kMaxDevices];
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= kMaxDevices) {
    cudaGetLastError();
    throw Error(Error::Kind::kDevice, "grouped_gemm: cannot identify the current device");
  }
  DeviceSetup& setup = setups[device];
  std::call_once(setup.once, [&] {
    setup.status =
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, Config::kSmemBytes);
    if (setup.status != cudaSuccess) {
      cudaGetLastError();
      return;
    }
    if constexpr (Config::kMulticast > 1)
      setup.max_clusters = max_active_clusters<Config>(Config::kMulticast);
    if (std::getenv("BLOCKGEMM_DEBUG"))
      std::fprintf(
          stderr,
          "blockgemm: cuda:%d grouped BLOCK_M=%d BLOCK_N=%d multicast=%d swap_ab=%d quantize_input=%d "
          "stages=%d smem=%d max_active_clusters=%d\n",
          device, Config::BLOCK_M, Config::BLOCK_N, Config::kMulticast, static_cast<int>(Config::kSwapAB),
          static_cast<int>(Config::kQuantizeInput), Config::kNumStages, Config::kSmemBytes,
          setup.max_clusters);
  });
  if (setup.status != cudaSuccess) throw_cuda("cudaFuncSetAttribute", setup.status);
  if (plan.k_splits != 1)
    throw Error(Error::Kind::kInvalidArgument,
                "grouped plans do not split K (plan names k_splits=" + std::to_string(plan.k_splits) + ")");

  // Every A box is a whole tile of rows (or a cluster's share of one): a group's tile starts anywhere in the
  // view, and rows past its end are the next group's (their outputs are never stored) or TMA zero fill past
  // the view.
  constexpr int kABoxRows = Config::kASliceRows;
  const CUtensorMap tmap_a =
      Config::kQuantizeInput
          ? make_tensor_map_2d(args.a, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, args.m, args.k,
                               args.a_row_stride * 2, kABoxRows, Config::BLOCK_K, CU_TENSOR_MAP_SWIZZLE_NONE)
          : make_tensor_map_2d(args.a, CU_TENSOR_MAP_DATA_TYPE_UINT8, args.m, args.k, args.a_row_stride,
                               kABoxRows, Config::BLOCK_K, CU_TENSOR_MAP_SWIZZLE_128B);
  // The weights of all groups as one (G N, K) matrix: a tile's rows past N read the next group's weight
  // (never stored), the last group's past G N are zero fill.
  const CUtensorMap tmap_b = make_tensor_map_2d(
      args.b, CU_TENSOR_MAP_DATA_TYPE_UINT8, static_cast<uint64_t>(grouped.num_groups) * args.n, args.k,
      args.b_row_stride, Config::kBSliceRows, Config::BLOCK_K, CU_TENSOR_MAP_SWIZZLE_128B);
  const CUtensorMap tmap_out = make_tensor_map_2d(
      args.out, tensor_map_dtype<OutT>(), args.m, args.n, args.out_row_stride * sizeof(OutT),
      Config::kEpilogueRows, Config::kOutStripCols, swizzle_for_row_bytes(Config::kOutStripBytes));
  GroupedGemmParams params{};
  params.m = args.m;
  params.n = args.n;
  params.k = args.k;
  params.a_box_rows = kABoxRows;
  params.scale_a = args.scale_a;
  params.scale_a_row_stride = args.scale_a_row_stride;
  params.scale_a_k_stride = args.scale_a_k_stride;
  params.scale_b = args.scale_b;
  params.scale_b_row_stride = args.scale_b_row_stride;
  params.scale_b_k_stride = args.scale_b_k_stride;
  params.num_k_splits = 1;
  params.group_table = grouped.table;
  params.group_table_kind = static_cast<int>(grouped.table_kind);
  params.num_groups = grouped.num_groups;
  params.rows_per_group = grouped.rows_per_group;
  params.scale_a_group_stride = grouped.scale_a_group_stride;
  params.scale_a_group_rows = grouped.scale_a_group_rows;
  params.scale_b_group_stride = grouped.scale_b_group_stride;
  params.out = args.out;
  params.out_row_stride = args.out_row_stride;
  // Whole clusters, no more than fit at once (a persistent grid larger than that would run its last
  // clusters in a second round).
  constexpr int kCluster = Config::kMulticast;
  int grid = std::max(plan.grid, kCluster) / kCluster * kCluster;
  if (kCluster > 1 && setup.max_clusters > 0) grid = std::min(grid, setup.max_clusters * kCluster);
  ClusterLaunch<Config> launch(grid, kCluster, stream);
  const cudaError_t status = cudaLaunchKernelEx(&launch.config, kernel, tmap_a, tmap_b, tmap_out, params);
  if (status != cudaSuccess) throw_cuda("fp8_gemm_1d2d (grouped) launch", status);
}

template <class OutT, WeightScaleKind kScale, int BLOCK_M, int BLOCK_N, int kMulticast, bool kSwapAB,
          bool kMulticastA>
void launch_grouped_tile(const heuristics::GemmPlan& plan, const GroupedGemmArgs& args, cudaStream_t stream) {
  if constexpr (kSwapAB && BLOCK_M <= kMaxQuantizeInputRows) {
    if (args.gemm.quantize_input_in_kernel)
      return launch_grouped_config<GemmConfig<BLOCK_M, BLOCK_N, 1, kSwapAB, kScale, OutT, true, true>>(
          plan, args, stream);
  } else {
    if (args.gemm.quantize_input_in_kernel)
      throw Error(Error::Kind::kNotImplemented, "only swapAB tiles of up to " +
                                                    std::to_string(kMaxQuantizeInputRows) +
                                                    " tokens quantize their input in the kernel");
  }
  launch_grouped_config<
      GemmConfig<BLOCK_M, BLOCK_N, kMulticast, kSwapAB, kScale, OutT, false, true, kMulticastA>>(plan, args,
                                                                                                 stream);
}

// Runs entry I of heuristics::kGroupedTileShapes if the plan names it (and it is compiled for kScale).
template <class OutT, WeightScaleKind kScale, std::size_t I>
bool launch_grouped_if(const heuristics::GemmPlan& plan, const GroupedGemmArgs& args, cudaStream_t stream) {
  constexpr heuristics::TileShape kTile = heuristics::kGroupedTileShapes[I];
  if constexpr (heuristics::grouped_tile_compiled(kTile, kScale == WeightScaleKind::kPerRow)) {
    if (plan.tile == kTile) {
      launch_grouped_tile<OutT, kScale, kTile.block_m, kTile.block_n, kTile.multicast, kTile.swap_ab,
                          kTile.multicast_a>(plan, args, stream);
      return true;
    }
  }
  return false;
}

// One kernel family per compiled entry of heuristics::kGroupedTileShapes; runs the one the plan names.
template <class OutT, WeightScaleKind kScale, std::size_t... I>
void dispatch_grouped_tile(const heuristics::GemmPlan& plan, const GroupedGemmArgs& args, cudaStream_t stream,
                           std::index_sequence<I...>) {
  const bool launched = (launch_grouped_if<OutT, kScale, I>(plan, args, stream) || ...);
  if (!launched)
    throw Error(Error::Kind::kNotImplemented,
                "plan names a tile shape with no compiled grouped kernel for this weight-scale kind");
}

template <class OutT, WeightScaleKind kScale>
void launch_fp8_gemm_grouped_for(const heuristics::GemmPlan& plan, const GroupedGemmArgs& args,
                                 cudaStream_t stream) {
  dispatch_grouped_tile<OutT, kScale>(plan, args, stream,
                                      std::make_index_sequence<heuristics::kNumGroupedTileShapes>{});
}

}  // namespace blockgemm::kernels::detail
