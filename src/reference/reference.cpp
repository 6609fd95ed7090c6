// CPU reference implementation. See include/blockgemm/reference.h for the contract of each function.
#include "blockgemm/reference.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <thread>

namespace blockgemm::reference {
namespace {

uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

float bits_float(uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof(x));
  return x;
}

constexpr uint32_t kF32AbsMask = 0x7FFFFFFFu;
constexpr uint32_t kF32InfBits = 0x7F800000u;

// Rounds the non-negative, finite float whose bits are `abs_bits` to the nearest value (ties to even) of a
// binary format with `man_bits` explicit mantissa bits and exponent bias `bias`, with gradual underflow and
// an unbounded exponent range, and returns the magnitude encoding ((biased exponent << man_bits) | mantissa).
// A carry out of the mantissa moves into the exponent field, which is exactly the next representable value.
// Overflow is the caller's job.
uint32_t round_magnitude(uint32_t abs_bits, int man_bits, int bias) {
  const int f32_exp = static_cast<int>(abs_bits >> 23);
  const uint32_t f32_man = abs_bits & 0x7FFFFFu;
  // value = significand * 2^(exp - 150), with the implicit bit for normal floats.
  const uint64_t significand = f32_exp != 0 ? (f32_man | 0x800000u) : f32_man;
  const int exp = f32_exp != 0 ? f32_exp : 1;
  // Target biased exponent if the value were normal there.
  const int target_exp = exp - 127 + bias;
  // Bits dropped from the 24-bit significand: the mantissa width difference, plus the extra
  // denormalisation shift when the value lies below the target's smallest normal.
  const int shift = (23 - man_bits) + std::max(0, 1 - target_exp);
  if (shift >= 40) return 0;  // below half of the smallest subnormal (significand < 2^24)
  const uint64_t kept = significand >> shift;
  const uint64_t rest = significand & ((uint64_t{1} << shift) - 1);
  const uint64_t half = uint64_t{1} << (shift - 1);
  // For normals, `kept` includes the implicit bit, which adds one to the exponent field: use
  // (target_exp - 1) for the field so that the sum is right. For subnormals the field is 0.
  uint64_t result = (static_cast<uint64_t>(std::max(target_exp, 1) - 1) << man_bits) + kept;
  if (rest > half || (rest == half && (result & 1u) != 0)) ++result;
  return static_cast<uint32_t>(result);
}

const std::array<float, 256>& fp8_decode_table() {
  static const std::array<float, 256> table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = fp8_e4m3_to_float(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

// amax update that propagates NaN: a NaN element makes amax NaN, and once amax is NaN it stays NaN
// (a > NaN is false).
inline float amax_update(float amax, float v) {
  const float a = std::fabs(v);
  return (std::isnan(a) || a > amax) ? a : amax;
}

// scale = max(amax, 1e-4) / 448 in fp32; a NaN amax stays NaN (the comparison is false).
inline float scale_from_amax(float amax) {
  if (amax < kAmaxFloor) amax = kAmaxFloor;
  return amax / kFp8Max;
}

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Conversions
// ---------------------------------------------------------------------------------------------------------

uint8_t float_to_fp8_e4m3(float x) {
  const uint32_t u = float_bits(x);
  const uint32_t abs_bits = u & kF32AbsMask;
  // NaN: CUDA's host path canonicalises the input NaN first, so the result is 0x7F whatever the sign.
  if (abs_bits > kF32InfBits) return 0x7F;
  const uint8_t sign = static_cast<uint8_t>((u >> 24) & 0x80u);
  // Everything above 448 (up to and including Inf) saturates: values in (448, 464] round to 448 anyway,
  // larger ones would round to 480 / overflow, which satfinite clamps to the largest finite value.
  if (abs_bits > float_bits(kFp8Max)) return static_cast<uint8_t>(sign | 0x7Eu);
  return static_cast<uint8_t>(sign | round_magnitude(abs_bits, 3, 7));
}

float fp8_e4m3_to_float(uint8_t bits) {
  const bool negative = (bits & 0x80u) != 0;
  const int exp = (bits >> 3) & 0xF;
  const int man = bits & 0x7;
  if (exp == 0xF && man == 0x7) return std::numeric_limits<float>::quiet_NaN();
  float magnitude;
  if (exp == 0) {
    magnitude = std::ldexp(static_cast<float>(man), -9);  // subnormal: man * 2^-9
  } else {
    magnitude = std::ldexp(static_cast<float>(8 + man), exp - 7 - 3);  // (1.man) * 2^(exp-7)
  }
  return negative ? -magnitude : magnitude;
}

uint16_t float_to_bf16(float x) {
  const uint32_t u = float_bits(x);
  const uint32_t abs_bits = u & kF32AbsMask;
  if (abs_bits > kF32InfBits) return 0x7FFF;  // canonical quiet NaN, as CUDA's conversion produces
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  if (abs_bits == kF32InfBits) return static_cast<uint16_t>(sign | 0x7F80u);
  // Same exponent range as fp32: rounding up from the largest finite value carries into 0x7F80 (Inf).
  return static_cast<uint16_t>(sign | round_magnitude(abs_bits, 7, 127));
}

float bf16_to_float(uint16_t bits) {
  return bits_float(static_cast<uint32_t>(bits) << 16);
}

uint16_t float_to_fp16(float x) {
  const uint32_t u = float_bits(x);
  const uint32_t abs_bits = u & kF32AbsMask;
  if (abs_bits > kF32InfBits) return 0x7FFF;  // canonical quiet NaN, as CUDA's conversion produces
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  // |x| >= 65536 (Inf included) is beyond 65504 + half an ulp: Inf. Smaller values that round up past
  // 65504 carry into the exponent field and give 0x7C00 (Inf) by themselves.
  if (abs_bits >= 0x47800000u) return static_cast<uint16_t>(sign | 0x7C00u);
  return static_cast<uint16_t>(sign | round_magnitude(abs_bits, 10, 15));
}

float fp16_to_float(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const int exp = (bits >> 10) & 0x1F;
  const uint32_t man = bits & 0x3FFu;
  if (exp == 0x1F) return bits_float(sign | kF32InfBits | (man << 13));  // Inf, or NaN keeping its payload
  float magnitude;
  if (exp == 0) {
    magnitude = std::ldexp(static_cast<float>(man), -24);
  } else {
    magnitude = std::ldexp(static_cast<float>(1024 + man), exp - 15 - 10);
  }
  return sign != 0 ? -magnitude : magnitude;
}

// ---------------------------------------------------------------------------------------------------------
// Quantizers
//
// Per group: amax = max |x| (NaN-propagating: one NaN element makes amax NaN), amax = max(amax, 1e-4f),
// scale = amax / 448.0f, value = float_to_fp8_e4m3(x / scale), all in fp32 with plain division.
// Consequences, which a GPU quantizer has to reproduce:
//  - a group containing NaN gets a NaN scale and every value of the group is NaN (0x7F);
//  - a group containing +-Inf (and no NaN) gets scale = +Inf; the Inf elements become Inf/Inf = NaN (0x7F)
//    and the finite ones x/Inf = +-0 (0x00, or 0x80 for negative x);
//  - an all-zero group gets scale 1e-4f / 448.0f and zero values (0x00, or 0x80 for -0.0).
// ---------------------------------------------------------------------------------------------------------

Quantized per_token_cast_to_fp8(const float* x, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0) throw std::invalid_argument("per_token_cast_to_fp8: negative shape");
  Quantized q;
  q.rows = rows;
  q.cols = cols;
  q.scale_rows = rows;
  q.scale_cols = ceil_div(cols, kGroupK);
  q.values.resize(static_cast<size_t>(rows * cols));
  q.scales.resize(static_cast<size_t>(q.scale_rows * q.scale_cols));
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols;
    uint8_t* out = q.values.data() + r * cols;
    for (int64_t g = 0; g < q.scale_cols; ++g) {
      const int64_t c0 = g * kGroupK;
      const int64_t c1 = std::min(cols, c0 + kGroupK);
      float amax = 0.f;
      for (int64_t c = c0; c < c1; ++c) amax = amax_update(amax, row[c]);
      const float scale = scale_from_amax(amax);
      q.scales[static_cast<size_t>(r * q.scale_cols + g)] = scale;
      for (int64_t c = c0; c < c1; ++c) out[c] = float_to_fp8_e4m3(row[c] / scale);
    }
  }
  return q;
}

Quantized per_block_cast_to_fp8(const float* x, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0) throw std::invalid_argument("per_block_cast_to_fp8: negative shape");
  Quantized q;
  q.rows = rows;
  q.cols = cols;
  q.scale_rows = ceil_div(rows, kGroupK);
  q.scale_cols = ceil_div(cols, kGroupK);
  q.values.resize(static_cast<size_t>(rows * cols));
  q.scales.resize(static_cast<size_t>(q.scale_rows * q.scale_cols));
  for (int64_t br = 0; br < q.scale_rows; ++br) {
    const int64_t r0 = br * kGroupK;
    const int64_t r1 = std::min(rows, r0 + kGroupK);
    for (int64_t bc = 0; bc < q.scale_cols; ++bc) {
      const int64_t c0 = bc * kGroupK;
      const int64_t c1 = std::min(cols, c0 + kGroupK);
      float amax = 0.f;
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) amax = amax_update(amax, x[r * cols + c]);
      }
      const float scale = scale_from_amax(amax);
      q.scales[static_cast<size_t>(br * q.scale_cols + bc)] = scale;
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t c = c0; c < c1; ++c) {
          q.values[static_cast<size_t>(r * cols + c)] = float_to_fp8_e4m3(x[r * cols + c] / scale);
        }
      }
    }
  }
  return q;
}

// ---------------------------------------------------------------------------------------------------------
// GEMM
//
// out[m][n] = sum_g (double(a_scale[m][g]) * double(b_scale[row(n)][g])) * S_g(m, n), summed over the
// K-groups g in increasing order, where S_g(m, n) = sum_{k in group g} double(a[m][k]) * double(b[n][k]).
// Each product of two fp8 values is an 8-bit integer times a power of two in [2^-18, 2^17], so S_g (any
// partial sum of at most 128 of them) needs at most ~44 significant bits: it is exact in double, whatever
// the summation order. The scale product (24 x 24 bits) is exact too, so the only roundings are the final
// multiply and the accumulation over groups, in a fixed order: results do not depend on the thread count.
// K need not be a multiple of 128: the last group is then partial, and the scale row stride is
// ceil(K/128) (equal to K/128 in the usual case).
//
// Work is split into tiles of kTileM x kTileN outputs; threads take tiles from an atomic counter. Inside a
// tile, for each K-group the A rows and B columns of the group are decoded to double (B packed in panels
// of kMicroN columns interleaved along k, so that the micro-kernel reads them contiguously).
// ---------------------------------------------------------------------------------------------------------

namespace {

constexpr int kTileM = 32;
constexpr int kTileN = 64;
constexpr int kMicroM = 2;
constexpr int kMicroN = 4;
static_assert(kTileM % kMicroM == 0 && kTileN % kMicroN == 0, "tile sizes");

struct GemmProblem {
  const uint8_t* a;
  const float* a_scale;
  const uint8_t* b;
  const float* b_scale;
  bool per_row_b_scale;
  int64_t m, n, k, groups;
  double* out;
  int64_t row_begin, row_end;
};

// s[i][j] = sum_k a_rows[i][k] * panel[k][j] for a kMicroM x kMicroN block.
inline void micro_kernel(const double* a0, const double* a1, const double* panel, int64_t kw,
                         double s[kMicroM][kMicroN]) {
  double acc0[kMicroN] = {0, 0, 0, 0};
  double acc1[kMicroN] = {0, 0, 0, 0};
  for (int64_t kk = 0; kk < kw; ++kk) {
    const double x0 = a0[kk];
    const double x1 = a1[kk];
    const double* p = panel + kk * kMicroN;
    for (int j = 0; j < kMicroN; ++j) {
      acc0[j] += x0 * p[j];
      acc1[j] += x1 * p[j];
    }
  }
  for (int j = 0; j < kMicroN; ++j) {
    s[0][j] = acc0[j];
    s[1][j] = acc1[j];
  }
}

class TileWorker {
 public:
  explicit TileWorker(const GemmProblem& p)
      : p_(p),
        a_buf_(static_cast<size_t>(kTileM) * kGroupK),
        b_buf_(static_cast<size_t>(kTileN) * kGroupK),
        acc_(static_cast<size_t>(kTileM) * kTileN) {}

  void run(int64_t m0, int64_t n0) {
    const auto& lut = fp8_decode_table();
    const int64_t mt = std::min<int64_t>(kTileM, p_.row_end - m0);
    const int64_t nt = std::min<int64_t>(kTileN, p_.n - n0);
    // Round up to whole micro tiles; padding rows / columns hold zeros and are never written out.
    const int64_t mt_pad = (mt + kMicroM - 1) / kMicroM * kMicroM;
    const int64_t nt_pad = (nt + kMicroN - 1) / kMicroN * kMicroN;
    std::fill(acc_.begin(), acc_.end(), 0.0);
    for (int64_t g = 0; g < p_.groups; ++g) {
      const int64_t k0 = g * kGroupK;
      const int64_t kw = std::min<int64_t>(kGroupK, p_.k - k0);
      // A rows of the group, row-major [mt_pad][kw].
      for (int64_t i = 0; i < mt_pad; ++i) {
        double* dst = a_buf_.data() + i * kw;
        if (i < mt) {
          const uint8_t* src = p_.a + (m0 + i) * p_.k + k0;
          for (int64_t kk = 0; kk < kw; ++kk) dst[kk] = lut[src[kk]];
        } else {
          std::fill(dst, dst + kw, 0.0);
        }
      }
      // B columns of the group, in panels [nt_pad / kMicroN][kw][kMicroN].
      for (int64_t j = 0; j < nt_pad; ++j) {
        double* dst = b_buf_.data() + (j / kMicroN) * kw * kMicroN + (j % kMicroN);
        if (j < nt) {
          const uint8_t* src = p_.b + (n0 + j) * p_.k + k0;
          for (int64_t kk = 0; kk < kw; ++kk) dst[kk * kMicroN] = lut[src[kk]];
        } else {
          for (int64_t kk = 0; kk < kw; ++kk) dst[kk * kMicroN] = 0.0;
        }
      }
      double sb[kTileN];
      for (int64_t j = 0; j < nt; ++j) {
        const int64_t n = n0 + j;
        const int64_t b_row = p_.per_row_b_scale ? n : n / kGroupK;
        sb[j] = static_cast<double>(p_.b_scale[b_row * p_.groups + g]);
      }
      for (int64_t i = 0; i < mt_pad; i += kMicroM) {
        const double* a0 = a_buf_.data() + i * kw;
        for (int64_t j = 0; j < nt_pad; j += kMicroN) {
          double s[kMicroM][kMicroN];
          micro_kernel(a0, a0 + kw, b_buf_.data() + (j / kMicroN) * kw * kMicroN, kw, s);
          for (int64_t di = 0; di < kMicroM && i + di < mt; ++di) {
            const double sa = static_cast<double>(p_.a_scale[(m0 + i + di) * p_.groups + g]);
            double* acc_row = acc_.data() + (i + di) * kTileN;
            for (int64_t dj = 0; dj < kMicroN && j + dj < nt; ++dj) {
              acc_row[j + dj] += (sa * sb[j + dj]) * s[di][dj];
            }
          }
        }
      }
    }
    for (int64_t i = 0; i < mt; ++i) {
      std::copy(acc_.data() + i * kTileN, acc_.data() + i * kTileN + nt, p_.out + (m0 + i) * p_.n + n0);
    }
  }

 private:
  const GemmProblem& p_;
  std::vector<double> a_buf_;
  std::vector<double> b_buf_;
  std::vector<double> acc_;
};

}  // namespace

void blockscale_gemm(const uint8_t* a, const float* a_scale, const uint8_t* b, const float* b_scale,
                     bool per_row_b_scale, int64_t m, int64_t n, int64_t k, double* out, int64_t row_begin,
                     int64_t row_end) {
  if (m < 0 || n < 0 || k < 0) throw std::invalid_argument("blockscale_gemm: negative shape");
  if (row_end < 0) row_end = m;
  if (row_begin < 0 || row_begin > row_end || row_end > m) {
    throw std::invalid_argument("blockscale_gemm: bad row range");
  }
  if (row_begin == row_end || n == 0) return;
  if (k == 0) {
    for (int64_t r = row_begin; r < row_end; ++r) std::fill(out + r * n, out + (r + 1) * n, 0.0);
    return;
  }
  GemmProblem problem{};
  problem.a = a;
  problem.a_scale = a_scale;
  problem.b = b;
  problem.b_scale = b_scale;
  problem.per_row_b_scale = per_row_b_scale;
  problem.m = m;
  problem.n = n;
  problem.k = k;
  problem.groups = ceil_div(k, kGroupK);
  problem.out = out;
  problem.row_begin = row_begin;
  problem.row_end = row_end;
  const int64_t tiles_m = ceil_div(row_end - row_begin, kTileM);
  const int64_t tiles_n = ceil_div(n, kTileN);
  const int64_t tiles = tiles_m * tiles_n;
  std::atomic<int64_t> next{0};
  auto worker = [&] {
    TileWorker tile_worker(problem);
    for (int64_t t = next.fetch_add(1); t < tiles; t = next.fetch_add(1)) {
      tile_worker.run(row_begin + (t / tiles_n) * kTileM, (t % tiles_n) * kTileN);
    }
  };
  fp8_decode_table();  // initialise the table before the threads start
  const int64_t hw = std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
  const int64_t num_threads = std::min(hw, tiles);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(num_threads - 1));
  for (int64_t t = 1; t < num_threads; ++t) threads.emplace_back(worker);
  worker();
  for (auto& th : threads) th.join();
}

double calc_diff(const double* x, const double* y, int64_t count) {
  double xy = 0.0, sq = 0.0;
  for (int64_t i = 0; i < count; ++i) {
    xy += x[i] * y[i];
    sq += x[i] * x[i] + y[i] * y[i];
  }
  if (sq == 0.0) return 0.0;  // both all-zero (NaN compares unequal and falls through to NaN)
  return 1.0 - 2.0 * xy / sq;
}

}  // namespace blockgemm::reference
