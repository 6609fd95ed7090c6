// Argument checks shared by every entry point: each failure throws blockgemm::Error whose message names the
// function, the argument, what was expected and what was given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "blockgemm/tensor.h"

namespace blockgemm::api {

std::string shape_str(const TensorView& t);
std::string stride_str(const TensorView& t);
std::string device_str(int device);

// Strides of a scale tensor accepted as row-major or column-major.
struct ScaleStrides {
  int64_t row_stride, col_stride;
};

class ArgumentCheck {
 public:
  explicit ArgumentCheck(const char* function) : function_(function) {}

  [[noreturn]] void fail(const std::string& argument, const std::string& expected, const std::string& actual,
                         Error::Kind kind = Error::Kind::kInvalidArgument) const;

  void require_matrix(const std::string& name, const TensorView& t) const;  // rank 2, sizes >= 0
  void require_dtype(const std::string& name, const TensorView& t, DType dtype) const;
  void require_shape(const std::string& name, const TensorView& t, int64_t rows, int64_t cols) const;
  void require_data(const std::string& name, const TensorView& t) const;  // non-null unless empty
  void require_device(const std::string& name, const TensorView& t, int device) const;
  void require_aligned(const std::string& name, const void* ptr, std::size_t alignment) const;
  // Unit column stride, row stride >= cols and a multiple of `row_stride_bytes` bytes (a single row's
  // stride is never used and not checked), data 16-byte aligned.
  void require_row_major(const std::string& name, const TensorView& t, int64_t row_stride_bytes) const;
  // Row-major (stride (>= cols, 1)) or column-major (stride (1, >= rows)); a dimension of size 1 may have
  // any non-negative stride since it is never multiplied by a non-zero index. Data 4-byte aligned.
  ScaleStrides require_scale_layout(const std::string& name, const TensorView& t) const;
  // Kernels read one while writing the other: no byte may be shared.
  void require_disjoint(const std::string& name_a, const TensorView& a, const std::string& name_b,
                        const TensorView& b) const;

 private:
  const char* function_;
};

}  // namespace blockgemm::api
