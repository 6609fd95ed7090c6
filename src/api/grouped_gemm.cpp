// grouped_gemm_contiguous / grouped_gemm_masked: validate, plan, prepare (group index conversion, bf16
// input quantization or the M-contiguous copy of fp8 input scales), launch. See blockgemm/grouped.h.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "api/argument_check.h"
#include "api/grouped_validate.h"
#include "api/validate.h"
#include "api/workspace.h"
#include "blockgemm/grouped.h"
#include "blockgemm/quantize.h"
#include "heuristics/heuristics.h"
#include "kernels/launch.h"

namespace blockgemm {
namespace {

constexpr int kMaxDevices = 64;

std::size_t align_up(std::size_t bytes) {
  return (bytes + api::kWorkspaceAlignment - 1) / api::kWorkspaceAlignment * api::kWorkspaceAlignment;
}

// SM counts, queried once per device (the dense call keeps its own cache; this file stays self-contained).
// `strict`: a failed query is an error (a launch follows); otherwise the H100 model stands in (size
// queries and descriptions on machines without a GPU).
heuristics::DeviceModel device_model(int device, bool strict) {
  static std::array<int, kMaxDevices> sm_counts{};
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  heuristics::DeviceModel model;
  if (device < 0 || device >= kMaxDevices) return model;
  if (sm_counts[device] == 0) {
    int count = 0;
    if (cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device) != cudaSuccess || count <= 0) {
      cudaGetLastError();
      if (strict)
        throw Error(Error::Kind::kDevice,
                    "grouped_gemm: cannot read the SM count of cuda:" + std::to_string(device));
      return model;
    }
    sm_counts[device] = count;
  }
  model.num_sms = sm_counts[device];
  return model;
}

void require_current_device(const char* function, int device) {
  int current = -1;
  cudaGetDevice(&current);
  if (current != device)
    throw Error(Error::Kind::kDevice, std::string(function) +
                                          ": tensors are on cuda:" + std::to_string(device) +
                                          " but the current device is cuda:" + std::to_string(current) +
                                          " (call cudaSetDevice first)");
}

// BLOCKGEMM_FORCE_GROUPED_TILE=MxN[xCLUSTER][s|a] (an entry of heuristics::kGroupedTileShapes; a trailing
// "s" for swapAB, "a" for pairs that share the input tile) overrides the grouped heuristics: a tuning aid for
// the benchmark, read once. Ignored where the tile is not compiled for the call's weight-scale kind.
std::optional<heuristics::TileShape> forced_grouped_tile() {
  static const std::optional<heuristics::TileShape> tile = []() -> std::optional<heuristics::TileShape> {
    const char* text = std::getenv("BLOCKGEMM_FORCE_GROUPED_TILE");
    if (text == nullptr) return std::nullopt;
    int block_m = 0, block_n = 0, multicast = 1;
    if (std::sscanf(text, "%dx%dx%d", &block_m, &block_n, &multicast) < 2) return std::nullopt;
    const bool swap_ab = std::strchr(text, 's') != nullptr;
    const bool multicast_a = std::strchr(text, 'a') != nullptr;
    for (const heuristics::TileShape& t : heuristics::kGroupedTileShapes)
      if (t == heuristics::TileShape{block_m, block_n, multicast, swap_ab, multicast_a}) return t;
    return std::nullopt;
  }();
  return tile;
}

// What a grouped call plans from: the 2-D view's rows, the groups, the hint, and the problem.
struct PlanInput {
  bool masked;
  int64_t m, num_groups, m_max, expected_m, n, k;
  bool per_row;
};

heuristics::GemmPlan make_plan(const PlanInput& in, const heuristics::DeviceModel& model) {
  heuristics::GemmPlan plan =
      in.masked ? heuristics::plan_grouped_masked(in.num_groups, in.m_max, in.expected_m, in.n, in.k,
                                                  in.per_row, model)
                : heuristics::plan_grouped_contiguous(in.m, in.num_groups, in.n, in.k, in.per_row, model);
  const auto forced = forced_grouped_tile();
  if (forced && heuristics::grouped_tile_compiled(*forced, in.per_row)) {
    const int64_t rows = in.masked ? std::clamp<int64_t>(in.expected_m, 1, std::max<int64_t>(in.m_max, 1))
                                   : heuristics::grouped_average_rows(in.m, in.num_groups);
    const int64_t max_tiles =
        in.masked ? heuristics::masked_tiles_upper_bound(*forced, in.num_groups, in.m_max, in.n)
                  : heuristics::contiguous_tiles_upper_bound(*forced, in.m, in.num_groups, in.n);
    plan = heuristics::make_grouped_plan(*forced, max_tiles, in.num_groups, rows, in.n, in.k, model);
  }
  return plan;
}

// Workspace of a grouped call: [per-group ranges of the group index form][the quantized bf16 input, or the
// M-contiguous copy of an fp8 input's row-major scales].
struct GroupedWorkspaceLayout {
  int64_t num_groups = 0;
  bool ranges = false;
  api::QuantizedLayout quantized{0, 0, 0, false, false};
  std::size_t scale_copy_bytes = 0;
  std::size_t ranges_bytes() const {
    return ranges ? align_up(static_cast<std::size_t>(num_groups) * 2 * sizeof(int32_t)) : 0;
  }
  std::size_t quantized_offset() const { return ranges_bytes(); }
  std::size_t scale_copy_offset() const { return ranges_bytes(); }
  // What the call needs (ranges, quantized input) and what the size query asks for: also the scale copy,
  // made only where a caller's workspace holds it (like the dense call's, optional).
  std::size_t required_bytes() const { return ranges_bytes() + (quantized.input ? quantized.bytes() : 0); }
  std::size_t bytes() const { return required_bytes() + scale_copy_bytes; }
};

// An fp8 input's scales, row-major as per_token_cast_to_fp8 returns them, are copied M-contiguous before the
// plans of 128-row tiles (heuristics::transposes_grouped_input_scales): those read such scales as one bulk
// copy per stage (bench/NOTES.md #70, #71, #72). The masked layout's copy moves only the rows below each
// group's count, into room for M_max rows per group, and only where M_max is within a few times the
// expected M (heuristics::transposes_masked_input_scales; #73).
GroupedWorkspaceLayout workspace_layout(const PlanInput& in, bool bf16_input, bool group_index,
                                        const heuristics::GemmPlan& plan) {
  GroupedWorkspaceLayout layout;
  layout.num_groups = in.num_groups;
  layout.ranges = group_index;
  const bool quantize_outside = bf16_input && !heuristics::quantizes_input_in_kernel(plan);
  layout.quantized = api::QuantizedLayout{in.m, in.n, in.k, quantize_outside, false};
  if (!bf16_input && !in.masked)
    layout.scale_copy_bytes =
        align_up(static_cast<std::size_t>(heuristics::input_scale_copy_bytes(plan, in.m, in.k, true)));
  // (The copy's grid has ceil(K/128 / 32) blocks on y, at most 65535, as input_scale_copy_bytes checks.)
  if (!bf16_input && in.masked && in.k / 128 <= int64_t{65535} * 32 &&
      heuristics::transposes_masked_input_scales(plan, in.num_groups, in.m_max, in.expected_m))
    layout.scale_copy_bytes = align_up(static_cast<std::size_t>(
        in.num_groups * (in.k / 128) * api::masked_input_scale_ld(in.m_max) * int64_t{sizeof(float)}));
  return layout;
}

// Checks a caller's workspace: large enough, aligned, and disjoint from everything the call reads or writes.
void check_workspace(const char* function, const Workspace& workspace, std::size_t needed,
                     const std::vector<std::pair<const char*, const TensorView*>>& views) {
  const api::ArgumentCheck check(function);
  if (workspace.bytes < needed)
    check.fail("workspace", "at least " + std::to_string(needed) + " bytes", std::to_string(workspace.bytes));
  if (needed == 0) return;
  if (workspace.data == nullptr) check.fail("workspace", "a non-null data pointer", "nullptr");
  if (reinterpret_cast<uintptr_t>(workspace.data) % api::kWorkspaceAlignment != 0)
    check.fail("workspace", "a 256-byte aligned pointer", "an unaligned one");
  const auto begin = reinterpret_cast<uintptr_t>(workspace.data), end = begin + needed;
  for (const auto& [name, t] : views) {
    if (t == nullptr || t->numel() <= 0) continue;
    int64_t last = 0;
    for (int i = 0; i < t->rank; ++i) last += (t->shape[i] - 1) * t->strides[i];
    const auto t_begin = reinterpret_cast<uintptr_t>(t->data);
    const auto t_end = t_begin + static_cast<uintptr_t>(last + 1) * dtype_size(t->dtype);
    if (begin < t_end && t_begin < end)
      check.fail("workspace", std::string("memory disjoint from ") + name, "overlapping buffers");
  }
}

// Quantizes the bf16 2-D view of the input into the workspace (per 1x128 group, column-major scales) and
// points the kernel arguments at the fp8 copy.
void quantize_input(const TensorView& input_matrix, kernels::GroupedGemmArgs& args,
                    const GroupedWorkspaceLayout& layout, uint8_t* workspace, cudaStream_t stream) {
  const api::QuantizedLayout& q = layout.quantized;
  uint8_t* base = workspace + layout.quantized_offset();
  auto* values = base + q.input_values_offset();
  auto* scales = reinterpret_cast<float*>(base + q.input_scales_offset());
  const int64_t m = q.m, k = q.k;
  per_token_cast_to_fp8(
      input_matrix, TensorView::matrix(values, DType::kFloat8E4M3, m, k, input_matrix.device),
      TensorView::strided(scales, DType::kFloat32, m, k / 128, 1, q.input_scale_ld(), input_matrix.device),
      stream);
  args.gemm.a = values;
  args.gemm.a_row_stride = k;
  args.gemm.scale_a = scales;
  args.gemm.scale_a_row_stride = 1;
  args.gemm.scale_a_k_stride = q.input_scale_ld();
  // A 2-D scale over the whole view: rows are the view's.
  args.scale_a_group_stride = 0;
  args.scale_a_group_rows = 0;
  args.gemm.quantize_input = false;
}

// Plans, prepares and launches a validated problem. `input_matrix` is the 2-D view of the input.
void run(const char* function, api::GroupedProblem& problem, const PlanInput& in,
         const TensorView& input_matrix, const std::vector<std::pair<const char*, const TensorView*>>& views,
         cudaStream_t stream, const std::optional<Workspace>& workspace) {
  const int device = input_matrix.device;
  api::require_hopper(device);
  require_current_device(function, device);
  const heuristics::GemmPlan plan = make_plan(in, device_model(device, true));
  kernels::GroupedGemmArgs& args = problem.args;
  const bool bf16_input = args.gemm.quantize_input;
  const GroupedWorkspaceLayout layout =
      workspace_layout(in, bf16_input, problem.group_index != nullptr, plan);
  const std::size_t needed = layout.required_bytes();
  const bool copies_scales = layout.scale_copy_bytes > 0 && args.gemm.scale_a_row_stride != 1 && workspace &&
                             workspace->bytes >= layout.bytes();
  if (workspace) check_workspace(function, *workspace, copies_scales ? layout.bytes() : needed, views);
  if (problem.m == 0) return;  // no rows: nothing to compute, nothing to write
  // bf16 tokens of a tile of up to 32 are quantized by the kernel itself, bitwise as per_token_cast_to_fp8.
  if (bf16_input && heuristics::quantizes_input_in_kernel(plan)) {
    args.gemm.quantize_input_in_kernel = true;
    args.gemm.quantize_input = false;
  }
  // Held until the kernels that use the internal workspace are enqueued (see api::WorkspaceLease).
  api::WorkspaceLease lease;
  uint8_t* scratch = nullptr;
  if (needed > 0 || copies_scales) {
    if (!workspace) lease = api::internal_workspace(device, needed, stream);
    scratch = static_cast<uint8_t*>(workspace ? workspace->data : lease.data);
  }
  if (args.gemm.quantize_input) quantize_input(input_matrix, args, layout, scratch, stream);
  // Scales already M-contiguous (row stride 1) are read as given.
  if (copies_scales) {
    auto* copy = reinterpret_cast<float*>(scratch + layout.scale_copy_offset());
    if (in.masked)
      api::copy_masked_input_scales_m_contiguous(args, copy, stream);
    else
      api::copy_input_scales_m_contiguous(args.gemm, copy, stream);
  }
  // The conversion runs right before the GEMM, which reads the ranges after griddepcontrol.wait: that waits
  // for the kernel just before it in the stream, launched without programmatic serialisation and so after
  // everything earlier, whatever the quantizer's launch does.
  if (problem.group_index != nullptr) {
    auto* ranges = reinterpret_cast<int32_t*>(scratch);
    kernels::launch_group_index_to_ranges(problem.group_index, problem.m,
                                          static_cast<int>(problem.num_groups), ranges, stream);
    args.table = ranges;
  }
  kernels::launch_fp8_gemm_grouped(plan, args, stream);
}

PlanInput contiguous_plan_input(int64_t m, int64_t num_groups, int64_t n, int64_t k, bool per_row) {
  return {false, m, num_groups, 0, 0, n, k, per_row};
}
PlanInput masked_plan_input(int64_t num_groups, int64_t m_max, int64_t expected_m, int64_t n, int64_t k,
                            bool per_row) {
  return {true, num_groups * m_max, num_groups, m_max, expected_m, n, k, per_row};
}

bool per_row_scale(const std::optional<TensorView>& weight_scale, int64_t n) {
  return weight_scale && weight_scale->rank == 3 && weight_scale->shape[1] == n;
}

// Copies `count` int32 from `data` (device memory, or host memory for kHostDevice) to the host.
std::vector<int32_t> copy_table(const char* function, const char* name, const Int32View& view,
                                cudaStream_t stream) {
  const api::ArgumentCheck check(function);
  if (view.size < 0) check.fail(name, "a non-negative size", std::to_string(view.size));
  if (view.data == nullptr && view.size > 0) check.fail(name, "a non-null data pointer", "nullptr");
  if (view.size > 1 && view.stride != 1)
    check.fail(std::string(name) + " stride", "1", std::to_string(view.stride));
  std::vector<int32_t> host(static_cast<std::size_t>(view.size));
  if (view.size == 0) return host;
  if (view.device == TensorView::kHostDevice) {
    std::memcpy(host.data(), view.data, host.size() * sizeof(int32_t));
    return host;
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess) {
    cudaGetLastError();
    capture = cudaStreamCaptureStatusActive;
  }
  if (capture != cudaStreamCaptureStatusNone)
    check.fail(
        name,
        "to be validated outside CUDA graph capture (validation copies it to the host and synchronises)",
        "a capturing stream");
  cudaError_t status =
      cudaMemcpyAsync(host.data(), view.data, host.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, stream);
  if (status == cudaSuccess) status = cudaStreamSynchronize(stream);
  if (status != cudaSuccess) {
    cudaGetLastError();
    throw Error(Error::Kind::kDevice, std::string(function) + ": " + name +
                                          ": copy to the host failed: " + cudaGetErrorString(status));
  }
  return host;
}

}  // namespace

int64_t contiguous_group_alignment() {
  return 128;
}

std::size_t grouped_gemm_contiguous_workspace_bytes(const TensorView& input, const TensorView& weight,
                                                    const GroupLayout& groups,
                                                    const std::optional<TensorView>& weight_scale,
                                                    const std::optional<TensorView>& input_scale) {
  if (weight.rank != 3) return 0;  // the call reports it
  const int64_t g = weight.shape[0], n = weight.shape[1], k = input.rank == 2 ? input.cols() : 0;
  const PlanInput in = contiguous_plan_input(input.rows(), g, n, k, per_row_scale(weight_scale, n));
  const heuristics::GemmPlan plan = make_plan(in, device_model(input.device, false));
  GroupedWorkspaceLayout layout = workspace_layout(in, input.dtype == DType::kBFloat16,
                                                   groups.kind == GroupLayout::Kind::kGroupIndex, plan);
  // The call copies only row-major scales (a 2-D view whose rows are not 1 apart).
  if (input_scale && input_scale->rank == 2 && input_scale->strides[0] == 1) layout.scale_copy_bytes = 0;
  return layout.bytes();
}

std::size_t grouped_gemm_masked_workspace_bytes(const TensorView& input, const TensorView& weight,
                                                std::optional<int64_t> expected_m,
                                                const std::optional<TensorView>& weight_scale,
                                                const std::optional<TensorView>& input_scale) {
  if (weight.rank != 3 || input.rank != 3) return 0;  // the call reports it
  const int64_t g = weight.shape[0], n = weight.shape[1], k = input.shape[2], m_max = input.shape[1];
  const PlanInput in = masked_plan_input(g, m_max, expected_m.value_or(std::max<int64_t>(m_max, 1)), n, k,
                                         per_row_scale(weight_scale, n));
  const heuristics::GemmPlan plan = make_plan(in, device_model(input.device, false));
  GroupedWorkspaceLayout layout = workspace_layout(in, input.dtype == DType::kBFloat16, false, plan);
  // The call copies only scales whose rows are not 1 apart.
  if (input_scale && input_scale->rank == 3 && input_scale->strides[1] == 1) layout.scale_copy_bytes = 0;
  return layout.bytes();
}

void grouped_gemm_contiguous(const TensorView& input, const TensorView& weight,
                             const std::optional<TensorView>& input_scale,
                             const std::optional<TensorView>& weight_scale, const GroupLayout& groups,
                             const TensorView& out, std::optional<DType> out_dtype, cudaStream_t stream,
                             std::optional<Workspace> workspace) {
  api::GroupedProblem problem =
      api::validate_grouped_contiguous(input, weight, input_scale, weight_scale, groups, out, out_dtype);
  const kernels::Fp8GemmArgs& a = problem.args.gemm;
  const PlanInput in = contiguous_plan_input(problem.m, problem.num_groups, a.n, a.k, a.per_row_weight_scale);
  // The table's bytes, for the workspace overlap check (4-byte elements, like int32).
  const TensorView table = TensorView::matrix(const_cast<int32_t*>(groups.table.data), DType::kFloat32, 1,
                                              groups.table.size, groups.table.device);
  run("grouped_gemm_contiguous", problem, in, input,
      {{"input", &input},
       {"weight", &weight},
       {"input_scale", input_scale ? &*input_scale : nullptr},
       {"weight_scale", weight_scale ? &*weight_scale : nullptr},
       {"out", &out},
       {groups.kind == GroupLayout::Kind::kOffsets ? "offsets" : "group_index", &table}},
      stream, workspace);
}

void grouped_gemm_masked(const TensorView& input, const TensorView& weight,
                         const std::optional<TensorView>& input_scale,
                         const std::optional<TensorView>& weight_scale, const Int32View& masked_m,
                         std::optional<int64_t> expected_m, const TensorView& out,
                         std::optional<DType> out_dtype, cudaStream_t stream,
                         std::optional<Workspace> workspace) {
  api::GroupedProblem problem = api::validate_grouped_masked(input, weight, input_scale, weight_scale,
                                                             masked_m, expected_m, out, out_dtype);
  const kernels::Fp8GemmArgs& a = problem.args.gemm;
  const PlanInput in = masked_plan_input(problem.num_groups, problem.m_max, problem.expected_m, a.n, a.k,
                                         a.per_row_weight_scale);
  const TensorView input_matrix =
      TensorView::strided(input.data, input.dtype, problem.m, a.k, a.a_row_stride, 1, input.device);
  // The table's bytes, for the workspace overlap check (4-byte elements, like int32).
  const TensorView table = TensorView::matrix(const_cast<int32_t*>(masked_m.data), DType::kFloat32, 1,
                                              masked_m.size, masked_m.device);
  run("grouped_gemm_masked", problem, in, input_matrix,
      {{"input", &input},
       {"weight", &weight},
       {"input_scale", input_scale ? &*input_scale : nullptr},
       {"weight_scale", weight_scale ? &*weight_scale : nullptr},
       {"out", &out},
       {"masked_m", &table}},
      stream, workspace);
}

void validate_group_offsets(const Int32View& offsets, int64_t m_total, cudaStream_t stream) {
  const std::vector<int32_t> host = copy_table("validate_group_offsets", "offsets", offsets, stream);
  api::check_group_offsets("validate_group_offsets", host.data(), static_cast<int64_t>(host.size()), m_total);
}

void validate_group_index(const Int32View& group_index, int64_t num_groups, cudaStream_t stream) {
  const std::vector<int32_t> host = copy_table("validate_group_index", "group_index", group_index, stream);
  api::check_group_index("validate_group_index", host.data(), static_cast<int64_t>(host.size()), num_groups);
}

std::string describe_grouped_plan_contiguous(int64_t m_total, int64_t num_groups, int64_t n, int64_t k,
                                             bool per_row_weight_scale) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) cudaGetLastError();
  const PlanInput in = contiguous_plan_input(m_total, num_groups, n, k, per_row_weight_scale);
  return "grouped contiguous " + make_plan(in, device_model(device, false)).describe();
}

std::string describe_grouped_plan_masked(int64_t num_groups, int64_t m_max, int64_t expected_m, int64_t n,
                                         int64_t k, bool per_row_weight_scale) {
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) cudaGetLastError();
  const PlanInput in = masked_plan_input(num_groups, m_max, expected_m, n, k, per_row_weight_scale);
  return "grouped masked " + make_plan(in, device_model(device, false)).describe();
}

}  // namespace blockgemm
