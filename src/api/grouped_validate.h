// Argument validation for the grouped GEMM (blockgemm/grouped.h): everything the host can see is checked
// before anything is launched. Device-resident group tables are not read (see validate_group_offsets).
#pragma once

#include <cstdint>
#include <optional>

#include "blockgemm/grouped.h"
#include "kernels/launch.h"

namespace blockgemm::api {

// A validated grouped problem: the kernel arguments (the group table set for offsets and masked counts; for
// the group index form the caller converts `group_index` into ranges first and sets args.table), and what
// planning needs.
struct GroupedProblem {
  kernels::GroupedGemmArgs args{};
  int64_t num_groups = 0;
  int64_t m = 0;                         // rows of the 2-D view: M_total, or G * M_max
  int64_t m_max = 0;                     // masked: rows per group
  int64_t expected_m = 0;                // masked: the tile hint (M_max when not given)
  const int32_t* group_index = nullptr;  // contiguous group index form: the per-row indices
};

// Every check of grouped_gemm_contiguous's arguments (dtypes, ranks, shapes, group counts, strides, scales,
// the group table's size and placement, alignment, devices, overlaps; not the architecture). Throws
// Error(kInvalidArgument or kNotImplemented) naming the argument, the expected and the actual value.
GroupedProblem validate_grouped_contiguous(const TensorView& input, const TensorView& weight,
                                           const std::optional<TensorView>& input_scale,
                                           const std::optional<TensorView>& weight_scale,
                                           const GroupLayout& groups, const TensorView& out,
                                           std::optional<DType> out_dtype);

// The same for grouped_gemm_masked.
GroupedProblem validate_grouped_masked(const TensorView& input, const TensorView& weight,
                                       const std::optional<TensorView>& input_scale,
                                       const std::optional<TensorView>& weight_scale,
                                       const Int32View& masked_m, std::optional<int64_t> expected_m,
                                       const TensorView& out, std::optional<DType> out_dtype);

// Host copies of device-resident tables, checked (the work of validate_group_offsets and
// validate_group_index after the copy; `function` names the caller in messages).
void check_group_offsets(const char* function, const int32_t* offsets, int64_t count, int64_t m_total);
void check_group_index(const char* function, const int32_t* group_index, int64_t m_total, int64_t num_groups);

}  // namespace blockgemm::api
