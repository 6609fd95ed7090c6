// Host-side operands and the CPU reference for blockgemm-bench: randn-like bf16 values, their fp8
// quantization (the library's reference quantizers), the scale layouts each backend reads, and the
// double-precision reference rows every backend is checked against.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "baselines.h"
#include "blockgemm/reference.h"
#include "suites.h"

namespace blockgemm_bench {

constexpr int64_t kGroup = 128;

inline int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// splitmix64: the seed mixer behind every operand, so data depend on (seed, shape) only.
uint64_t splitmix64(uint64_t x);

// Bell-shaped values rounded to bf16 (see host_data.cpp), (rows, cols) row-major.
std::vector<float> random_bf16_exact(int64_t rows, int64_t cols, uint64_t stream_seed);

// `values` as bf16 bits; throws if any value is not bf16-exact.
std::vector<uint16_t> bf16_bits_of(const std::vector<float>& values);

// The weight depends on (N, K) only, so the shapes of the suite that share it (every M) reuse one
// quantisation: the host work is dominated by the weights.
struct HostWeight {
  int64_t n = 0, k = 0;
  WeightScaleLayout layout = WeightScaleLayout::kBlock128x128;
  // (N, K) fp8, scales (ceil(N/128) or N, K/128) row-major and contiguous: also the layout
  // blockgemm.testing's quantizers return, which blockgemm reads under --scale-layout row.
  blockgemm::reference::Quantized quantized;
  // The scales as cuBLASLt reads them (see baselines.cpp): block: row-major with row stride
  // scale_ld; per-row: column-major with leading dimension scale_ld.
  std::vector<float> scale_lt;
  int64_t scale_rows = 0;
  int64_t scale_ld = 0;
  std::vector<uint16_t> bf16;  // dequantized; empty without baselines
  // The bf16-bf16 path's weight: the random values themselves in bf16 (not dequantized), and their
  // 128x128 quantization, the one the library applies inside (empty unless that path runs and the
  // layout is per-row: for block scales `quantized` is that very quantization).
  std::vector<uint16_t> bf16_data;
  blockgemm::reference::Quantized block_quantized;
  const blockgemm::reference::Quantized& bf16_data_reference() const {
    return layout == WeightScaleLayout::kBlock128x128 ? quantized : block_quantized;
  }
};

std::shared_ptr<const HostWeight> make_host_weight(int64_t n, int64_t k, WeightScaleLayout layout,
                                                   bool with_bf16, bool with_bf16_data, uint64_t seed);

struct HostProblem {
  Shape shape;
  int64_t k_groups = 0;
  std::shared_ptr<const HostWeight> weight;
  blockgemm::reference::Quantized input;  // (M, K) fp8, scales (M, K/128) row-major and contiguous
  std::vector<float> input_scale_lt;      // column-major, ld lt_input_scale_ld(M)
  std::vector<uint16_t> input_bf16;       // dequantized; empty without baselines
  // The bf16-input paths' input: the random values themselves in bf16 (empty unless such a path runs).
  std::vector<uint16_t> input_bf16_data;
};

HostProblem make_host_problem(const Shape& shape, std::shared_ptr<const HostWeight> weight, bool with_bf16,
                              bool with_bf16_data, uint64_t seed);

// Rows spread evenly over [0, M), first and last included; all rows when M <= wanted (or wanted 0).
std::vector<int64_t> rows_to_check(int64_t m, int64_t wanted);

// Double-precision out[rows][:] for the chosen rows, as a compact (rows.size(), N) matrix, against
// `weight` (the problem's fp8 weight, or the 128x128 quantization of its bf16 one).
std::vector<double> reference_rows(const HostProblem& problem, const blockgemm::reference::Quantized& weight,
                                   bool per_row_weight_scale, const std::vector<int64_t>& rows);

}  // namespace blockgemm_bench
