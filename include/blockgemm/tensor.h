// Non-owning tensor views and the library's error type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace blockgemm {

enum class DType { kFloat8E4M3, kBFloat16, kFloat16, kFloat32 };

const char* dtype_name(DType dtype);
std::size_t dtype_size(DType dtype);

// Every failure the library reports. `kind` lets bindings map it onto their own exception types
// (bad arguments -> ValueError, device problems -> RuntimeError).
class Error : public std::runtime_error {
 public:
  enum class Kind { kInvalidArgument, kNotImplemented, kDevice };
  Error(Kind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

// A view of someone else's memory: pointer, dtype, shape and strides in elements, and where it lives.
// Rank is 1, 2 or 3; the library only ever reads `shape[0..rank)` and `strides[0..rank)`. The dense GEMM
// takes matrices (rank 2); the grouped GEMM (blockgemm/grouped.h) also takes rank-3 tensors (group, rows,
// cols). rows() and cols() describe a rank-1 or rank-2 view.
struct TensorView {
  static constexpr int kHostDevice = -1;
  static constexpr int kMaxRank = 3;

  void* data = nullptr;
  DType dtype = DType::kFloat32;
  int rank = 0;
  int64_t shape[kMaxRank] = {0, 0, 0};
  int64_t strides[kMaxRank] = {0, 0, 0};
  int device = kHostDevice;  // CUDA ordinal, or kHostDevice

  // A contiguous row-major matrix.
  static TensorView matrix(void* data, DType dtype, int64_t rows, int64_t cols, int device) {
    return strided(data, dtype, rows, cols, cols, 1, device);
  }
  // A matrix with arbitrary strides (elements), e.g. a column-major scale tensor: (1, rows_padded).
  static TensorView strided(void* data, DType dtype, int64_t rows, int64_t cols, int64_t row_stride,
                            int64_t col_stride, int device) {
    TensorView view;
    view.data = data;
    view.dtype = dtype;
    view.rank = 2;
    view.shape[0] = rows;
    view.shape[1] = cols;
    view.strides[0] = row_stride;
    view.strides[1] = col_stride;
    view.device = device;
    return view;
  }
  // A contiguous (d0, d1, d2) tensor, row-major in its last two dimensions: (d1 * d2, d2, 1).
  static TensorView tensor3(void* data, DType dtype, int64_t d0, int64_t d1, int64_t d2, int device) {
    return strided3(data, dtype, d0, d1, d2, d1 * d2, d2, 1, device);
  }
  // A rank-3 tensor with arbitrary strides (elements).
  static TensorView strided3(void* data, DType dtype, int64_t d0, int64_t d1, int64_t d2, int64_t s0,
                             int64_t s1, int64_t s2, int device) {
    TensorView view = strided(data, dtype, d1, d2, s1, s2, device);
    view.rank = 3;
    view.shape[0] = d0;
    view.shape[1] = d1;
    view.shape[2] = d2;
    view.strides[0] = s0;
    view.strides[1] = s1;
    view.strides[2] = s2;
    return view;
  }
  int64_t rows() const { return shape[0]; }
  int64_t cols() const { return rank == 2 ? shape[1] : 1; }
  int64_t numel() const {
    if (rank == 0) return 0;
    int64_t count = 1;
    for (int i = 0; i < rank && i < kMaxRank; ++i) count *= shape[i];
    return count;
  }
};

// Device memory owned by the library's convenience calls; freed on destruction.
class DeviceTensor {
 public:
  DeviceTensor() = default;
  DeviceTensor(DType dtype, int64_t rows, int64_t cols, int device);
  ~DeviceTensor();
  DeviceTensor(DeviceTensor&& other) noexcept;
  DeviceTensor& operator=(DeviceTensor&& other) noexcept;
  DeviceTensor(const DeviceTensor&) = delete;
  DeviceTensor& operator=(const DeviceTensor&) = delete;

  const TensorView& view() const { return view_; }
  void* data() const { return view_.data; }

 private:
  TensorView view_;
};

}  // namespace blockgemm
