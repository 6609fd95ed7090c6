#include "blockgemm/tensor.h"

#include <cuda_runtime_api.h>

#include <string>
#include <utility>

namespace blockgemm {

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kFloat8E4M3:
      return "float8_e4m3";
    case DType::kBFloat16:
      return "bfloat16";
    case DType::kFloat16:
      return "float16";
    case DType::kFloat32:
      return "float32";
  }
  return "unknown";
}

std::size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kFloat8E4M3:
      return 1;
    case DType::kBFloat16:
    case DType::kFloat16:
      return 2;
    case DType::kFloat32:
      return 4;
  }
  return 0;
}

DeviceTensor::DeviceTensor(DType dtype, int64_t rows, int64_t cols, int device) {
  int previous = 0;
  cudaGetDevice(&previous);
  cudaSetDevice(device);
  void* data = nullptr;
  const std::size_t bytes = static_cast<std::size_t>(rows * cols) * dtype_size(dtype);
  const cudaError_t status = bytes ? cudaMalloc(&data, bytes) : cudaSuccess;
  cudaSetDevice(previous);
  if (status != cudaSuccess)
    throw Error(Error::Kind::kDevice, "DeviceTensor: cudaMalloc of " + std::to_string(bytes) +
                                          " bytes failed: " + cudaGetErrorString(status));
  view_ = TensorView::matrix(data, dtype, rows, cols, device);
}

DeviceTensor::~DeviceTensor() {
  if (view_.data) cudaFree(view_.data);
}

DeviceTensor::DeviceTensor(DeviceTensor&& other) noexcept : view_(other.view_) {
  other.view_.data = nullptr;
}

DeviceTensor& DeviceTensor::operator=(DeviceTensor&& other) noexcept {
  if (this != &other) {
    if (view_.data) cudaFree(view_.data);
    view_ = other.view_;
    other.view_.data = nullptr;
  }
  return *this;
}

}  // namespace blockgemm
