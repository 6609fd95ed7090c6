// Shared by the argument validation tests (test_validation.cpp: our rules; test_validation_seed.cpp:
// FlashInfer's layouts and error words; test_grouped_validation.cpp): fake pointers, the check of an error's
// kind and words, and a valid FP8 x FP8 problem for each test to break.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/validate.h"
#include "blockgemm/blockgemm.h"

namespace blockgemm::testing {

inline constexpr int kDevice = 0;

inline void* fake(uintptr_t address) {
  return reinterpret_cast<void*>(address);
}

// Expects `call` to throw Error of `kind` whose message contains every fragment (the argument's name, the
// expected and the actual value).
inline void expect_message(const std::function<void()>& call, const std::vector<const char*>& fragments,
                           Error::Kind kind = Error::Kind::kInvalidArgument) {
  try {
    call();
    ADD_FAILURE() << "no error for fragments starting with '" << *fragments.begin() << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const char* fragment : fragments)
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "message '" << e.what() << "' lacks '" << fragment << "'";
  }
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
