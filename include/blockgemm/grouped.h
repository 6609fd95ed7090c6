// Grouped FP8 block-scaled GEMM for mixture-of-experts layers on Hopper (SM90).
//
// G groups (experts) share one launch; group g multiplies its rows of the input by its own weight:
//
//   out[rows of g] = input[rows of g] . weight[g]^T          weight (G, N, K), one (N, K) matrix per group
//
// with the dense call's scales (blockgemm.h): one fp32 per 1x128 group of each input row, and per group of
// the weight one per 128x128 block ((G, ceil(N/128), K/128)) or per 1x128 row group ((G, N, K/128)), told
// apart by shape. Two layouts of the rows:
//
//   contiguous (prefill): input (M_total, K), out (M_total, N), the groups' rows one after the other, given
//     either as offsets, int32 (G + 1,): group g owns rows [offsets[g], offsets[g + 1]) (no alignment
//     required, a group may be empty), or as DeepGEMM's per-row group index, int32 (M_total,): the group of
//     each row, -1 for a padding row, each group's rows one run (DeepGEMM starts each run at a multiple of
//     contiguous_group_alignment(); any start works here). Rows outside every group are not written.
//   masked (decode): input (G, M_max, K), out (G, M_max, N), masked_m int32 (G,): group g's valid rows are
//     its first masked_m[g]; rows past them are neither read into any result nor written.
//
// The group tables live in device memory and are read by the kernel, never by the host: a call captures
// into a CUDA graph, and replays may change the counts (a replay runs whatever the table holds then). The
// host cannot check device-resident values without synchronising, so the calls don't; the kernel is
// memory-safe on any values (offsets clamped into [0, M_total] and made non-decreasing as they are read,
// masked counts clamped into [0, M_max], group indices outside [0, G) treated as padding), but wrong values
// give wrong results. validate_group_offsets / validate_group_index check a table explicitly (they
// synchronise the stream: for tests and debugging, outside graph capture).
//
// Dtypes: fp8 e4m3 or bf16 input (bf16 is quantized inside per 1x128 group, input_scale must be None), fp8
// weight with scales (a bf16 weight is an error: quantize it once with per_block_cast_to_fp8), bf16 out.
// K a multiple of 128, N of 16. No split-K (the groups' tiles fill the SMs); see heuristics.h for the tiles.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "blockgemm/blockgemm.h"
#include "blockgemm/tensor.h"

namespace blockgemm {

// A vector of int32 (group offsets, per-row group indices, per-group row counts): pointer, length, stride
// in elements (must be 1), device.
struct Int32View {
  const int32_t* data = nullptr;
  int64_t size = 0;
  int64_t stride = 1;
  int device = TensorView::kHostDevice;

  static Int32View vector(const int32_t* data, int64_t size, int device) {
    Int32View view;
    view.data = data;
    view.size = size;
    view.device = device;
    return view;
  }
};

// How the rows of a contiguous input are split among the groups.
struct GroupLayout {
  enum class Kind { kOffsets, kGroupIndex };
  Kind kind = Kind::kOffsets;
  Int32View table;

  // offsets (G + 1,): group g owns rows [offsets[g], offsets[g + 1]).
  static GroupLayout from_offsets(const Int32View& offsets) { return {Kind::kOffsets, offsets}; }
  // group_index (M_total,): row r belongs to group group_index[r], or to none (-1: padding).
  static GroupLayout from_group_index(const Int32View& group_index) {
    return {Kind::kGroupIndex, group_index};
  }
};

// The row alignment of DeepGEMM's contiguous layout (each group's run of rows in a group index starts at a
// multiple of it): 128. Not required here (any start works); with 128-row tiles, aligned groups leave no
// tile partly padding.
int64_t contiguous_group_alignment();

// Bytes of workspace a contiguous call with these operands needs: the group index form's per-group ranges
// (8 bytes per group), and for a bf16 input its fp8 copy and scales unless the planned kernel quantizes it
// itself. For fp8 input, room for an M-contiguous copy of the input scales where the plan is a 128-row tile
// estimated at 50 us or more (bench/NOTES.md #71, #72), unless `input_scale` is given and already
// M-contiguous: optional, a workspace without it reads the scales as given; else 0 with offsets.
std::size_t grouped_gemm_contiguous_workspace_bytes(
    const TensorView& input, const TensorView& weight, const GroupLayout& groups,
    const std::optional<TensorView>& weight_scale = std::nullopt,
    const std::optional<TensorView>& input_scale = std::nullopt);

// out (M_total, N) = per group, input rows . weight[g]^T, on `stream`. No allocation (given a workspace or
// with fp8 input and offsets), no host synchronisation: capturable.
//   input        (M_total, K) fp8 e4m3 or bf16, row-major (row stride >= K, 16-byte multiple)
//   weight       (G, N, K) fp8 e4m3, row-major rows with group stride N * row stride (one (G N, K) matrix)
//   input_scale  (M_total, K/128) fp32, row- or column-major; required for fp8 input, None for bf16
//   weight_scale (G, ceil(N/128), K/128) or (G, N, K/128) fp32, each group's matrix row- or column-major,
//                any group stride
//   groups       offsets (G + 1,) or group index (M_total,), int32, contiguous, on the device
//   out          (M_total, N) bf16, row-major; rows outside every group are left as they are
// A bf16 input is quantized into `workspace` (grouped_gemm_contiguous_workspace_bytes), or into a buffer
// the library keeps per device and stream, which cannot grow during graph capture; the group index form
// needs workspace too (its ranges, computed on the device by a memset and a small kernel).
// Throws blockgemm::Error naming the argument, the expected and the given value on any bad argument.
void grouped_gemm_contiguous(const TensorView& input, const TensorView& weight,
                             const std::optional<TensorView>& input_scale,
                             const std::optional<TensorView>& weight_scale, const GroupLayout& groups,
                             const TensorView& out, std::optional<DType> out_dtype = std::nullopt,
                             cudaStream_t stream = nullptr,
                             std::optional<Workspace> workspace = std::nullopt);

// Bytes of workspace a masked call needs: for a bf16 input its fp8 copy and scales unless the planned
// kernel (from expected_m) quantizes it itself. For fp8 input, room for an M-contiguous copy of the input
// scales, (G, K/128, ceil4(M_max)) floats, where the plan is a 128-row tile estimated at 50 us or more and
// M_max is at most 4 x expected_m (bench/NOTES.md #73), unless `input_scale` is given and M-contiguous
// already: optional, a workspace without it reads the scales as given; else 0.
std::size_t grouped_gemm_masked_workspace_bytes(const TensorView& input, const TensorView& weight,
                                                std::optional<int64_t> expected_m = std::nullopt,
                                                const std::optional<TensorView>& weight_scale = std::nullopt,
                                                const std::optional<TensorView>& input_scale = std::nullopt);

// out (G, M_max, N): for each group g, rows [0, masked_m[g]) = input[g] rows . weight[g]^T; the other rows
// are not written. On `stream`, no host synchronisation: capturable, with masked_m changing between
// replays.
//   input        (G, M_max, K) fp8 e4m3 or bf16: row-major rows, group stride M_max * row stride
//   input_scale  (G, M_max, K/128) fp32, each group's matrix row- or column-major, any group stride;
//                required for fp8 input, None for bf16
//   weight, weight_scale as for the contiguous layout
//   masked_m     (G,) int32 on the device; values are clamped into [0, M_max]
//   expected_m   the typical rows per group, >= 1 (default M_max): picks the tile, nothing else
//   out          (G, M_max, N) bf16: row-major rows, group stride M_max * row stride
void grouped_gemm_masked(const TensorView& input, const TensorView& weight,
                         const std::optional<TensorView>& input_scale,
                         const std::optional<TensorView>& weight_scale, const Int32View& masked_m,
                         std::optional<int64_t> expected_m, const TensorView& out,
                         std::optional<DType> out_dtype = std::nullopt, cudaStream_t stream = nullptr,
                         std::optional<Workspace> workspace = std::nullopt);

// Explicit checks of device-resident group tables. Each copies the table to the host and synchronises
// `stream` (so not during graph capture, where it throws), then throws blockgemm::Error (kInvalidArgument)
// naming the first bad entry:
//   offsets (G + 1,): offsets[0] >= 0, non-decreasing, offsets[G] <= m_total
//   group_index (M_total,): every value in [-1, G), each group's rows one contiguous run
void validate_group_offsets(const Int32View& offsets, int64_t m_total, cudaStream_t stream = nullptr);
void validate_group_index(const Int32View& group_index, int64_t num_groups, cudaStream_t stream = nullptr);

// The kernel the dispatcher would run, as one line (tile, grid, tiles for the hint). Contiguous: M_total
// rows over G groups; masked: G groups of M_max rows, about expected_m valid.
std::string describe_grouped_plan_contiguous(int64_t m_total, int64_t num_groups, int64_t n, int64_t k,
                                             bool per_row_weight_scale = false);
std::string describe_grouped_plan_masked(int64_t num_groups, int64_t m_max, int64_t expected_m, int64_t n,
                                         int64_t k, bool per_row_weight_scale = false);

}  // namespace blockgemm
