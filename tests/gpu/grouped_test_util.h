// Shared by the grouped GEMM's GPU tests (test_grouped.cpp: every tile, the contiguous layout;
// test_grouped_masked.cpp: the masked layout, CUDA graphs, malformed tables): a grouped problem quantized by
// the reference on the host, uploaded to the device, and the per-group check of out against the reference.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "blockgemm/grouped.h"
#include "blockgemm/reference.h"
#include "gpu_test_util.h"

namespace blockgemm::testing {

inline constexpr double kMaxDiff = 1e-3;
inline constexpr uint16_t kPoison = 0xFFFF;  // bf16 NaN: what poison_rows writes

// The rows each group owns in the 2-D view of the input and out, as the kernel must see them.
struct GroupRows {
  int64_t start, rows;
};

// A grouped problem on the host (reference-quantized) and the device. The input is an (m, K) matrix: the
// contiguous input, or the masked (G, M_max, K) input folded. The weight is G stacked (N, K) matrices.
struct GroupedData {
  int64_t g = 0, m = 0, n = 0, k = 0, kg = 0;
  bool per_row = false, bf16_input = false;
  // The 2-D input scale M-contiguous, (K/128, ceil4(M)) transposed (DeepGEMM's layout), instead of (M,
  // K/128); set before make_grouped.
  bool col_major_scales = false;
  int64_t scale_ld = 0;
  reference::Quantized a;               // (m, K) and (m, K/128)
  std::vector<uint16_t> a_bf16;         // the bf16 input, when bf16_input
  std::vector<reference::Quantized> b;  // per group
  DeviceBuffer a_dev, a_scale_dev, b_dev, b_scale_dev, out_dev;
  int64_t out_guard_rows = 0;  // poisoned rows past the view, which nothing may write
  int device = 0;

  TensorView weight() const { return TensorView::tensor3(b_dev.get(), DType::kFloat8E4M3, g, n, k, device); }
  TensorView weight_scale() const {
    return TensorView::tensor3(b_scale_dev.get(), DType::kFloat32, g, b[0].scale_rows, kg, device);
  }
  TensorView input2d() const {
    return TensorView::matrix(a_dev.get(), bf16_input ? DType::kBFloat16 : DType::kFloat8E4M3, m, k, device);
  }
  std::optional<TensorView> input_scale2d() const {
    if (bf16_input) return std::nullopt;
    if (col_major_scales)
      return TensorView::strided(a_scale_dev.get(), DType::kFloat32, m, kg, 1, scale_ld, device);
    return TensorView::matrix(a_scale_dev.get(), DType::kFloat32, m, kg, device);
  }
  TensorView out2d() const { return TensorView::matrix(out_dev.get(), DType::kBFloat16, m, n, device); }
  // The masked layout's views of the same buffers: (G, M_max, K) input, its (G, M_max, K/128) scales (none
  // for a bf16 input) and the (G, M_max, N) out, where m = G * M_max.
  TensorView masked_input(int64_t m_max) const {
    return TensorView::tensor3(a_dev.get(), bf16_input ? DType::kBFloat16 : DType::kFloat8E4M3, g, m_max, k,
                               device);
  }
  // Column-major scales: group g's rows start at g * M_max of the (K/128, ceil4(M)) matrix.
  std::optional<TensorView> masked_input_scale(int64_t m_max) const {
    if (bf16_input) return std::nullopt;
    if (col_major_scales)
      return TensorView::strided3(a_scale_dev.get(), DType::kFloat32, g, m_max, kg, m_max, 1, scale_ld,
                                  device);
    return TensorView::tensor3(a_scale_dev.get(), DType::kFloat32, g, m_max, kg, device);
  }
  TensorView masked_out(int64_t m_max) const {
    return TensorView::tensor3(out_dev.get(), DType::kBFloat16, g, m_max, n, device);
  }
  // cudaMemset is asynchronous on the legacy stream, which the graph replays' non-blocking stream does not
  // wait for: wait here, or the poison could land after the GEMM's stores (bench/NOTES.md "Oddities").
  void poison() {
    check_cuda(cudaMemset(out_dev.get(), 0xFF, out_dev.bytes()), "poison out");
    check_cuda(cudaDeviceSynchronize(), "poison out");
  }
};

// Random normal data for G groups of different magnitudes, quantized with the reference quantizers
// (per-token input; per-block or per-row weight) and uploaded; `out_guard_rows` poisoned rows past the view.
void make_grouped(GroupedData& d, int64_t g, int64_t m, int64_t n, int64_t k, bool per_row, bool bf16_input,
                  uint64_t seed, int64_t out_guard_rows = 3);

// Downloads out and checks each group's rows against the reference, and that every other row (padding,
// masked, past the view) kept its poison.
void check_groups(const GroupedData& d, const std::vector<GroupRows>& groups, const std::string& where);

// Group sizes -> offsets (G + 1), starting at `first_row`; and back to each group's rows.
std::vector<int32_t> offsets_of(const std::vector<int64_t>& sizes, int64_t first_row = 0);
std::vector<GroupRows> rows_of(const std::vector<int32_t>& offsets);

struct DeviceInts {
  DeviceBuffer buffer;
  explicit DeviceInts(const std::vector<int32_t>& values)
      : buffer(std::max<std::size_t>(values.size(), 1) * 4) {
    if (!values.empty()) buffer.upload(values.data(), values.size() * 4);
  }
  // A pageable cudaMemcpy may return before the bytes reach the device, and a non-blocking stream does not
  // wait for the legacy stream: the next replay must see the new table.
  void set(const std::vector<int32_t>& values) {
    buffer.upload(values.data(), values.size() * 4);
    check_cuda(cudaDeviceSynchronize(), "table upload");
  }
  Int32View view(int64_t size, int device) const {
    return Int32View::vector(static_cast<const int32_t*>(buffer.get()), size, device);
  }
};

}  // namespace blockgemm::testing
