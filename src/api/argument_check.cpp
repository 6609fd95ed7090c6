#include "api/argument_check.h"

#include <sstream>
#include <utility>

namespace blockgemm::api {
namespace {

std::string tuple_str(const int64_t* values, int rank) {
  std::ostringstream os;
  os << "(";
  for (int i = 0; i < rank; ++i) os << (i ? ", " : "") << values[i];
  os << ")";
  return os.str();
}

// [first byte, one past the last byte) of a non-empty view with non-negative strides.
std::pair<uintptr_t, uintptr_t> byte_span(const TensorView& t) {
  const auto begin = reinterpret_cast<uintptr_t>(t.data);
  const int64_t last = (t.rows() - 1) * t.strides[0] + (t.cols() - 1) * t.strides[1];
  return {begin, begin + static_cast<uintptr_t>((last + 1) * static_cast<int64_t>(dtype_size(t.dtype)))};
}

}  // namespace

std::string shape_str(const TensorView& t) {
  return tuple_str(t.shape, t.rank);
}
std::string stride_str(const TensorView& t) {
  return tuple_str(t.strides, t.rank);
}
std::string device_str(int device) {
  return device == TensorView::kHostDevice ? std::string("host memory") : "cuda:" + std::to_string(device);
}

void ArgumentCheck::fail(const std::string& argument, const std::string& expected, const std::string& actual,
                         Error::Kind kind) const {
  throw Error(kind, std::string(function_) + ": " + argument + ": expected " + expected + ", got " + actual);
}

void ArgumentCheck::require_matrix(const std::string& name, const TensorView& t) const {
  if (t.rank != 2) fail(name, "a 2-D tensor", std::to_string(t.rank) + "-D tensor");
  if (t.shape[0] < 0 || t.shape[1] < 0) fail(name, "non-negative sizes", shape_str(t));
}

void ArgumentCheck::require_dtype(const std::string& name, const TensorView& t, DType dtype) const {
  if (t.dtype != dtype) fail(name + ".dtype", dtype_name(dtype), dtype_name(t.dtype));
}

void ArgumentCheck::require_shape(const std::string& name, const TensorView& t, int64_t rows,
                                  int64_t cols) const {
  if (t.rows() != rows || t.cols() != cols)
    fail(name, "shape (" + std::to_string(rows) + ", " + std::to_string(cols) + ")", shape_str(t));
}

void ArgumentCheck::require_data(const std::string& name, const TensorView& t) const {
  if (t.data == nullptr && t.numel() > 0) fail(name, "a non-null data pointer", "nullptr");
}

void ArgumentCheck::require_device(const std::string& name, const TensorView& t, int device) const {
  if (t.device != device) fail(name + ".device", device_str(device), device_str(t.device));
}

void ArgumentCheck::require_aligned(const std::string& name, const void* ptr, std::size_t alignment) const {
  if (reinterpret_cast<uintptr_t>(ptr) % alignment != 0) {
    std::ostringstream os;
    os << ptr;
    fail(name + " data pointer", std::to_string(alignment) + "-byte aligned", os.str());
  }
}

void ArgumentCheck::require_row_major(const std::string& name, const TensorView& t,
                                      int64_t row_stride_bytes) const {
  if (t.cols() > 1 && t.strides[1] != 1)
    fail(name + " strides", "column stride 1 (row-major)", stride_str(t));
  if (t.rows() > 1) {
    if (t.strides[0] < t.cols())
      fail(name + " strides", "row stride >= " + std::to_string(t.cols()), stride_str(t));
    // TMA encodes strides below 2^40 bytes; nothing sensible is larger (and larger would overflow below).
    if (t.strides[0] >= (int64_t{1} << 36))
      fail(name + " strides", "a row stride below 2^36 elements", stride_str(t));
    if ((t.strides[0] * static_cast<int64_t>(dtype_size(t.dtype))) % row_stride_bytes != 0)
      fail(name + " strides",
           "a row stride that is a multiple of " + std::to_string(row_stride_bytes) + " bytes",
           stride_str(t));
  }
  require_aligned(name, t.data, 16);
}

ScaleStrides ArgumentCheck::require_scale_layout(const std::string& name, const TensorView& t) const {
  const int64_t rows = t.rows(), cols = t.cols();
  const int64_t rs = t.strides[0], cs = t.strides[1];
  const bool row_major = (cols <= 1 || cs == 1) && (rows <= 1 || rs >= cols);
  const bool col_major = (rows <= 1 || rs == 1) && (cols <= 1 || cs >= rows);
  if (rs < 0 || cs < 0 || !(row_major || col_major))
    fail(
        name + " strides",
        "row-major (>= " + std::to_string(cols) + ", 1) or column-major (1, >= " + std::to_string(rows) + ")",
        stride_str(t));
  require_aligned(name, t.data, 4);
  return {rs, cs};
}

void ArgumentCheck::require_disjoint(const std::string& name_a, const TensorView& a,
                                     const std::string& name_b, const TensorView& b) const {
  if (a.numel() == 0 || b.numel() == 0) return;
  const auto span_a = byte_span(a), span_b = byte_span(b);
  if (span_a.first < span_b.second && span_b.first < span_a.second)
    fail(name_a, "memory disjoint from " + name_b, "overlapping buffers");
}

}  // namespace blockgemm::api
