#include "device_checks.h"

#include <cstring>
#include <string>

#include "blockgemm/reference.h"
#include "timing.h"

namespace blockgemm_bench {

namespace ref = blockgemm::reference;
using blockgemm::DType;

void poison(void* out, std::size_t bytes, cudaStream_t stream) {
  BENCH_CHECK_CUDA(cudaMemsetAsync(out, 0xFF, bytes, stream));
}

CheckResult check_output(const void* device_out, DType dtype, const Shape& shape,
                         const std::vector<int64_t>& rows, const std::vector<double>& expected,
                         cudaStream_t stream) {
  BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));
  const std::size_t element_bytes = blockgemm::dtype_size(dtype);
  const auto elements = static_cast<std::size_t>(shape.m * shape.n);
  std::vector<uint8_t> host(elements * element_bytes);
  BENCH_CHECK_CUDA(cudaMemcpy(host.data(), device_out, host.size(), cudaMemcpyDeviceToHost));

  auto value_at = [&](std::size_t index) -> double {
    if (dtype == DType::kFloat32) {
      float value;
      std::memcpy(&value, host.data() + index * 4, 4);
      return value;
    }
    uint16_t bits;
    std::memcpy(&bits, host.data() + index * 2, 2);
    return dtype == DType::kBFloat16 ? ref::bf16_to_float(bits) : ref::fp16_to_float(bits);
  };
  auto is_finite_at = [&](std::size_t index) {
    if (dtype == DType::kFloat32) {
      uint32_t bits;
      std::memcpy(&bits, host.data() + index * 4, 4);
      return (bits & 0x7F800000u) != 0x7F800000u;
    }
    uint16_t bits;
    std::memcpy(&bits, host.data() + index * 2, 2);
    const uint16_t exponent_mask = dtype == DType::kBFloat16 ? 0x7F80 : 0x7C00;
    return (bits & exponent_mask) != exponent_mask;
  };

  CheckResult result;
  result.ran = true;
  result.all_finite = true;
  for (std::size_t i = 0; i < elements; ++i) {
    if (!is_finite_at(i)) {
      result.all_finite = false;
      break;
    }
  }
  std::vector<double> got(expected.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (int64_t col = 0; col < shape.n; ++col) {
      got[i * shape.n + col] = value_at(static_cast<std::size_t>(rows[i] * shape.n + col));
    }
  }
  result.diff = ref::calc_diff(got.data(), expected.data(), static_cast<int64_t>(got.size()));
  return result;
}

void ensure_device_usable() {
  cudaGetLastError();
  const cudaError_t status = cudaDeviceSynchronize();
  if (status != cudaSuccess) {
    throw FatalDeviceError(std::string("the CUDA context is unusable: ") + cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ")");
  }
}

}  // namespace blockgemm_bench
