// Helpers for the GPU tests: device buffers, random quantized problems, and checks against the CPU
// reference.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blockgemm/blockgemm.h"
#include "blockgemm/reference.h"

namespace blockgemm::testing {

// Empty when a Hopper GPU is usable, otherwise the reason the GPU tests skip.
std::optional<std::string> gpu_unavailable_reason();

#define BLOCKGEMM_REQUIRE_HOPPER()                                    \
  do {                                                                \
    if (auto reason = ::blockgemm::testing::gpu_unavailable_reason()) \
      GTEST_SKIP() << "GPU test skipped: " << *reason;                \
  } while (0)

void check_cuda(cudaError_t status, const char* what);

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  void* get() const { return ptr_; }
  std::size_t bytes() const { return bytes_; }
  void upload(const void* host, std::size_t bytes, std::size_t offset = 0);
  void download(void* host, std::size_t bytes, std::size_t offset = 0) const;

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

enum class ScaleLayout { kRowMajor, kColumnMajor };

struct ProblemSpec {
  int64_t m, n, k;
  bool per_row_weight_scale = false;
  ScaleLayout input_scale_layout = ScaleLayout::kRowMajor;
  DType out_dtype = DType::kBFloat16;
  int64_t out_row_padding = 0;  // extra elements per out row (row stride N + padding)
  uint64_t seed = 1;
  std::string str() const;
};

// A quantized problem on the host and the device.
struct Problem {
  ProblemSpec spec;
  reference::Quantized a, b;
  DeviceBuffer a_dev, b_dev, a_scale_dev, b_scale_dev, out_dev;
  int64_t a_scale_col_stride_padded = 0;  // M' for the column-major input scale
  TensorView input, weight, input_scale, weight_scale, out;
};

// Random normal data quantized with the reference quantizers (per-token input; per-block or per-row
// weight), uploaded in the requested layouts to the current device.
void make_problem(const ProblemSpec& spec, Problem& problem);

// Fills out (whole buffer, padding included) with NaN bits.
void poison_out(Problem& problem);

// The rows the reference is computed for: all of them for small M, otherwise a spread that includes the
// first and last rows and both sides of every 64-row tile boundary near the ends.
std::vector<int64_t> rows_to_check(int64_t m);

struct CheckResult {
  double diff = 0;              // calc_diff over the checked rows
  int64_t nan_count = 0;        // NaN anywhere in out (unwritten elements stay NaN)
  int64_t padding_written = 0;  // padding elements that changed (must stay poisoned)
  // max |out - ref| / (|ref| + rms(ref)) over the checked elements: a per-element bound that a few wrong
  // outputs cannot hide in, unlike the global calc_diff (bf16 rounding alone is <= 2^-9 of it).
  double max_scaled_error = 0;
  std::vector<double> out_checked, ref_checked;
};

// max |x - y| / (|y| + rms(y)) over `count` elements (0 for count == 0).
double max_scaled_error(const double* x, const double* y, int64_t count);

// The per-element bound the GEMM tests assert on max_scaled_error: 4x bf16's half-ulp, ~100x the error of
// fp32 accumulation of 128-wide fp8 blocks.
constexpr double kMaxScaledError = 1.0 / 128;

// Downloads out and compares the checked rows with reference::blockscale_gemm.
CheckResult check_against_reference(Problem& problem);

// Element `index` of a downloaded bf16, fp16 or fp32 buffer, as a double.
double element_to_double(const std::vector<uint8_t>& raw, std::size_t index, DType dtype);

// Downloads out as doubles (M x N, padding dropped).
std::vector<double> download_out(const Problem& problem);

}  // namespace blockgemm::testing
