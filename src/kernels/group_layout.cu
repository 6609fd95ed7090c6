// DeepGEMM's per-row group index -> per-group row ranges (GroupTableKind::kRanges), on the device.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>

#include "kernels/launch.h"

namespace blockgemm::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 1024;

// Only the rows where a group's run starts or ends write (two atomics per run, not one per row): row r
// starts a run of group g when the row before it has another index, ends one when the row after it does.
// atomicMax keeps the first start (stored as m - row) and the last end of a group whose rows are not one
// run (validate_group_index reports that layout; the kernel only has to stay memory-safe on it).
__global__ void __launch_bounds__(kThreads)
    group_index_to_ranges_kernel(const int32_t* __restrict__ index, int m, int num_groups,
                                 int32_t* __restrict__ ranges) {
  for (int row = blockIdx.x * kThreads + threadIdx.x; row < m; row += gridDim.x * kThreads) {
    const int group = index[row];
    if (group < 0 || group >= num_groups) continue;  // padding (any value outside [0, G))
    if (row == 0 || index[row - 1] != group) atomicMax(ranges + 2 * group, m - row);
    if (row == m - 1 || index[row + 1] != group) atomicMax(ranges + 2 * group + 1, row + 1);
  }
}

}  // namespace

void launch_group_index_to_ranges(const int32_t* group_index, int64_t m, int num_groups, int32_t* ranges,
                                  cudaStream_t stream) {
  cudaError_t status =
      cudaMemsetAsync(ranges, 0, static_cast<std::size_t>(num_groups) * 2 * sizeof(int32_t), stream);
  if (status == cudaSuccess && m > 0) {
    const int64_t blocks = std::min<int64_t>((m + kThreads - 1) / kThreads, kMaxBlocks);
    int rows = static_cast<int>(m);
    void* args[] = {&group_index, &rows, &num_groups, &ranges};
    // The launch's own status: a stale error of an unrelated earlier call is not this launch failing.
    status = cudaLaunchKernel(reinterpret_cast<const void*>(&group_index_to_ranges_kernel),
                              dim3(static_cast<unsigned>(blocks)), dim3(kThreads), args, 0, stream);
  }
  if (status != cudaSuccess)
    throw Error(Error::Kind::kDevice, std::string("grouped_gemm_contiguous: group index conversion: ") +
                                          cudaGetErrorString(status));
}

}  // namespace blockgemm::kernels
