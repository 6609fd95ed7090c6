// The grouped GEMM's part of `blockgemm._blockgemm_ext` (blockgemm/grouped.h over descriptors), registered
// by blockgemm_register_grouped() from the module definition in bindings.cpp.
//
// Descriptors are descriptors.h's: (data_ptr: int, dtype: str, shape: tuple, strides: tuple, device: int).
// Tensors here may have rank 1 to 3 (the masked layout's (G, M_max, K) input and out, the (G, N, K) weight);
// group tables are rank-1 int32 descriptors. Library errors reach Python through the module's exception
// translator (bindings.cpp), like the dense call's.
#include <cuda_runtime_api.h>
#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "blockgemm/grouped.h"
#include "blockgemm/tensor.h"
#include "descriptors.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using blockgemm::GroupLayout;
using blockgemm::Int32View;
using blockgemm::TensorView;
using blockgemm::python::Descriptor;
using blockgemm::python::DeviceGuard;
using blockgemm::python::fail;
using blockgemm::python::parse_descriptor;
using blockgemm::python::to_stream;

constexpr const char* kContiguous = "grouped_gemm_contiguous";
constexpr const char* kMasked = "grouped_gemm_masked";

// A tensor of rank 1 to 3; the library checks the rank each argument needs.
TensorView parse_tensor(const char* function, const char* argument, nb::handle desc) {
  return blockgemm::python::parse_view(function, argument, desc, 3, "a 1-D to 3-D tensor");
}

std::optional<TensorView> parse_optional_tensor(const char* function, const char* argument, nb::handle desc) {
  if (desc.is_none()) return std::nullopt;
  return parse_tensor(function, argument, desc);
}

// An int32 vector (offsets, group index, masked_m).
Int32View parse_int32(const char* function, const char* argument, nb::handle desc) {
  const Descriptor d = parse_descriptor(function, argument, desc, 1, "a 1-D int32 tensor");
  if (d.dtype != "int32") fail(function, std::string(argument) + ".dtype", "int32", d.dtype);
  Int32View view = Int32View::vector(reinterpret_cast<const int32_t*>(d.data), d.shape[0], d.device);
  view.stride = d.strides[0];
  return view;
}

GroupLayout parse_groups(const char* function, nb::handle table, const std::string& kind) {
  if (kind == "offsets") return GroupLayout::from_offsets(parse_int32(function, "offsets", table));
  if (kind == "group_index")
    return GroupLayout::from_group_index(parse_int32(function, "group_index", table));
  throw nb::value_error((std::string(function) + ": table_kind must be 'offsets' or 'group_index'").c_str());
}

std::optional<blockgemm::Workspace> workspace_of(std::uintptr_t ptr, std::size_t bytes) {
  if (bytes == 0) return std::nullopt;
  return blockgemm::Workspace{reinterpret_cast<void*>(ptr), bytes};
}

void grouped_contiguous(nb::handle input, nb::handle weight, nb::handle input_scale, nb::handle weight_scale,
                        nb::handle table, const std::string& table_kind, nb::handle out,
                        std::uintptr_t stream, std::uintptr_t workspace_ptr, std::size_t workspace_bytes) {
  const TensorView a = parse_tensor(kContiguous, "input", input);
  const TensorView b = parse_tensor(kContiguous, "weight", weight);
  const std::optional<TensorView> sa = parse_optional_tensor(kContiguous, "input_scale", input_scale);
  const std::optional<TensorView> sb = parse_optional_tensor(kContiguous, "weight_scale", weight_scale);
  const GroupLayout groups = parse_groups(kContiguous, table, table_kind);
  const TensorView c = parse_tensor(kContiguous, "out", out);
  nb::gil_scoped_release release;
  DeviceGuard guard(a.device);
  blockgemm::grouped_gemm_contiguous(a, b, sa, sb, groups, c, std::nullopt, to_stream(stream),
                                     workspace_of(workspace_ptr, workspace_bytes));
}

std::size_t grouped_contiguous_workspace_bytes(nb::handle input, nb::handle weight, nb::handle table,
                                               const std::string& table_kind, nb::handle weight_scale,
                                               nb::handle input_scale) {
  const GroupLayout groups = parse_groups(kContiguous, table, table_kind);
  return blockgemm::grouped_gemm_contiguous_workspace_bytes(
      parse_tensor(kContiguous, "input", input), parse_tensor(kContiguous, "weight", weight), groups,
      parse_optional_tensor(kContiguous, "weight_scale", weight_scale),
      parse_optional_tensor(kContiguous, "input_scale", input_scale));
}

void grouped_masked(nb::handle input, nb::handle weight, nb::handle input_scale, nb::handle weight_scale,
                    nb::handle masked_m, std::optional<int64_t> expected_m, nb::handle out,
                    std::uintptr_t stream, std::uintptr_t workspace_ptr, std::size_t workspace_bytes) {
  const TensorView a = parse_tensor(kMasked, "input", input);
  const TensorView b = parse_tensor(kMasked, "weight", weight);
  const std::optional<TensorView> sa = parse_optional_tensor(kMasked, "input_scale", input_scale);
  const std::optional<TensorView> sb = parse_optional_tensor(kMasked, "weight_scale", weight_scale);
  const Int32View counts = parse_int32(kMasked, "masked_m", masked_m);
  const TensorView c = parse_tensor(kMasked, "out", out);
  nb::gil_scoped_release release;
  DeviceGuard guard(a.device);
  blockgemm::grouped_gemm_masked(a, b, sa, sb, counts, expected_m, c, std::nullopt, to_stream(stream),
                                 workspace_of(workspace_ptr, workspace_bytes));
}

std::size_t grouped_masked_workspace_bytes(nb::handle input, nb::handle weight,
                                           std::optional<int64_t> expected_m, nb::handle weight_scale,
                                           nb::handle input_scale) {
  return blockgemm::grouped_gemm_masked_workspace_bytes(
      parse_tensor(kMasked, "input", input), parse_tensor(kMasked, "weight", weight), expected_m,
      parse_optional_tensor(kMasked, "weight_scale", weight_scale),
      parse_optional_tensor(kMasked, "input_scale", input_scale));
}

void validate_offsets(nb::handle offsets, int64_t m_total, std::uintptr_t stream) {
  const Int32View view = parse_int32("validate_group_offsets", "offsets", offsets);
  nb::gil_scoped_release release;
  DeviceGuard guard(view.device);
  blockgemm::validate_group_offsets(view, m_total, to_stream(stream));
}

void validate_index(nb::handle group_index, int64_t num_groups, std::uintptr_t stream) {
  const Int32View view = parse_int32("validate_group_index", "group_index", group_index);
  nb::gil_scoped_release release;
  DeviceGuard guard(view.device);
  blockgemm::validate_group_index(view, num_groups, to_stream(stream));
}

}  // namespace

// Called once from NB_MODULE(_blockgemm_ext, m) in bindings.cpp.
void blockgemm_register_grouped(nb::module_& m) {
  m.def(
      "grouped_gemm_contiguous", &grouped_contiguous, "input"_a, "weight"_a, "input_scale"_a.none(),
      "weight_scale"_a.none(), "table"_a, "table_kind"_a, "out"_a, "stream"_a, "workspace_ptr"_a,
      "workspace_bytes"_a,
      "Grouped GEMM, contiguous layout: table is int32 offsets (G + 1,) (table_kind 'offsets') or a per-row "
      "group index (M_total,) ('group_index'). Asynchronous.");
  m.def("grouped_contiguous_workspace_bytes", &grouped_contiguous_workspace_bytes, "input"_a, "weight"_a,
        "table"_a, "table_kind"_a, "weight_scale"_a.none(), "input_scale"_a.none() = nb::none(),
        "Bytes of workspace grouped_gemm_contiguous needs for these operands.");
  m.def("grouped_gemm_masked", &grouped_masked, "input"_a, "weight"_a, "input_scale"_a.none(),
        "weight_scale"_a.none(), "masked_m"_a, "expected_m"_a.none(), "out"_a, "stream"_a, "workspace_ptr"_a,
        "workspace_bytes"_a,
        "Grouped GEMM, masked layout (masked_m int32 (G,) on the device). Asynchronous.");
  m.def("grouped_masked_workspace_bytes", &grouped_masked_workspace_bytes, "input"_a, "weight"_a,
        "expected_m"_a.none(), "weight_scale"_a.none(), "input_scale"_a.none() = nb::none(),
        "Bytes of workspace grouped_gemm_masked needs for these operands.");
  m.def("validate_group_offsets", &validate_offsets, "offsets"_a, "m_total"_a, "stream"_a,
        "Copies int32 offsets to the host (synchronising `stream`) and checks them; raises on a bad entry.");
  m.def("validate_group_index", &validate_index, "group_index"_a, "num_groups"_a, "stream"_a,
        "Copies an int32 group index to the host (synchronising `stream`) and checks it.");
  m.def(
      "describe_grouped_plan_contiguous",
      [](int64_t m_total, int64_t num_groups, int64_t n, int64_t k, bool per_row_weight_scale) {
        return blockgemm::describe_grouped_plan_contiguous(m_total, num_groups, n, k, per_row_weight_scale);
      },
      "m_total"_a, "num_groups"_a, "n"_a, "k"_a, "per_row_weight_scale"_a = false,
      "The kernel a contiguous grouped call of M_total rows over G groups runs, as one line.");
  m.def(
      "describe_grouped_plan_masked",
      [](int64_t num_groups, int64_t m_max, int64_t expected_m, int64_t n, int64_t k,
         bool per_row_weight_scale) {
        return blockgemm::describe_grouped_plan_masked(num_groups, m_max, expected_m, n, k,
                                                       per_row_weight_scale);
      },
      "num_groups"_a, "m_max"_a, "expected_m"_a, "n"_a, "k"_a, "per_row_weight_scale"_a = false,
      "The kernel a masked grouped call runs for the expected rows per group, as one line.");
  m.def("contiguous_group_alignment", &blockgemm::contiguous_group_alignment,
        "Row alignment of DeepGEMM's contiguous layout (each group's run starts at a multiple of it).");
}
