// Shared by the argument validation tests (test_validation.cpp: our rules; test_validation_seed.cpp:
// FlashInfer's layouts and error words): fake pointers and a valid FP8 x FP8 problem for each test to break.
#pragma once

#include <cstdint>
#include <optional>

#include "api/validate.h"
#include "blockgemm/blockgemm.h"

namespace blockgemm::testing {

inline constexpr int kDevice = 0;

inline void* fake(uintptr_t address) {
  return reinterpret_cast<void*>(address);
}

// A valid FP8 x FP8 problem (M=64, N=256, K=512) over disjoint fake buffers; each test breaks one thing.
struct Args {
  int64_t m = 64, n = 256, k = 512;
  TensorView input = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, 64, 512, kDevice);
  TensorView weight = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 256, 512, kDevice);
  std::optional<TensorView> input_scale = TensorView::matrix(fake(0x300000), DType::kFloat32, 64, 4, kDevice);
  std::optional<TensorView> weight_scale = TensorView::matrix(fake(0x400000), DType::kFloat32, 2, 4, kDevice);
  TensorView out = TensorView::matrix(fake(0x500000), DType::kBFloat16, 64, 256, kDevice);
  std::optional<DType> out_dtype;

  void validate() const { api::validate_gemm_args(input, weight, input_scale, weight_scale, out, out_dtype); }
};

}  // namespace blockgemm::testing
