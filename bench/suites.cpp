#include "suites.h"

namespace blockgemm_bench {

const std::vector<std::pair<int64_t, int64_t>>& deepseek_nk() {
  static const std::vector<std::pair<int64_t, int64_t>> pairs = {
      {2112, 7168}, {576, 7168}, {24576, 1536}, {32768, 512}, {7168, 16384}, {4096, 7168}, {7168, 2048}};
  return pairs;
}

const std::vector<int64_t>& deepseek_m() {
  static const std::vector<int64_t> ms = {1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 512, 4096};
  return ms;
}

std::vector<Shape> deepseek_shapes(const std::vector<int64_t>& ms) {
  std::vector<Shape> shapes;
  for (const auto& [n, k] : deepseek_nk()) {
    for (int64_t m : ms) shapes.push_back({m, n, k});
  }
  return shapes;
}

const std::vector<QuantizerCase>& default_quantizer_cases() {
  static const std::vector<QuantizerCase> cases = {
      {false, 4096, 7168}, {false, 16384, 7168}, {false, 128, 7168}, {true, 7168, 16384}, {true, 2112, 7168}};
  return cases;
}

}  // namespace blockgemm_bench
