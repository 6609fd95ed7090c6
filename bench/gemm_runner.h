// One GEMM shape end to end: operands, the CPU reference, every backend checked against it and
// captured into a graph (blockgemm through its public API, its bf16-operand paths, cuBLASLt block
// scaling, cuBLAS bf16), then the timing protocols over all of them.
#pragma once

#include <cuda_runtime_api.h>

#include <memory>

#include "baselines.h"
#include "host_data.h"
#include "nvml_monitor.h"
#include "options.h"
#include "results.h"

namespace blockgemm_bench {

constexpr std::size_t kBaselineWorkspaceBytes = std::size_t{32} << 20;

// What lives across shapes: the stream, the baselines' handles, NVML, and the last weight (reused while
// consecutive shapes share (N, K)).
struct GemmBackends {
  cudaStream_t stream = nullptr;
  int device = 0;
  const NvmlMonitor* nvml = nullptr;
  std::unique_ptr<CublasLtBlockScaledGemm> lt;
  std::unique_ptr<CublasBf16Gemm> bf16;
  std::shared_ptr<const HostWeight> last_weight;
};

// Throws FatalDeviceError when the context is lost; any other failure is recorded in the result.
ShapeResult run_shape(const Shape& shape, const Options& options, GemmBackends& backends);

}  // namespace blockgemm_bench
