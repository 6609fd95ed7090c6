// Tensors on a GPU other than the current one, and a second GPU doing the work: the library launches on
// the current device and must either compute the right answer there or refuse with a clear error, never
// run on the wrong GPU. Needs two Hopper GPUs; skipped (with the reason) otherwise.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "blockgemm/blockgemm.h"
#include "gpu_test_util.h"

namespace blockgemm::testing {
namespace {

// Empty when devices 0 and 1 are both Hopper GPUs.
std::optional<std::string> two_hoppers_unavailable_reason() {
  if (auto reason = gpu_unavailable_reason()) return reason;
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count < 2)
    return "needs two GPUs, this machine has " + std::to_string(count);
  int major = 0, minor = 0;
  cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 1);
  cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 1);
  if (major != 9 || minor != 0) return "device 1 is not a Hopper GPU";
  return std::nullopt;
}

#define REQUIRE_TWO_HOPPERS()                                \
  do {                                                       \
    if (auto reason = two_hoppers_unavailable_reason())      \
      GTEST_SKIP() << "multi-GPU test skipped: " << *reason; \
  } while (0)

// Leaves device 0 current whatever the test did, for the tests that follow.
struct RestoreDevice0 {
  ~RestoreDevice0() { cudaSetDevice(0); }
};

// make_problem on `device`, which stays current afterwards.
void make_problem_on(int device, const ProblemSpec& spec, Problem& problem) {
  check_cuda(cudaSetDevice(device), "cudaSetDevice");
  make_problem(spec, problem);
}

int64_t count_nan(const Problem& problem) {
  int64_t nans = 0;
  for (double v : download_out(problem)) nans += std::isnan(v);
  return nans;
}

// Every tile family (swapAB with split-K, a normal tile, a wide tile straddling two weight blocks) on device
// 0 and then on the second GPU, where kernel attributes, SM counts and workspaces must be set up separately:
// the first launch of each kernel on device 1 comes after device 0's, even when only these tests run.
TEST(MultiDevice, SecondGpuComputesCorrectly) {
  REQUIRE_TWO_HOPPERS();
  RestoreDevice0 restore;
  for (const ProblemSpec spec : {ProblemSpec{1, 2112, 7168}, ProblemSpec{300, 576, 2048},
                                 ProblemSpec{1000, 2112, 1024, false, ScaleLayout::kColumnMajor}}) {
    for (int device : {0, 1}) {
      SCOPED_TRACE(spec.str() + " on device " + std::to_string(device));
      Problem problem;
      make_problem_on(device, spec, problem);
      ASSERT_EQ(problem.input.device, device);
      poison_out(problem);
      fp8_blockscale_gemm_sm90(problem.input, problem.weight, problem.input_scale, problem.weight_scale,
                               problem.out);
      check_cuda(cudaDeviceSynchronize(), "gemm");
      const CheckResult result = check_against_reference(problem);
      EXPECT_EQ(result.nan_count, 0);
      EXPECT_LT(result.diff, 1e-3);
      EXPECT_LT(result.max_scaled_error, kMaxScaledError);
    }
  }
}

// The BF16 path quantizes into an internal workspace, which is per device.
TEST(MultiDevice, Bf16InputOnSecondGpu) {
  REQUIRE_TWO_HOPPERS();
  RestoreDevice0 restore;
  // Warm device 0's workspace first, so a shared one would be on the wrong GPU for device 1.
  for (int device : {0, 1}) {
    SCOPED_TRACE("device " + std::to_string(device));
    Problem problem;
    make_problem_on(device, ProblemSpec{64, 256, 512}, problem);
    // The fp8 input's dequantized values rounded to bf16: quantized again inside, they give a product
    // within bf16 rounding of the fp8 problem's reference.
    std::vector<uint16_t> bf16(static_cast<std::size_t>(64 * 512));
    for (int64_t r = 0; r < 64; ++r)
      for (int64_t c = 0; c < 512; ++c)
        bf16[r * 512 + c] = reference::float_to_bf16(
            reference::fp8_e4m3_to_float(problem.a.values[r * 512 + c]) * problem.a.scales[r * 4 + c / 128]);
    DeviceBuffer input_dev(bf16.size() * 2);
    input_dev.upload(bf16.data(), bf16.size() * 2);
    poison_out(problem);
    fp8_blockscale_gemm_sm90(TensorView::matrix(input_dev.get(), DType::kBFloat16, 64, 512, device),
                             problem.weight, std::nullopt, problem.weight_scale, problem.out);
    check_cuda(cudaDeviceSynchronize(), "bf16 gemm");
    EXPECT_EQ(count_nan(problem), 0);
    const CheckResult fp8 = check_against_reference(problem);  // the fp8 problem's reference
    EXPECT_LT(fp8.diff, 1e-3);
  }
}

// Tensors on device 1 while device 0 is current: a clear error naming both devices, nothing written.
TEST(MultiDevice, TensorsOnAnotherDeviceAreRejected) {
  REQUIRE_TWO_HOPPERS();
  RestoreDevice0 restore;
  Problem problem;
  make_problem_on(1, ProblemSpec{128, 256, 512}, problem);
  poison_out(problem);
  check_cuda(cudaDeviceSynchronize(), "setup");
  check_cuda(cudaSetDevice(0), "cudaSetDevice(0)");
  try {
    fp8_blockscale_gemm_sm90(problem.input, problem.weight, problem.input_scale, problem.weight_scale,
                             problem.out);
    ADD_FAILURE() << "no error for tensors on cuda:1 while cuda:0 is current";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("cuda:1"), std::string::npos) << what;
    EXPECT_NE(what.find("cuda:0"), std::string::npos) << what;
  }
  check_cuda(cudaDeviceSynchronize(), "device 0 after the refused call");
  check_cuda(cudaSetDevice(1), "cudaSetDevice(1)");
  EXPECT_EQ(count_nan(problem), problem.spec.m * problem.spec.n) << "out was written";
}

// Operands split across the two GPUs: rejected by validation, naming the argument on the other device.
TEST(MultiDevice, OperandsOnDifferentDevicesAreRejected) {
  REQUIRE_TWO_HOPPERS();
  RestoreDevice0 restore;
  Problem on0, on1;
  make_problem_on(0, ProblemSpec{64, 256, 512}, on0);
  make_problem_on(1, ProblemSpec{64, 256, 512}, on1);
  check_cuda(cudaSetDevice(0), "cudaSetDevice(0)");
  poison_out(on0);
  try {
    fp8_blockscale_gemm_sm90(on0.input, on1.weight, on0.input_scale, on0.weight_scale, on0.out);
    ADD_FAILURE() << "no error for a weight on cuda:1";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weight.device"), std::string::npos) << e.what();
  }
  check_cuda(cudaDeviceSynchronize(), "device 0");
  EXPECT_EQ(count_nan(on0), on0.spec.m * on0.spec.n) << "out was written";
}

}  // namespace
}  // namespace blockgemm::testing
