// The fuzzer's cases: caps, random numbers, one case's parameters drawn from (seed, index), and its host
// data. Shared by the case runners (fuzz_run.cpp) and the command line (fuzz_gemm.cpp).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "blockgemm/reference.h"
#include "blockgemm/tensor.h"

namespace blockgemm::fuzz {

namespace ref = blockgemm::reference;

// ---- caps -------------------------------------------------------------------------------------------------

struct Caps {
  int64_t max_m = 16384, max_n = 16384, max_k = 8192;
};
const Caps kDefaultCaps{16384, 16384, 8192};
const Caps kLargeCaps{16384, 65536, 32768};

// ---- random numbers: splitmix64, a stream per (seed, case) and per data chunk -----------------------------

inline uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(mix64(seed)) {}
  Rng(uint64_t a, uint64_t b) : state_(mix64(mix64(a) ^ mix64(b + 0x632BE59BD9B4E019ull))) {}

  uint64_t next() {
    state_ += 0x9E3779B97F4A7C15ull;
    uint64_t z = state_;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // [0, 1)
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  // [0, n)
  int64_t below(int64_t n) { return static_cast<int64_t>(next() % static_cast<uint64_t>(n)); }
  bool chance(double p) { return uniform() < p; }
  // Log-uniform integer in [lo, hi]: small values are as likely per decade as large ones.
  int64_t log_uniform(int64_t lo, int64_t hi) {
    const double v =
        std::exp(uniform(std::log(static_cast<double>(lo)), std::log(static_cast<double>(hi) + 1)));
    return std::clamp(static_cast<int64_t>(v), lo, hi);
  }
  // Two standard normal values (Box-Muller).
  void normal_pair(float& x, float& y) {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    const double t = 6.283185307179586 * u2;
    x = static_cast<float>(r * std::cos(t));
    y = static_cast<float>(r * std::sin(t));
  }

 private:
  uint64_t state_;
};

// ---- host parallelism -------------------------------------------------------------------------------------

// Runs task(i) for i in [0, count) on all cores; results must not depend on which thread runs what.
void parallel_for(int64_t count, const std::function<void(int64_t)>& task);

// ---- one case's parameters --------------------------------------------------------------------------------

enum class Combo { kFp8Fp8, kBf16Fp8, kBf16Bf16, kFp8Bf16 };  // the last one must be rejected

const char* combo_name(Combo c);

struct CaseParams {
  int64_t index = 0;
  Combo combo = Combo::kFp8Fp8;
  int64_t m = 0, n = 0, k = 0;
  bool per_row_weight_scale = false;      // fp8 weight only
  bool column_major_input_scale = false;  // fp8 input only
  DType out_dtype = DType::kBFloat16;
  int64_t out_pad = 0;      // elements past N in each out row
  double input_log10 = 0;   // per-case magnitude of the input (log10)
  double weight_log10 = 0;  // same for the weight
  uint64_t data_seed = 0;

  bool input_fp8() const { return combo == Combo::kFp8Fp8 || combo == Combo::kFp8Bf16; }
  bool weight_fp8() const { return combo == Combo::kFp8Fp8 || combo == Combo::kBf16Fp8; }
  bool error_case() const { return combo == Combo::kFp8Bf16; }

  std::string describe() const {
    std::ostringstream os;
    os.precision(3);
    os << combo_name(combo) << " M=" << m << " N=" << n << " K=" << k;
    if (weight_fp8()) os << " weight_scale=" << (per_row_weight_scale ? "per-row" : "per-block");
    if (input_fp8()) os << " input_scale=" << (column_major_input_scale ? "col-major" : "row-major");
    os << " out=" << dtype_name(out_dtype) << " out_pad=" << out_pad << " magnitude(input)=1e" << input_log10
       << " magnitude(weight)=1e" << weight_log10;
    return os.str();
  }
};

CaseParams draw_case(uint64_t seed, int64_t index, const Caps& caps);

// ---- host data --------------------------------------------------------------------------------------------

// One operand on the host: the bits uploaded (fp8 values + scales, or bf16) and its reference quantization.
struct HostOperand {
  std::vector<uint16_t> bf16;  // bf16 operands: what the library receives
  ref::Quantized q;  // fp8 operands: what the library receives; bf16 ones: the library's quantization
};

// rows x k random normal values times 10^(magnitude + U[0, 2]) per row, rounded to bf16 when `bf16`, then
// quantized per 1x128 group (per_block false) or per 128x128 block with the reference quantizers. Generated
// and quantized in 128-row chunks (all cores, each chunk its own random stream): the result is the same as
// quantizing the whole matrix at once, since no group or block crosses a chunk.
HostOperand make_operand(int64_t rows, int64_t k, bool bf16, bool per_block, double magnitude, uint64_t seed);

}  // namespace blockgemm::fuzz
