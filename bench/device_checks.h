// Correctness checks of a backend's output against the CPU reference, and what to do after a device
// error (go on, or stop the run when the CUDA context is lost).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <vector>

#include "blockgemm/tensor.h"
#include "suites.h"

namespace blockgemm_bench {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kMaxOursDiff = 1e-3;

struct CheckResult {
  bool ran = false;
  bool all_finite = false;
  double diff = kNaN;
  bool passed(double limit) const { return ran && all_finite && diff < limit; }
};

// Fills `out` with 0xFF bytes (NaN in bf16, fp16 and fp32) so that elements a kernel never writes
// cannot pass for results.
void poison(void* out, std::size_t bytes, cudaStream_t stream);

// Copies the whole (M, N) output back after the stream drains, requires every element to be finite,
// and compares the chosen rows with the reference.
CheckResult check_output(const void* device_out, blockgemm::DType dtype, const Shape& shape,
                         const std::vector<int64_t>& rows, const std::vector<double>& expected,
                         cudaStream_t stream);

// After any failure: clear a non-sticky error; a sticky one (a faulting kernel) poisons the
// context for every later shape, so it ends the run.
struct FatalDeviceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Throws FatalDeviceError when the context is no longer usable.
void ensure_device_usable();

}  // namespace blockgemm_bench
