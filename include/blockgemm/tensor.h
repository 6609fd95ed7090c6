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
// Rank is 1 or 2; the library only ever reads `shape[0..rank)` and `strides[0..rank)`.
struct TensorView {
  static constexpr int kHostDevice = -1;

  void* data = nullptr;
  DType dtype = DType::kFloat32;
  int rank = 0;
  int64_t shape[2] = {0, 0};
  int64_t strides[2] = {0, 0};
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
  int64_t rows() const { return shape[0]; }
  int64_t cols() const { return rank == 2 ? shape[1] : 1; }
  int64_t numel() const { return rank == 0 ? 0 : shape[0] * cols(); }
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
