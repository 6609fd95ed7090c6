// The problems blockgemm-bench times: GEMM shapes (the DeepSeek-V3 suite or shapes from the command line)
// and the quantizer sizes of --quantizers.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace blockgemm_bench {

struct Shape {
  int64_t m = 0, n = 0, k = 0;
};

struct QuantizerCase {
  bool per_block = false;  // per_block_cast_to_fp8, else per_token_cast_to_fp8
  int64_t rows = 0, cols = 0;
};

// DeepSeek-V3's projection shapes (N, K), the suite anchors_h100.md reports.
const std::vector<std::pair<int64_t, int64_t>>& deepseek_nk();
// The M values the suite crosses them with: decode steps up to prefill batches.
const std::vector<int64_t>& deepseek_m();

// The suite's (N, K) pairs crossed with `ms`, grouped by (N, K) so consecutive shapes share a weight.
std::vector<Shape> deepseek_shapes(const std::vector<int64_t>& ms);

// Activations of a prefill batch, a large prefill and a decode step (per token, (M, K)), and the two
// weights a bf16 checkpoint would quantize (per block, (N, K)).
const std::vector<QuantizerCase>& default_quantizer_cases();

}  // namespace blockgemm_bench
