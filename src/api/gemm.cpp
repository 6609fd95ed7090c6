// fp8_blockscale_gemm_sm90: validate, plan, launch.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>

#include "api/argument_check.h"
#include "api/validate.h"
#include "api/workspace.h"
#include "blockgemm/blockgemm.h"
#include "blockgemm/quantize.h"
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

// BLOCKGEMM_FORCE_TILE=MxN[xMULTICAST][s|a] (a compiled tile shape; a trailing "s" for swapAB, "a" for a
// cluster that shares the input tile) overrides the heuristics: a tuning aid for the benchmark, read once.
std::optional<heuristics::TileShape> forced_tile() {
  static const std::optional<heuristics::TileShape> tile = []() -> std::optional<heuristics::TileShape> {
    const char* text = std::getenv("BLOCKGEMM_FORCE_TILE");
    if (text == nullptr) return std::nullopt;
    int block_m = 0, block_n = 0, multicast = 1;
    if (std::sscanf(text, "%dx%dx%d", &block_m, &block_n, &multicast) < 2) return std::nullopt;
    const bool swap_ab = std::strchr(text, 's') != nullptr;
    const bool multicast_a = std::strchr(text, 'a') != nullptr;
    for (const heuristics::TileShape& t : heuristics::kTileShapes)
      if (t == heuristics::TileShape{block_m, block_n, multicast, swap_ab, multicast_a}) return t;
    return std::nullopt;
  }();
  return tile;
}

// BLOCKGEMM_FORCE_SPLITS=S overrides the split-K factor (clamped to the K blocks), likewise.
int forced_splits() {
  static const int splits = [] {
    const char* text = std::getenv("BLOCKGEMM_FORCE_SPLITS");
    return text ? std::max(1, std::atoi(text)) : 0;
  }();
  return splits;
}

// BLOCKGEMM_RASTER_GROUP=C (C weight column blocks per raster group of the tile order, >= 1) likewise.
int forced_raster_group() {
  static const int cols = [] {
    const char* text = std::getenv("BLOCKGEMM_RASTER_GROUP");
    return text ? std::max(0, std::atoi(text)) : 0;
  }();
  return cols;
}

heuristics::GemmPlan make_plan(int64_t m, int64_t n, int64_t k, const heuristics::DeviceModel& model) {
  heuristics::GemmPlan plan = heuristics::plan_gemm(m, n, k, model);
  const auto tile = forced_tile();
  const int splits = forced_splits();
  if (tile || splits) {
    const heuristics::TileShape shape = tile ? *tile : plan.tile;
    int k_splits = splits ? splits : plan.k_splits;
    // Only swapAB tiles split K, into at most a portable cluster's CTAs, each with a K block.
    k_splits =
        shape.swap_ab ? static_cast<int>(std::min<int64_t>({k_splits, heuristics::kMaxSplitK, k / 128})) : 1;
    plan = heuristics::make_plan(shape, std::max(k_splits, 1), m, n, k, model);
  }
  if (const int cols = forced_raster_group()) plan.raster_group_cols = cols;
  return plan;
}

api::QuantizedLayout quantized_layout(const kernels::Fp8GemmArgs& args) {
  return {args.m, args.n, args.k, args.quantize_input, args.quantize_weight};
}

// Quantizes the bf16 operands into `workspace` and points `args` at the fp8 copies and their scales:
// the input per 1x128 group (scales column-major, the layout the kernel reads coalesced), the weight per
// 128x128 block.
void quantize_operands(const TensorView& input, const TensorView& weight, kernels::Fp8GemmArgs& args,
                       void* workspace, cudaStream_t stream) {
  const api::QuantizedLayout layout = quantized_layout(args);
  auto* base = static_cast<uint8_t*>(workspace);
  const int64_t k_groups = args.k / 128;
  const int device = input.device;
  if (args.quantize_input) {
    auto* values = base + layout.input_values_offset();
    auto* scales = reinterpret_cast<float*>(base + layout.input_scales_offset());
    per_token_cast_to_fp8(
        input, TensorView::matrix(values, DType::kFloat8E4M3, args.m, args.k, device),
        TensorView::strided(scales, DType::kFloat32, args.m, k_groups, 1, layout.input_scale_ld(), device),
        stream);
    args.a = values;
    args.a_row_stride = args.k;
    args.scale_a = scales;
    args.scale_a_row_stride = 1;
    args.scale_a_k_stride = layout.input_scale_ld();
  }
  if (args.quantize_weight) {
    auto* values = base + layout.weight_values_offset();
    auto* scales = reinterpret_cast<float*>(base + layout.weight_scales_offset());
    const int64_t n_blocks = (args.n + 127) / 128;
    per_block_cast_to_fp8(weight, TensorView::matrix(values, DType::kFloat8E4M3, args.n, args.k, device),
                          TensorView::matrix(scales, DType::kFloat32, n_blocks, k_groups, device), stream);
    args.b = values;
    args.b_row_stride = args.k;
    args.scale_b = scales;
    args.scale_b_row_stride = k_groups;
    args.scale_b_k_stride = 1;
    args.per_row_weight_scale = false;
  }
}

// Row-major input scales, the (M, K/128) layout per_token_cast_to_fp8 returns, cost a normal tile one 4-byte
// gather per row and K block, each its own shared-memory wavefront (bench/NOTES.md #60, #63). Before a plan
// long enough to repay a ~2 us kernel they are copied M-contiguous (K/128, ceil4(M)) into the caller's
// workspace; without one (or with one too small) the kernel reads them as given: the library allocates
// nothing for an fp8 x fp8 call. Bytes of that copy, 0 where none is made.
std::size_t transposed_input_scale_bytes(int64_t m, int64_t k, const heuristics::GemmPlan& plan) {
  const auto bytes = static_cast<std::size_t>(heuristics::input_scale_copy_bytes(plan, m, k));
  return (bytes + api::kWorkspaceAlignment - 1) / api::kWorkspaceAlignment * api::kWorkspaceAlignment;
}

void transpose_input_scales(kernels::Fp8GemmArgs& args, const heuristics::GemmPlan& plan,
                            const TensorView& input, const TensorView& weight,
                            const std::optional<TensorView>& input_scale,
                            const std::optional<TensorView>& weight_scale, const TensorView& out,
                            const Workspace& workspace, cudaStream_t stream) {
  const std::size_t needed = transposed_input_scale_bytes(args.m, args.k, plan);
  if (needed == 0 || workspace.data == nullptr || workspace.bytes < needed ||
      reinterpret_cast<uintptr_t>(workspace.data) % api::kWorkspaceAlignment != 0)
    return;
  // The transpose writes the workspace while the GEMM before it in the stream may still read its operands.
  const api::ArgumentCheck check("fp8_blockscale_gemm_sm90");
  const TensorView span =
      TensorView::matrix(workspace.data, DType::kFloat8E4M3, 1, static_cast<int64_t>(needed), input.device);
  check.require_disjoint("workspace", span, "input", input);
  check.require_disjoint("workspace", span, "weight", weight);
  check.require_disjoint("workspace", span, "out", out);
  if (input_scale) check.require_disjoint("workspace", span, "input_scale", *input_scale);
  if (weight_scale) check.require_disjoint("workspace", span, "weight_scale", *weight_scale);
  api::copy_input_scales_m_contiguous(args, static_cast<float*>(workspace.data), stream);
}

}  // namespace

std::size_t fp8_blockscale_gemm_sm90_workspace_bytes(const TensorView& input, const TensorView& weight,
                                                     const std::optional<TensorView>& input_scale) {
  const bool quantize_input = input.dtype == DType::kBFloat16;
  const bool quantize_weight = weight.dtype == DType::kBFloat16;
  if (quantize_input || quantize_weight) {
    const api::QuantizedLayout layout{input.rows(), weight.rows(), input.cols(), quantize_input,
                                      quantize_weight};
    return layout.bytes();
  }
  // fp8 x fp8: room for the M-contiguous copy of row-major input scales where the plan repays it; 0 where the
  // given scales are M-contiguous already. Operands the call would refuse (the checks it makes first: dtypes,
  // ranks, shapes, the scale's dtype) get 0 here, not an error: the call reports them, with its own messages.
  constexpr int64_t kMaxDim = std::numeric_limits<int32_t>::max();
  if (input.dtype != DType::kFloat8E4M3 || weight.dtype != DType::kFloat8E4M3 || input.rank != 2 ||
      weight.rank != 2 || input.device < 0)
    return 0;
  const int64_t m = input.rows(), n = weight.rows(), k = input.cols();
  if (m < heuristics::kTransposeInputScalesMinRows || n < 1 || k < 128 || k % 128 != 0 ||
      weight.cols() != k || m > kMaxDim || n > kMaxDim || k > kMaxDim)
    return 0;
  const int64_t k_groups = k / 128;
  if (input_scale) {
    if (input_scale->rank != 2 || input_scale->dtype != DType::kFloat32) return 0;
    const bool documented = input_scale->rows() == m && input_scale->cols() == k_groups;
    const bool transposed = !documented && input_scale->rows() == k_groups && input_scale->cols() == m;
    if (!documented && !transposed) return 0;
    if (input_scale->strides[transposed ? 1 : 0] == 1) return 0;
  }
  try {
    return transposed_input_scale_bytes(m, k, make_plan(m, n, k, device_model(input.device)));
  } catch (const Error&) {
    cudaGetLastError();  // the failed SM-count query's error is not this caller's
    return 0;            // no SM count for that device: the call reports the device
  }
}

void fp8_blockscale_gemm_sm90(const TensorView& input, const TensorView& weight,
                              const std::optional<TensorView>& input_scale,
                              const std::optional<TensorView>& weight_scale, const TensorView& out,
                              std::optional<DType> out_dtype, cudaStream_t stream,
                              std::optional<Workspace> workspace) {
  kernels::Fp8GemmArgs args =
      api::validate_gemm_args(input, weight, input_scale, weight_scale, out, out_dtype);
  if (args.quantize_input || args.quantize_weight) {
    const std::size_t needed = quantized_layout(args).bytes();
    if (workspace && workspace->bytes < needed)
      throw Error(Error::Kind::kInvalidArgument, "fp8_blockscale_gemm_sm90: workspace: expected at least " +
                                                     std::to_string(needed) + " bytes, got " +
                                                     std::to_string(workspace->bytes));
    if (workspace && reinterpret_cast<uintptr_t>(workspace->data) % api::kWorkspaceAlignment != 0)
      throw Error(
          Error::Kind::kInvalidArgument,
          "fp8_blockscale_gemm_sm90: workspace: expected a 256-byte aligned pointer, got an unaligned one");
    if (workspace) {
      // The quantizers write the workspace while the operands are read and out is written.
      const api::ArgumentCheck check("fp8_blockscale_gemm_sm90");
      if (workspace->data == nullptr) check.fail("workspace", "a non-null data pointer", "nullptr");
      const TensorView span = TensorView::matrix(workspace->data, DType::kFloat8E4M3, 1,
                                                 static_cast<int64_t>(needed), input.device);
      check.require_disjoint("workspace", span, "input", input);
      check.require_disjoint("workspace", span, "weight", weight);
      check.require_disjoint("workspace", span, "out", out);
      if (input_scale) check.require_disjoint("workspace", span, "input_scale", *input_scale);
      if (weight_scale) check.require_disjoint("workspace", span, "weight_scale", *weight_scale);
    }
  }
  api::require_hopper(input.device);
  require_current_device(input.device);
  if (args.m == 0) return;
  // Planned before anything is enqueued, so a failure here leaves no orphan quantizer in the stream.
  const heuristics::GemmPlan plan = make_plan(args.m, args.n, args.k, device_model(input.device));
  // A few bf16 tokens are quantized by the GEMM itself, with operands bitwise those per_token_cast_to_fp8
  // would give.
  if (args.quantize_input && heuristics::quantizes_input_in_kernel(plan)) {
    args.quantize_input_in_kernel = true;
    args.quantize_input = false;
  }
  // Held until the kernels that use the internal workspace are enqueued (see api::WorkspaceLease).
  api::WorkspaceLease lease;
  if (args.quantize_input || args.quantize_weight) {
    if (!workspace) lease = api::internal_workspace(input.device, quantized_layout(args).bytes(), stream);
    quantize_operands(input, weight, args, workspace ? workspace->data : lease.data, stream);
  } else if (args.scale_a != nullptr && !args.quantize_input_in_kernel && args.scale_a_row_stride != 1 &&
             workspace) {
    transpose_input_scales(args, plan, input, weight, input_scale, weight_scale, out, *workspace, stream);
  }
  kernels::launch_fp8_gemm(plan, args, stream);
}

DeviceTensor fp8_blockscale_gemm_sm90(const TensorView& input, const TensorView& weight,
                                      const std::optional<TensorView>& input_scale,
                                      const std::optional<TensorView>& weight_scale,
                                      std::optional<DType> out_dtype, cudaStream_t stream) {
  const DType dtype = out_dtype.value_or(DType::kBFloat16);
  // Every argument is checked before anything is allocated.
  api::validate_gemm_operands(input, weight, input_scale, weight_scale, dtype);
  api::require_hopper(input.device);
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
