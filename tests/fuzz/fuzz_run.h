// The fuzzer's case runners: one drawn case through fp8_blockscale_gemm_sm90 and its checks (NaN/Inf, padding
// and guard bytes, the CPU reference on sampled rows, the GPU reference on all rows).
#pragma once

#include <string>

#include "fuzz_case.h"

namespace blockgemm::fuzz {

struct Outcome {
  bool pass = false;
  std::string detail;  // what went wrong, or the diff
  bool context_lost = false;
  bool gpu_reference_checked = false;  // all M x N compared with the GPU reference
};

bool context_broken();

// fp8 input x bf16 weight: Error(kInvalidArgument) and out untouched.
Outcome run_error_case(const CaseParams& p);

Outcome run_gemm_case(const CaseParams& p);

}  // namespace blockgemm::fuzz
