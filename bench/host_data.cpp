#include "host_data.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <stdexcept>
#include <thread>
#include <utility>

namespace blockgemm_bench {
namespace {

namespace ref = blockgemm::reference;

template <typename Body>
void parallel_for(int64_t count, Body&& body) {
  const int64_t hardware = std::max(1u, std::thread::hardware_concurrency());
  const int64_t threads = std::min<int64_t>(hardware, std::max<int64_t>(1, count / 65536));
  if (threads <= 1) {
    body(int64_t{0}, count);
    return;
  }
  const int64_t chunk = ceil_div(count, threads);
  std::vector<std::thread> pool;
  for (int64_t begin = 0; begin < count; begin += chunk) {
    const int64_t end = std::min(count, begin + chunk);
    pool.emplace_back([&body, begin, end] { body(begin, end); });
  }
  for (std::thread& thread : pool) thread.join();
}

// Counter-based, so any thread can produce any element and the data do not depend on the thread
// count. Irwin-Hall of four 16-bit uniforms scaled to unit variance: bell-shaped like randn (which
// is what the quantisers' amax statistics care about), bounded by 3.46, and cheap.
float normal_like(uint64_t stream_seed, uint64_t index) {
  const uint64_t bits = splitmix64(stream_seed + index * 0xD1B54A32D192ED03ull);
  float sum = 0.f;
  for (int part = 0; part < 4; ++part) sum += static_cast<float>((bits >> (16 * part)) & 0xFFFF);
  const float centred = (sum + 2.f) / 65536.f - 2.f;
  return centred * 1.7320508f;
}

// Round-to-nearest-even to bf16 for finite values, which is all this file ever rounds; inline
// because it runs on every element of every operand.
inline uint16_t round_to_bf16(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof(bits));
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}
inline float bf16_value(uint16_t bits) {
  const uint32_t widened = static_cast<uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof(value));
  return value;
}

const std::array<float, 256>& fp8_decode_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> decoded{};
    for (int bits = 0; bits < 256; ++bits) decoded[bits] = ref::fp8_e4m3_to_float(static_cast<uint8_t>(bits));
    return decoded;
  }();
  return table;
}

// x_fp8 * scale rounded to bf16: the cuBLAS bf16 baseline then multiplies (almost exactly) the
// values the fp8 reference multiplies, so one reference checks all three backends.
std::vector<uint16_t> dequantize_to_bf16(const ref::Quantized& quantized, bool scale_per_row) {
  const std::array<float, 256>& decode = fp8_decode_table();
  std::vector<uint16_t> out(static_cast<std::size_t>(quantized.rows * quantized.cols));
  parallel_for(quantized.rows, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t scale_row = scale_per_row ? row : row / kGroup;
      const float* scales = quantized.scales.data() + scale_row * quantized.scale_cols;
      const uint8_t* values = quantized.values.data() + row * quantized.cols;
      uint16_t* dst = out.data() + row * quantized.cols;
      for (int64_t col = 0; col < quantized.cols; ++col) {
        dst[col] = round_to_bf16(decode[values[col]] * scales[col / kGroup]);
      }
    }
  });
  return out;
}

// Copies a row-major (rows, cols) scale tensor into a column-major one with leading dimension `ld`
// (padding rows hold 1.0: never read, but finite).
std::vector<float> to_column_major(const std::vector<float>& row_major, int64_t rows, int64_t cols,
                                   int64_t ld) {
  std::vector<float> out(static_cast<std::size_t>(ld * cols), 1.f);
  for (int64_t row = 0; row < rows; ++row) {
    for (int64_t col = 0; col < cols; ++col) out[col * ld + row] = row_major[row * cols + col];
  }
  return out;
}

// Copies a row-major (rows, cols) scale tensor into one with row stride `ld` >= cols.
std::vector<float> with_row_stride(const std::vector<float>& row_major, int64_t rows, int64_t cols,
                                   int64_t ld) {
  std::vector<float> out(static_cast<std::size_t>(ld * rows), 1.f);
  for (int64_t row = 0; row < rows; ++row) {
    std::copy_n(row_major.data() + row * cols, cols, out.data() + row * ld);
  }
  return out;
}

}  // namespace

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// The anchors drew randn in bf16: round to bf16 so the fp8 quantisers see the same kind of data.
std::vector<float> random_bf16_exact(int64_t rows, int64_t cols, uint64_t stream_seed) {
  std::vector<float> values(static_cast<std::size_t>(rows * cols));
  parallel_for(rows * cols, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      values[i] = bf16_value(round_to_bf16(normal_like(stream_seed, static_cast<uint64_t>(i))));
    }
  });
  return values;
}

// Rounded with the reference's float_to_bf16: the operands of the bf16 paths. The values are bf16-exact
// already (random_bf16_exact), so the bits decode to exactly `values`, and the fp8 operands quantized
// from `values` are therefore the reference quantization of these bf16 operands: one CPU reference
// serves the fp8 and the bf16 paths. The check guards that invariant should the generator ever change.
std::vector<uint16_t> bf16_bits_of(const std::vector<float>& values) {
  std::vector<uint16_t> bits(values.size());
  std::atomic<bool> exact{true};
  parallel_for(static_cast<int64_t>(values.size()), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      bits[i] = ref::float_to_bf16(values[i]);
      if (ref::bf16_to_float(bits[i]) != values[i]) exact.store(false, std::memory_order_relaxed);
    }
  });
  if (!exact.load()) throw std::runtime_error("random operand values are not bf16-exact");
  return bits;
}

std::shared_ptr<const HostWeight> make_host_weight(int64_t n, int64_t k, WeightScaleLayout layout,
                                                   bool with_bf16, bool with_bf16_data, uint64_t seed) {
  auto weight = std::make_shared<HostWeight>();
  weight->n = n;
  weight->k = k;
  weight->layout = layout;
  const int64_t kg = ceil_div(k, kGroup);
  {
    const uint64_t weight_seed =
        splitmix64(seed ^ splitmix64(static_cast<uint64_t>(n) * 1009u + static_cast<uint64_t>(k)));
    const std::vector<float> values = random_bf16_exact(n, k, weight_seed);
    weight->quantized = layout == WeightScaleLayout::kBlock128x128
                            ? ref::per_block_cast_to_fp8(values.data(), n, k)
                            : ref::per_token_cast_to_fp8(values.data(), n, k);
    if (with_bf16_data) {
      weight->bf16_data = bf16_bits_of(values);
      if (layout != WeightScaleLayout::kBlock128x128) {
        weight->block_quantized = ref::per_block_cast_to_fp8(values.data(), n, k);
      }
    }
  }
  weight->scale_rows = layout == WeightScaleLayout::kBlock128x128 ? ceil_div(n, kGroup) : n;
  weight->scale_ld = lt_weight_scale_ld(n, k, layout);
  if (weight->quantized.scale_rows != weight->scale_rows || weight->quantized.scale_cols != kg) {
    throw std::runtime_error("the reference weight quantiser returned an unexpected scale shape");
  }
  weight->scale_lt =
      layout == WeightScaleLayout::kBlock128x128
          ? with_row_stride(weight->quantized.scales, weight->scale_rows, kg, weight->scale_ld)
          : to_column_major(weight->quantized.scales, weight->scale_rows, kg, weight->scale_ld);
  if (with_bf16)
    weight->bf16 = dequantize_to_bf16(weight->quantized, layout == WeightScaleLayout::kPerRow1x128);
  return weight;
}

HostProblem make_host_problem(const Shape& shape, std::shared_ptr<const HostWeight> weight, bool with_bf16,
                              bool with_bf16_data, uint64_t seed) {
  HostProblem problem;
  problem.shape = shape;
  problem.k_groups = ceil_div(shape.k, kGroup);
  problem.weight = std::move(weight);
  {
    const uint64_t input_seed = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(shape.m) * 1000003u +
                                                             static_cast<uint64_t>(shape.n) * 1009u +
                                                             static_cast<uint64_t>(shape.k) + 0x1234567u));
    const std::vector<float> values = random_bf16_exact(shape.m, shape.k, input_seed);
    problem.input = ref::per_token_cast_to_fp8(values.data(), shape.m, shape.k);
    if (with_bf16_data) problem.input_bf16_data = bf16_bits_of(values);
  }
  if (problem.input.scale_rows != shape.m || problem.input.scale_cols != problem.k_groups) {
    throw std::runtime_error("the reference per_token_cast_to_fp8 returned an unexpected scale shape");
  }
  problem.input_scale_lt =
      to_column_major(problem.input.scales, shape.m, problem.k_groups, lt_input_scale_ld(shape.m));
  if (with_bf16) problem.input_bf16 = dequantize_to_bf16(problem.input, /*scale_per_row=*/true);
  return problem;
}

std::vector<int64_t> rows_to_check(int64_t m, int64_t wanted) {
  std::vector<int64_t> rows;
  if (wanted == 0 || m <= wanted) {
    for (int64_t row = 0; row < m; ++row) rows.push_back(row);
    return rows;
  }
  if (wanted == 1) return {0, m - 1};
  for (int64_t i = 0; i < wanted; ++i) rows.push_back(i * (m - 1) / (wanted - 1));
  return rows;
}

std::vector<double> reference_rows(const HostProblem& problem, const ref::Quantized& weight,
                                   bool per_row_weight_scale, const std::vector<int64_t>& rows) {
  const int64_t k = problem.shape.k;
  const int64_t kg = problem.k_groups;
  const auto count = static_cast<int64_t>(rows.size());
  std::vector<uint8_t> input_rows(static_cast<std::size_t>(count * k));
  std::vector<float> scale_rows(static_cast<std::size_t>(count * kg));
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(input_rows.data() + i * k, problem.input.values.data() + rows[i] * k,
                static_cast<std::size_t>(k));
    std::memcpy(scale_rows.data() + i * kg, problem.input.scales.data() + rows[i] * kg,
                static_cast<std::size_t>(kg) * sizeof(float));
  }
  std::vector<double> out(static_cast<std::size_t>(count * problem.shape.n));
  ref::blockscale_gemm(input_rows.data(), scale_rows.data(), weight.values.data(), weight.scales.data(),
                       per_row_weight_scale, count, problem.shape.n, k, out.data());
  return out;
}

}  // namespace blockgemm_bench
