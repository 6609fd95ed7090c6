// The fuzzer's case drawing and host data generation, declared in fuzz_case.h; parallel_for spreads the
// data generation over all cores.
#include "fuzz_case.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace blockgemm::fuzz {
namespace {

constexpr double kMemoryBudget = 1.5e9;  // device bytes per case
constexpr int64_t kChunkRows = 128;      // data is generated and quantized in chunks of 128 rows
constexpr double kErrorCaseProbability = 0.05;

}  // namespace

// ---- host parallelism -------------------------------------------------------------------------------------

namespace {

int num_threads() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

void parallel_for(int64_t count, const std::function<void(int64_t)>& task) {
  if (count <= 0) return;
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto worker = [&] {
    for (int64_t i = next++; i < count; i = next++) {
      try {
        task(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
      }
    }
  };
  const int64_t threads = std::min<int64_t>(num_threads(), count);
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < threads; ++t) pool.emplace_back(worker);
  worker();
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
}

// ---- one case's parameters --------------------------------------------------------------------------------

const char* combo_name(Combo c) {
  switch (c) {
    case Combo::kFp8Fp8:
      return "fp8 x fp8";
    case Combo::kBf16Fp8:
      return "bf16 x fp8";
    case Combo::kBf16Bf16:
      return "bf16 x bf16";
    case Combo::kFp8Bf16:
      return "fp8 x bf16 (must be rejected)";
  }
  return "?";
}

namespace {

std::size_t device_bytes(const CaseParams& p) {
  const double m = static_cast<double>(p.m), n = static_cast<double>(p.n), k = static_cast<double>(p.k);
  double bytes =
      m * k * (p.input_fp8() ? 1 : 2) + n * k * (p.weight_fp8() ? 1 : 2) +
      m * static_cast<double>(p.n + p.out_pad) * static_cast<double>(blockgemm::dtype_size(p.out_dtype));
  if (!p.input_fp8()) bytes += m * k;   // workspace: fp8 copy of the input
  if (!p.weight_fp8()) bytes += n * k;  // workspace: fp8 copy of the weight
  bytes += (m + n) * (k / 128) * 4;     // scales
  return static_cast<std::size_t>(bytes);
}

}  // namespace

CaseParams draw_case(uint64_t seed, int64_t index, const Caps& caps) {
  Rng rng(seed, static_cast<uint64_t>(index));
  CaseParams p;
  p.index = index;
  if (rng.chance(kErrorCaseProbability)) {
    p.combo = Combo::kFp8Bf16;
  } else {
    const Combo combos[] = {Combo::kFp8Fp8, Combo::kBf16Fp8, Combo::kBf16Bf16};
    p.combo = combos[rng.below(3)];
  }
  p.per_row_weight_scale = p.weight_fp8() && rng.chance(0.5);
  p.column_major_input_scale = p.input_fp8() && rng.chance(0.5);
  const DType outs[] = {DType::kBFloat16, DType::kFloat16, DType::kFloat32};
  p.out_dtype = outs[rng.below(3)];
  // Padding keeps every row 16-byte aligned: steps of 16 bytes, 8..64 elements.
  if (rng.chance(0.5)) {
    const int64_t step = 16 / static_cast<int64_t>(blockgemm::dtype_size(p.out_dtype));
    p.out_pad = 8 + step * rng.below((64 - 8) / step + 1);
  }

  // The rejected combination needs no large shapes: it must fail before touching memory.
  const Caps shape_caps = p.error_case()
                              ? Caps{std::min<int64_t>(caps.max_m, 256), std::min<int64_t>(caps.max_n, 1024),
                                     std::min<int64_t>(caps.max_k, 1024)}
                              : caps;
  do {
    p.m = rng.log_uniform(1, shape_caps.max_m);
    p.n = 16 * rng.log_uniform(1, shape_caps.max_n / 16);
    p.k = 128 * rng.log_uniform(1, shape_caps.max_k / 128);
  } while (static_cast<double>(device_bytes(p)) > kMemoryBudget);

  if (p.out_dtype == DType::kFloat16) {
    // fp16 has a narrow range: keep the typical output (before the up-to-10^2 row factors of both operands)
    // between 1e-2 and ~0.3 so the largest outputs stay far from 65504 and the smallest away from subnormals.
    const double typical = rng.uniform(-2.0, -0.5);
    const double sum = typical - 0.5 * std::log10(static_cast<double>(p.k));
    p.input_log10 = rng.uniform(std::max(-6.0, sum - 6.0), std::min(6.0, sum + 6.0));
    p.weight_log10 = sum - p.input_log10;
  } else {
    p.input_log10 = rng.uniform(-6.0, 6.0);
    p.weight_log10 = rng.uniform(-6.0, 6.0);
  }
  p.data_seed = rng.next();
  return p;
}

// ---- host data --------------------------------------------------------------------------------------------

HostOperand make_operand(int64_t rows, int64_t k, bool bf16, bool per_block, double magnitude,
                         uint64_t seed) {
  const int64_t kg = k / ref::kGroupK;
  HostOperand op;
  op.q.rows = rows;
  op.q.cols = k;
  op.q.scale_rows = per_block ? (rows + 127) / 128 : rows;
  op.q.scale_cols = kg;
  op.q.values.resize(static_cast<std::size_t>(rows * k));
  op.q.scales.resize(static_cast<std::size_t>(op.q.scale_rows * kg));
  if (bf16) op.bf16.resize(static_cast<std::size_t>(rows * k));
  const int64_t chunks = (rows + kChunkRows - 1) / kChunkRows;
  parallel_for(chunks, [&](int64_t c) {
    const int64_t r0 = c * kChunkRows, cr = std::min(kChunkRows, rows - r0);
    Rng rng(seed, static_cast<uint64_t>(c));
    std::vector<float> x(static_cast<std::size_t>(cr * k));
    for (int64_t r = 0; r < cr; ++r) {
      const float factor = static_cast<float>(std::pow(10.0, magnitude + rng.uniform(0.0, 2.0)));
      float* row = x.data() + r * k;
      for (int64_t i = 0; i < k; i += 2) {  // k is even
        rng.normal_pair(row[i], row[i + 1]);
        row[i] *= factor;
        row[i + 1] *= factor;
      }
    }
    if (bf16) {
      uint16_t* bits = op.bf16.data() + r0 * k;
      for (std::size_t i = 0; i < x.size(); ++i) {
        bits[i] = ref::float_to_bf16(x[i]);
        x[i] = ref::bf16_to_float(bits[i]);
      }
    }
    const ref::Quantized q =
        per_block ? ref::per_block_cast_to_fp8(x.data(), cr, k) : ref::per_token_cast_to_fp8(x.data(), cr, k);
    std::copy(q.values.begin(), q.values.end(), op.q.values.begin() + r0 * k);
    std::copy(q.scales.begin(), q.scales.end(), op.q.scales.begin() + (per_block ? c : r0) * kg);
  });
  return op;
}

}  // namespace blockgemm::fuzz
