// fp8_blockscale_gemm_sm90: validate, plan, launch.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

#include "api/validate.h"
#include "blockgemm/blockgemm.h"
#include "heuristics/heuristics.h"
#include "kernels/launch.h"

namespace blockgemm {
namespace {

constexpr int kMaxDevices = 64;

// SM counts are queried once per device: the hot path makes no driver queries beyond the current device.
heuristics::DeviceModel device_model(int device) {
  static std::array<int, kMaxDevices> sm_counts{};
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if (device >= 0 && device < kMaxDevices && sm_counts[device] == 0) {
    int count = 0;
    if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || count <= 0)
      throw Error(Error::Kind::kDevice, "cannot read the SM count of cuda:" + std::to_string(device));
    sm_counts[device] = count;
  }
  heuristics::DeviceModel model;
  model.num_sms = (device >= 0 && device < kMaxDevices) ? sm_counts[device] : model.num_sms;
  return model;
}

void require_current_device(int device) {
  int current = -1;
  cudaGetDevice(&current);
  if (current != device)
    throw Error(Error::Kind::kDevice,
                "fp8_blockscale_gemm_sm90: tensors are on cuda:" + std::to_string(device) +
                    " but the current device is cuda:" + std::to_string(current) +
                    " (call cudaSetDevice first)");
}

// BLOCKGEMM_FORCE_TILE=MxN[xMULTICAST] (a compiled tile shape) overrides the heuristics: a tuning aid for the
// benchmark, read once.
std::optional<heuristics::TileShape> forced_tile() {
  static const std::optional<heuristics::TileShape> tile = []() -> std::optional<heuristics::TileShape> {
    const char* text = std::getenv("BLOCKGEMM_FORCE_TILE");
    if (text == nullptr) return std::nullopt;
    int block_m = 0, block_n = 0, multicast = 1;
    if (std::sscanf(text, "%dx%dx%d", &block_m, &block_n, &multicast) < 2) return std::nullopt;
    for (const heuristics::TileShape& t : heuristics::kTileShapes)
      if (t.block_m == block_m && t.block_n == block_n && t.multicast == multicast) return t;
    return std::nullopt;
  }();
  return tile;
}

heuristics::GemmPlan make_plan(int64_t m, int64_t n, int64_t k, const heuristics::DeviceModel& model) {
  heuristics::GemmPlan plan = heuristics::plan_gemm(m, n, k, model);
  if (const auto tile = forced_tile()) {
    plan.tile = *tile;
    plan.num_tiles = heuristics::num_tiles_launched(*tile, m, n);
    plan.grid = heuristics::grid_for(*tile, plan.num_tiles, model.num_sms);
    plan.num_waves = (plan.num_tiles + plan.grid - 1) / plan.grid;
  }
  return plan;
}

}  // namespace

void fp8_blockscale_gemm_sm90(const TensorView& input, const TensorView& weight,
                              const std::optional<TensorView>& input_scale,
                              const std::optional<TensorView>& weight_scale, const TensorView& out,
                              std::optional<DType> out_dtype, cudaStream_t stream) {
  const kernels::Fp8GemmArgs args =
      api::validate_gemm_args(input, weight, input_scale, weight_scale, out, out_dtype);
  api::require_hopper(input.device);
  require_current_device(input.device);
  if (args.m == 0) return;
  const heuristics::GemmPlan plan = make_plan(args.m, args.n, args.k, device_model(input.device));
  kernels::launch_fp8_gemm(plan, args, stream);
}

DeviceTensor fp8_blockscale_gemm_sm90(const TensorView& input, const TensorView& weight,
                                      const std::optional<TensorView>& input_scale,
                                      const std::optional<TensorView>& weight_scale,
                                      std::optional<DType> out_dtype, cudaStream_t stream) {
  const DType dtype = out_dtype.value_or(DType::kBFloat16);
  if (input.rank != 2 || weight.rank != 2 || input.device == TensorView::kHostDevice) {
    // Let the full validation name the bad argument.
    fp8_blockscale_gemm_sm90(input, weight, input_scale, weight_scale, TensorView{}, out_dtype, stream);
  }
  DeviceTensor out(dtype, input.rows(), weight.rows(), input.device);
  fp8_blockscale_gemm_sm90(input, weight, input_scale, weight_scale, out.view(), dtype, stream);
  return out;
}

std::string describe_plan(int64_t m, int64_t n, int64_t k, DType /*out_dtype*/,
                          bool /*per_row_weight_scale*/) {
  int device = 0;
  cudaGetDevice(&device);
  heuristics::DeviceModel model;
  int count = 0;
  if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) == cudaSuccess && count > 0)
    model.num_sms = count;
  else
    cudaGetLastError();
  return make_plan(m, n, k, model).describe();
}

}  // namespace blockgemm
