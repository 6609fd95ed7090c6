// blockgemm-bench's command line: what to time and how (bench_main.cpp's header describes the method).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "baselines.h"
#include "blockgemm/tensor.h"
#include "suites.h"

namespace blockgemm_bench {

// Which operand dtypes of fp8_blockscale_gemm_sm90 are measured. fp8 x fp8 always is: it is the
// main table and the denominator of the other paths' ratios.
struct Paths {
  bool bf16_fp8 = false;   // bf16 input (quantized inside, 1x128), fp8 weight with its scales
  bool bf16_bf16 = false;  // bf16 input and bf16 weight (quantized inside, 1x128 and 128x128)
  bool any_bf16() const { return bf16_fp8 || bf16_bf16; }
};

// How blockgemm is handed its fp8 scales. cuBLASLt always reads its own layouts (baselines.h).
enum class ScaleLayout {
  // As blockgemm.testing.per_token_cast_to_fp8 / per_block_cast_to_fp8 return them and the Python
  // benchmark passes them: input (M, K/128), per-row weight (N, K/128) and block weight
  // (ceil(N/128), K/128) scales all row-major and contiguous, in buffers of blockgemm's own.
  kRowMajor,
  // The buffers cuBLASLt reads: M-contiguous input scales (ld roundup(M, 4)), N-contiguous per-row
  // weight scales, block scales with row stride roundup(K/128, 4). What blockgemm-bench measured
  // before the row-major default.
  kCublasLt,
};

struct ProtocolOptions {
  bool burst = true;   // graph replays right after set-up, whatever clock the card is at
  bool steady = true;  // the same after warm_seconds of replays of that backend (M >= steady_min_m)
  int rounds = 2;      // each protocol's passes over the backends, in reverse order on odd rounds
  double warm_seconds = 1.0;
  int64_t steady_min_m = 512;  // below this the card does not reach its power cap within a call
  int timed_replays = 7;
  bool steady_applies(int64_t m) const { return steady && m >= steady_min_m; }
};

struct Options {
  bool run_gemm = true;
  bool run_quantizers = false;
  std::vector<Shape> shapes;
  Paths paths;
  std::vector<QuantizerCase> quantizer_cases;
  blockgemm::DType out_dtype = blockgemm::DType::kBFloat16;
  WeightScaleLayout weight_scale = WeightScaleLayout::kBlock128x128;
  ScaleLayout scale_layout = ScaleLayout::kRowMajor;
  ProtocolOptions protocol;
  std::string json_path;
  bool run_baselines = true;
  int64_t check_rows = 64;
  uint64_t seed = 0x5EED2026;
};

// Parses argv; prints the usage and exits with status 0 for --help, 2 for a usage error.
Options parse_options(int argc, char** argv);

const char* out_dtype_name(blockgemm::DType dtype);
const char* scale_layout_name(ScaleLayout layout);
std::string protocol_name(const ProtocolOptions& protocol);

}  // namespace blockgemm_bench
