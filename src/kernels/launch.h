// Host-side entry to the kernels: plain C++ (no CUDA device code), called by the API after validation.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "blockgemm/tensor.h"
#include "heuristics/heuristics.h"
#include "kernels/gemm_config.h"

namespace blockgemm::kernels {

// A validated problem. Strides are in elements. The kernel takes fp8 operands only: a bf16 operand
// (quantize_input / quantize_weight) is first quantized into a workspace, which replaces a (or b) and its
// scales here before launch.
struct Fp8GemmArgs {
  int m, n, k;
  const void* a;  // (M, K) fp8 (or bf16 to quantize), row stride a_row_stride
  int64_t a_row_stride;
  const void* b;  // (N, K) fp8 (or bf16 to quantize)
  int64_t b_row_stride;
  bool quantize_input, quantize_weight;
  const float* scale_a;
  int64_t scale_a_row_stride, scale_a_k_stride;
  const float* scale_b;
  int64_t scale_b_row_stride, scale_b_k_stride;
  bool per_row_weight_scale;
  void* out;  // (M, N) out_dtype
  int64_t out_row_stride;
  DType out_dtype;
  // The kernel quantizes the bf16 input itself (swapAB plans only): a is the bf16 input, a_row_stride in
  // elements, and scale_a is unused. Set by the API instead of running per_token_cast_to_fp8 first.
  bool quantize_input_in_kernel;
};

// Launches the kernel the plan names on `stream`. Throws blockgemm::Error on a CUDA failure.
void launch_fp8_gemm(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream);

// A validated grouped problem (blockgemm/grouped.h). `gemm` describes the 2-D views: m rows of the input and
// out (M_total, or G * M_max for the masked layout), n columns of one group, b the (G N, K) weight with its
// row stride, scales with their per-group strides below. The kernel reads fp8 operands only: a bf16 input is
// quantized first (into a workspace, which replaces a and scale_a) unless gemm.quantize_input_in_kernel.
struct GroupedGemmArgs {
  Fp8GemmArgs gemm;
  int num_groups;
  GroupTableKind table_kind;
  const int32_t* table;  // device memory; see GroupTableKind
  int rows_per_group;    // kMasked: M_max
  int64_t scale_a_group_stride;
  int scale_a_group_rows;
  int64_t scale_b_group_stride;
};

// Launches the grouped kernel the plan names (a tile of heuristics::kGroupedTileShapes, bf16 out). Throws
// blockgemm::Error on a CUDA failure or a plan with no compiled kernel.
void launch_fp8_gemm_grouped(const heuristics::GemmPlan& plan, const GroupedGemmArgs& args,
                             cudaStream_t stream);

// Turns DeepGEMM's per-row group index (int32 (m,), -1 or any value outside [0, G) for a padding row) into
// per-group row ranges for GroupTableKind::kRanges: ranges (G, 2) int32, zeroed first, then (m - first row,
// last row + 1) of each group (0, 0 for a group with no rows). A memset and one kernel on `stream`:
// capturable, no host synchronisation.
void launch_group_index_to_ranges(const int32_t* group_index, int64_t m, int num_groups, int32_t* ranges,
                                  cudaStream_t stream);

}  // namespace blockgemm::kernels
