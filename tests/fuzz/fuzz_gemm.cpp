// blockgemm_fuzz: random problems through fp8_blockscale_gemm_sm90, checked against the CPU reference.
//
//   blockgemm_fuzz [--cases N] [--seed S] [--case I] [--max-m M] [--max-n N] [--max-k K] [--large]
//
// Case i of seed S draws everything (shapes, dtypes, scale kinds and layouts, out dtype and padding, data
// magnitudes, data) from a generator seeded by (S, i) and the caps, so `--seed S --case I` plus the same caps
// reproduces one case alone. Each case checks: no NaN/Inf in out, out's row padding and the guard regions
// around out untouched, calc_diff against the double-precision CPU reference < 1e-3 on a sample of rows
// (all rows when M <= 16, else at most 16). When that sample leaves rows out, a GPU fp32
// dequantize-then-GEMM reference (gpu_reference.cu) also computes all of M x N: it must agree with the CPU
// reference on the sampled rows (calc_diff < 1e-6), and the whole out must be within calc_diff < 1e-3 of
// it. fp8 input x bf16 weight (5% of cases) must throw blockgemm::Error(kInvalidArgument). The summary
// counts the cases checked on all rows; the last line is `fuzz: P passed, F failed`.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "blockgemm/blockgemm.h"
#include "blockgemm/reference.h"
#include "blockgemm/tensor.h"
#include "gpu_reference.h"
#include "gpu_test_util.h"

namespace {

using blockgemm::DType;
using blockgemm::TensorView;
using blockgemm::testing::check_cuda;
using blockgemm::testing::DeviceBuffer;
namespace ref = blockgemm::reference;

constexpr double kMaxDiff = 1e-3;
// GPU fp32 reference vs CPU double reference: fp32 rounding alone gives ~1e-13; an indexing or decoding
// bug in the GPU reference gives ~1.
constexpr double kMaxGpuReferenceDiff = 1e-6;
constexpr double kMemoryBudget = 1.5e9;    // device bytes per case
constexpr double kReferenceBudget = 4e9;   // reference MACs per case
constexpr std::size_t kGuardBytes = 4096;  // canary regions before and after out
constexpr unsigned char kGuardByte = 0xA5;
constexpr unsigned char kOutByte = 0xFF;  // NaN in bf16, fp16 and fp32
constexpr int64_t kChunkRows = 128;       // data is generated and quantized in chunks of 128 rows
constexpr double kErrorCaseProbability = 0.05;

// ---- caps and options -------------------------------------------------------------------------------------

struct Caps {
  int64_t max_m = 16384, max_n = 16384, max_k = 8192;
};
const Caps kDefaultCaps{16384, 16384, 8192};
const Caps kLargeCaps{16384, 65536, 32768};

struct Options {
  int64_t cases = 2000;
  uint64_t seed = 1;
  std::optional<int64_t> only_case;
  Caps caps;
};

std::string caps_args(const Caps& caps) {
  if (caps.max_m == kDefaultCaps.max_m && caps.max_n == kDefaultCaps.max_n &&
      caps.max_k == kDefaultCaps.max_k)
    return "";
  if (caps.max_m == kLargeCaps.max_m && caps.max_n == kLargeCaps.max_n && caps.max_k == kLargeCaps.max_k)
    return " --large";
  return " --max-m " + std::to_string(caps.max_m) + " --max-n " + std::to_string(caps.max_n) + " --max-k " +
         std::to_string(caps.max_k);
}

// ---- random numbers: splitmix64, a stream per (seed, case) and per data chunk
// ------------------------------

uint64_t mix64(uint64_t x) {
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

// ---- host parallelism
// ---------------------------------------------------------------------------------------

int num_threads() {
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

// Runs task(i) for i in [0, count) on all cores; results must not depend on which thread runs what.
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

// ---- one case's parameters
// ----------------------------------------------------------------------------------

enum class Combo { kFp8Fp8, kBf16Fp8, kBf16Bf16, kFp8Bf16 };  // the last one must be rejected

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

const char* out_name(DType d) {
  switch (d) {
    case DType::kBFloat16:
      return "bf16";
    case DType::kFloat16:
      return "fp16";
    case DType::kFloat32:
      return "fp32";
    default:
      return "?";
  }
}

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
    os << " out=" << out_name(out_dtype) << " out_pad=" << out_pad << " magnitude(input)=1e" << input_log10
       << " magnitude(weight)=1e" << weight_log10;
    return os.str();
  }
};

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

// ---- host data
// ----------------------------------------------------------------------------------------------

// One operand on the host: the bits uploaded (fp8 values + scales, or bf16) and its reference quantization.
struct HostOperand {
  std::vector<uint16_t> bf16;  // bf16 operands: what the library receives
  ref::Quantized q;  // fp8 operands: what the library receives; bf16 ones: the library's quantization
};

// rows x k random normal values times 10^(magnitude + U[0, 2]) per row, rounded to bf16 when `bf16`, then
// quantized per 1x128 group (per_block false) or per 128x128 block with the reference quantizers. Generated
// and quantized in 128-row chunks (all cores, each chunk its own random stream): the result is the same as
// quantizing the whole matrix at once, since no group or block crosses a chunk.
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

// ---- checks
// ---------------------------------------------------------------------------------------------------

bool is_nonfinite(const unsigned char* p, DType dtype) {
  switch (dtype) {
    case DType::kFloat32: {
      uint32_t v;
      std::memcpy(&v, p, 4);
      return (v & 0x7F800000u) == 0x7F800000u;
    }
    case DType::kBFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return (v & 0x7F80u) == 0x7F80u;
    }
    case DType::kFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return (v & 0x7C00u) == 0x7C00u;
    }
    default:
      return true;
  }
}

double to_double(const unsigned char* p, DType dtype) {
  switch (dtype) {
    case DType::kFloat32: {
      float v;
      std::memcpy(&v, p, 4);
      return v;
    }
    case DType::kBFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return ref::bf16_to_float(v);
    }
    case DType::kFloat16: {
      uint16_t v;
      std::memcpy(&v, p, 2);
      return ref::fp16_to_float(v);
    }
    default:
      return std::nan("");
  }
}

int64_t count_changed(const unsigned char* p, std::size_t bytes, unsigned char expected) {
  int64_t changed = 0;
  for (std::size_t i = 0; i < bytes; ++i) changed += p[i] != expected;
  return changed;
}

// The rows the reference computes: all when M <= 16, else 16 including the first and last; fewer (but at
// least 2) when rows * N * K would pass the reference budget.
std::vector<int64_t> sample_rows(const CaseParams& p) {
  const double per_row = static_cast<double>(p.n) * static_cast<double>(p.k);
  const int64_t affordable = std::max<int64_t>(2, static_cast<int64_t>(kReferenceBudget / per_row));
  const int64_t count = std::min({p.m, int64_t{16}, affordable});
  if (count == p.m) {
    std::vector<int64_t> rows(static_cast<std::size_t>(p.m));
    for (int64_t r = 0; r < p.m; ++r) rows[r] = r;
    return rows;
  }
  std::set<int64_t> picked = {0, p.m - 1};
  Rng rng(p.data_seed, 0xC0FFEEull);
  while (static_cast<int64_t>(picked.size()) < count) picked.insert(rng.below(p.m));
  return std::vector<int64_t>(picked.begin(), picked.end());
}

struct Outcome {
  bool pass = false;
  std::string detail;  // what went wrong, or the diff
  bool context_lost = false;
  bool gpu_reference_checked = false;  // all M x N compared with the GPU reference
};

bool context_broken() {
  cudaGetLastError();  // clear non-sticky errors
  return cudaDeviceSynchronize() != cudaSuccess;
}

// fp8 input x bf16 weight: Error(kInvalidArgument) and out untouched.
Outcome run_error_case(const CaseParams& p) {
  Outcome o;
  const int64_t m = p.m, n = p.n, k = p.k, kg = k / 128;
  DeviceBuffer a(static_cast<std::size_t>(m * k)), a_scale(static_cast<std::size_t>(m * kg) * 4),
      b(static_cast<std::size_t>(n * k) * 2);
  const int64_t ldo = n + p.out_pad;
  const std::size_t out_bytes = static_cast<std::size_t>(m * ldo) * blockgemm::dtype_size(p.out_dtype);
  DeviceBuffer out(out_bytes);
  check_cuda(cudaMemset(a.get(), 0, a.bytes()), "memset input");
  check_cuda(cudaMemset(b.get(), 0, b.bytes()), "memset weight");
  check_cuda(cudaMemset(out.get(), kOutByte, out_bytes), "poison out");
  const TensorView input = TensorView::matrix(a.get(), DType::kFloat8E4M3, m, k, 0);
  const TensorView weight = TensorView::matrix(b.get(), DType::kBFloat16, n, k, 0);
  const TensorView input_scale = p.column_major_input_scale
                                     ? TensorView::strided(a_scale.get(), DType::kFloat32, m, kg, 1, m, 0)
                                     : TensorView::strided(a_scale.get(), DType::kFloat32, m, kg, kg, 1, 0);
  const TensorView out_view = TensorView::strided(out.get(), p.out_dtype, m, n, ldo, 1, 0);
  try {
    blockgemm::fp8_blockscale_gemm_sm90(input, weight, input_scale, std::nullopt, out_view);
    o.detail = "no exception (expected blockgemm::Error kInvalidArgument)";
  } catch (const blockgemm::Error& e) {
    if (e.kind() != blockgemm::Error::Kind::kInvalidArgument)
      o.detail = std::string("blockgemm::Error of the wrong kind: ") + e.what();
    else
      o.pass = true;
  } catch (const std::exception& e) {
    o.detail = std::string("unexpected exception type: ") + e.what();
  }
  if (cudaDeviceSynchronize() != cudaSuccess) {
    o.pass = false;
    o.detail += std::string(" CUDA error: ") + cudaGetErrorString(cudaGetLastError());
    o.context_lost = context_broken();
    return o;
  }
  std::vector<unsigned char> host(out_bytes);
  out.download(host.data(), out_bytes);
  if (const int64_t changed = count_changed(host.data(), out_bytes, kOutByte)) {
    o.pass = false;
    o.detail += " out modified (" + std::to_string(changed) + " bytes)";
  }
  if (o.pass) o.detail = "rejected as expected";
  return o;
}

struct GpuReferenceResult {
  double self_diff = 0;  // GPU reference vs CPU reference, on the sampled rows
  double diff = 0;       // the library's out vs GPU reference, all of M x N
  // The row with the largest calc_diff of its own: where to look when `diff` fails (one bad row among
  // thousands barely moves the global calc_diff).
  int64_t worst_row = 0;
  double worst_row_diff = 0;
};

// Runs the GPU reference on the reference quantization (a.q, b.q) over all of M x N and compares it with the
// CPU reference's `expected` on `rows` and with the downloaded out (row stride ldo) everywhere.
GpuReferenceResult check_with_gpu_reference(const CaseParams& p, const ref::Quantized& aq,
                                            const ref::Quantized& bq, bool b_per_row,
                                            const std::vector<int64_t>& rows,
                                            const std::vector<double>& expected,
                                            const unsigned char* out_host, int64_t ldo) {
  const int64_t m = p.m, n = p.n, k = p.k;
  const std::size_t esize = blockgemm::dtype_size(p.out_dtype);
  // Own copies, not the library's operand buffers: nothing the library does to those can reach the
  // reference, and bf16 operands need the reference's quantization anyway.
  DeviceBuffer a_dev(aq.values.size()), a_scale_dev(aq.scales.size() * 4), b_dev(bq.values.size()),
      b_scale_dev(bq.scales.size() * 4), ref_dev(static_cast<std::size_t>(m * n) * 4);
  a_dev.upload(aq.values.data(), aq.values.size());
  a_scale_dev.upload(aq.scales.data(), aq.scales.size() * 4);
  b_dev.upload(bq.values.data(), bq.values.size());
  b_scale_dev.upload(bq.scales.data(), bq.scales.size() * 4);
  blockgemm::fuzz::gpu_reference_gemm(
      static_cast<const uint8_t*>(a_dev.get()), static_cast<const float*>(a_scale_dev.get()),
      static_cast<const uint8_t*>(b_dev.get()), static_cast<const float*>(b_scale_dev.get()), b_per_row, m, n,
      k, static_cast<float*>(ref_dev.get()), nullptr);
  check_cuda(cudaDeviceSynchronize(), "GPU reference");
  std::vector<float> gpu(static_cast<std::size_t>(m * n));
  ref_dev.download(gpu.data(), gpu.size() * 4);

  GpuReferenceResult result;
  const int64_t rs = static_cast<int64_t>(rows.size());
  std::vector<double> sampled(expected.size());
  for (int64_t i = 0; i < rs; ++i)
    for (int64_t c = 0; c < n; ++c) sampled[i * n + c] = gpu[rows[i] * n + c];
  result.self_diff = ref::calc_diff(sampled.data(), expected.data(), static_cast<int64_t>(sampled.size()));

  // ref::calc_diff's sums, per row on all cores and then added in row order: the same total whatever the
  // number of threads.
  std::vector<double> xy(static_cast<std::size_t>(m)), sq(static_cast<std::size_t>(m));
  parallel_for((m + 63) / 64, [&](int64_t blk) {
    for (int64_t r = blk * 64; r < std::min(m, blk * 64 + 64); ++r) {
      const unsigned char* row = out_host + static_cast<std::size_t>(r * ldo) * esize;
      const float* expect = gpu.data() + r * n;
      double row_xy = 0, row_sq = 0;
      for (int64_t c = 0; c < n; ++c) {
        const double x = to_double(row + c * esize, p.out_dtype), y = expect[c];
        row_xy += x * y;
        row_sq += x * x + y * y;
      }
      xy[r] = row_xy;
      sq[r] = row_sq;
    }
  });
  double total_xy = 0, total_sq = 0;
  for (int64_t r = 0; r < m; ++r) {
    total_xy += xy[r];
    total_sq += sq[r];
    const double row_diff = sq[r] == 0.0 ? 0.0 : 1.0 - 2.0 * xy[r] / sq[r];
    // NaN ranks worst; among equals the first row wins.
    const bool worse =
        std::isnan(row_diff) ? !std::isnan(result.worst_row_diff) : row_diff > result.worst_row_diff;
    if (worse) {
      result.worst_row = r;
      result.worst_row_diff = row_diff;
    }
  }
  result.diff = total_sq == 0.0 ? 0.0 : 1.0 - 2.0 * total_xy / total_sq;  // NaN stays NaN, as in calc_diff
  return result;
}

Outcome run_gemm_case(const CaseParams& p) {
  Outcome o;
  const int64_t m = p.m, n = p.n, k = p.k, kg = k / 128;
  const bool in_fp8 = p.input_fp8(), w_fp8 = p.weight_fp8();

  // Host data. The reference always sees the library's quantization: input per 1x128 group, weight per
  // 128x128 block (or per row for fp8 weights with per-row scales).
  const HostOperand a = make_operand(m, k, !in_fp8, false, p.input_log10, p.data_seed ^ 0x1111);
  const bool weight_per_block = !(w_fp8 && p.per_row_weight_scale);
  const HostOperand b = make_operand(n, k, !w_fp8, weight_per_block, p.weight_log10, p.data_seed ^ 0x2222);

  // Device operands.
  DeviceBuffer a_dev(static_cast<std::size_t>(m * k) * (in_fp8 ? 1 : 2));
  DeviceBuffer b_dev(static_cast<std::size_t>(n * k) * (w_fp8 ? 1 : 2));
  if (in_fp8)
    a_dev.upload(a.q.values.data(), a.q.values.size());
  else
    a_dev.upload(a.bf16.data(), a.bf16.size() * 2);
  if (w_fp8)
    b_dev.upload(b.q.values.data(), b.q.values.size());
  else
    b_dev.upload(b.bf16.data(), b.bf16.size() * 2);
  const TensorView input =
      TensorView::matrix(a_dev.get(), in_fp8 ? DType::kFloat8E4M3 : DType::kBFloat16, m, k, 0);
  const TensorView weight =
      TensorView::matrix(b_dev.get(), w_fp8 ? DType::kFloat8E4M3 : DType::kBFloat16, n, k, 0);

  DeviceBuffer a_scale_dev, b_scale_dev;
  std::optional<TensorView> input_scale, weight_scale;
  if (in_fp8) {
    if (p.column_major_input_scale) {
      const int64_t ld = (m + 3) / 4 * 4;  // padded to a multiple of 4; the padding holds NaN
      std::vector<float> col(static_cast<std::size_t>(ld * kg), std::nanf(""));
      for (int64_t r = 0; r < m; ++r)
        for (int64_t g = 0; g < kg; ++g) col[g * ld + r] = a.q.scales[r * kg + g];
      a_scale_dev = DeviceBuffer(col.size() * 4);
      a_scale_dev.upload(col.data(), col.size() * 4);
      input_scale = TensorView::strided(a_scale_dev.get(), DType::kFloat32, m, kg, 1, ld, 0);
    } else {
      a_scale_dev = DeviceBuffer(a.q.scales.size() * 4);
      a_scale_dev.upload(a.q.scales.data(), a.q.scales.size() * 4);
      input_scale = TensorView::matrix(a_scale_dev.get(), DType::kFloat32, m, kg, 0);
    }
  }
  if (w_fp8) {
    b_scale_dev = DeviceBuffer(b.q.scales.size() * 4);
    b_scale_dev.upload(b.q.scales.data(), b.q.scales.size() * 4);
    weight_scale = TensorView::matrix(b_scale_dev.get(), DType::kFloat32, b.q.scale_rows, kg, 0);
  }

  // out between two canary regions; out itself poisoned with NaN bytes.
  const int64_t ldo = n + p.out_pad;
  const std::size_t esize = blockgemm::dtype_size(p.out_dtype);
  const std::size_t out_bytes = static_cast<std::size_t>(m * ldo) * esize;
  DeviceBuffer out_dev(kGuardBytes + out_bytes + kGuardBytes);
  unsigned char* out_base = static_cast<unsigned char*>(out_dev.get());
  check_cuda(cudaMemset(out_base, kGuardByte, kGuardBytes), "guard before");
  check_cuda(cudaMemset(out_base + kGuardBytes, kOutByte, out_bytes), "poison out");
  check_cuda(cudaMemset(out_base + kGuardBytes + out_bytes, kGuardByte, kGuardBytes), "guard after");
  const TensorView out = TensorView::strided(out_base + kGuardBytes, p.out_dtype, m, n, ldo, 1, 0);

  DeviceBuffer workspace_dev;
  std::optional<blockgemm::Workspace> workspace;
  // The bf16 paths' quantized operands; for fp8 x fp8, the optional copy of row-major input scales before
  // long plans (bench/NOTES.md #63), lent as a caller following blockgemm.h would.
  if (const std::size_t bytes =
          blockgemm::fp8_blockscale_gemm_sm90_workspace_bytes(input, weight, input_scale);
      bytes > 0 || !in_fp8 || !w_fp8) {
    workspace_dev = DeviceBuffer(bytes);
    workspace = blockgemm::Workspace{workspace_dev.get(), bytes};
  }
  check_cuda(cudaDeviceSynchronize(), "setup");

  try {
    blockgemm::fp8_blockscale_gemm_sm90(input, weight, input_scale, weight_scale, out, std::nullopt, nullptr,
                                        workspace);
  } catch (const std::exception& e) {
    o.detail = std::string("threw: ") + e.what();
    o.context_lost = context_broken();
    return o;
  }
  if (const cudaError_t status = cudaDeviceSynchronize(); status != cudaSuccess) {
    o.detail = std::string("CUDA error: ") + cudaGetErrorString(status);
    o.context_lost = context_broken();
    return o;
  }

  std::vector<unsigned char> host(out_dev.bytes());
  out_dev.download(host.data(), host.size());
  const unsigned char* out_host = host.data() + kGuardBytes;

  // NaN / Inf inside M x N, and changes to the row padding, row by row on all cores.
  std::vector<int64_t> nonfinite(static_cast<std::size_t>(m)), pad_changed(static_cast<std::size_t>(m));
  const int64_t row_blocks = (m + 63) / 64;
  parallel_for(row_blocks, [&](int64_t blk) {
    for (int64_t r = blk * 64; r < std::min(m, blk * 64 + 64); ++r) {
      const unsigned char* row = out_host + static_cast<std::size_t>(r * ldo) * esize;
      int64_t bad = 0;
      for (int64_t c = 0; c < n; ++c) bad += is_nonfinite(row + c * esize, p.out_dtype);
      nonfinite[r] = bad;
      pad_changed[r] = count_changed(row + n * esize, static_cast<std::size_t>(p.out_pad) * esize, kOutByte);
    }
  });
  int64_t nonfinite_total = 0, pad_total = 0, first_bad_row = -1;
  for (int64_t r = 0; r < m; ++r) {
    nonfinite_total += nonfinite[r];
    pad_total += pad_changed[r];
    if (first_bad_row < 0 && nonfinite[r] != 0) first_bad_row = r;
  }
  const int64_t guard_before = count_changed(host.data(), kGuardBytes, kGuardByte);
  const int64_t guard_after = count_changed(out_host + out_bytes, kGuardBytes, kGuardByte);

  // Reference on the sampled rows, gathered into a compact problem.
  const std::vector<int64_t> rows = sample_rows(p);
  const int64_t rs = static_cast<int64_t>(rows.size());
  std::vector<uint8_t> a_rows(static_cast<std::size_t>(rs * k));
  std::vector<float> a_scales(static_cast<std::size_t>(rs * kg));
  for (int64_t i = 0; i < rs; ++i) {
    std::copy_n(a.q.values.begin() + rows[i] * k, k, a_rows.begin() + i * k);
    std::copy_n(a.q.scales.begin() + rows[i] * kg, kg, a_scales.begin() + i * kg);
  }
  std::vector<double> expected(static_cast<std::size_t>(rs * n)), got(expected.size());
  ref::blockscale_gemm(a_rows.data(), a_scales.data(), b.q.values.data(), b.q.scales.data(),
                       !weight_per_block, rs, n, k, expected.data());
  for (int64_t i = 0; i < rs; ++i)
    for (int64_t c = 0; c < n; ++c)
      got[i * n + c] = to_double(out_host + static_cast<std::size_t>(rows[i] * ldo + c) * esize, p.out_dtype);
  const double diff = ref::calc_diff(got.data(), expected.data(), static_cast<int64_t>(got.size()));

  // The rows the sample skipped: all of M x N against the GPU reference, itself checked on the sample.
  std::optional<GpuReferenceResult> gpu_ref;
  if (rs < m)
    gpu_ref = check_with_gpu_reference(p, a.q, b.q, !weight_per_block, rows, expected, out_host, ldo);
  const bool gpu_ref_trusted = !gpu_ref || gpu_ref->self_diff < kMaxGpuReferenceDiff;
  o.gpu_reference_checked = gpu_ref.has_value();

  std::ostringstream os;
  os.precision(3);
  os << "diff=" << diff << " rows_checked=" << rs;
  if (gpu_ref) os << " gpu_ref_diff=" << gpu_ref->diff << " rows_checked_gpu=" << m;
  // A few wrong rows or one wrong tile barely move the calc_diff of a whole large output (a fraction f of
  // zeroed outputs gives about f / 2), so every row must also pass on its own.
  const bool gpu_rows_ok = !gpu_ref || (gpu_ref->diff < kMaxDiff && gpu_ref->worst_row_diff < kMaxDiff);
  if (!gpu_rows_ok) os << " (worst row " << gpu_ref->worst_row << ": " << gpu_ref->worst_row_diff << ")";
  if (!gpu_ref_trusted)
    os << " GPU reference disagrees with the CPU reference on the sampled rows (calc_diff="
       << gpu_ref->self_diff << ")";
  if (nonfinite_total) os << " nonfinite=" << nonfinite_total << " (first in row " << first_bad_row << ")";
  if (pad_total) os << " padding_bytes_written=" << pad_total;
  if (guard_before) os << " guard_before_bytes_written=" << guard_before;
  if (guard_after) os << " guard_after_bytes_written=" << guard_after;
  o.pass = nonfinite_total == 0 && pad_total == 0 && guard_before == 0 && guard_after == 0 &&
           diff < kMaxDiff && gpu_ref_trusted && gpu_rows_ok;
  if (!o.pass) {
    try {
      os << " plan: " << blockgemm::describe_plan(m, n, k, p.out_dtype, !weight_per_block);
    } catch (const std::exception&) {
    }
  }
  o.detail = os.str();
  return o;
}

// ---- command line
// -------------------------------------------------------------------------------------------

[[noreturn]] void usage(const char* message) {
  std::fprintf(stderr,
               "blockgemm_fuzz: %s\n"
               "usage: blockgemm_fuzz [--cases N] [--seed S] [--case I] [--max-m M] [--max-n N] [--max-k K] "
               "[--large]\n"
               "  defaults: --cases 2000 --seed 1 --max-m %lld --max-n %lld --max-k %lld\n"
               "  --large: caps %lld / %lld / %lld (explicit caps still win)\n"
               "  cases whose CPU reference covers only a sample of rows (M > 16, fewer rows for large N*K)\n"
               "  are also checked on all of M x N against a GPU fp32 reference\n",
               message, static_cast<long long>(kDefaultCaps.max_m),
               static_cast<long long>(kDefaultCaps.max_n), static_cast<long long>(kDefaultCaps.max_k),
               static_cast<long long>(kLargeCaps.max_m), static_cast<long long>(kLargeCaps.max_n),
               static_cast<long long>(kLargeCaps.max_k));
  std::exit(2);
}

int64_t parse_int(const char* text, const char* flag, int64_t min_value) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (end == text || *end != '\0' || v < min_value)
    usage((std::string("bad value for ") + flag + ": " + text).c_str());
  return v;
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool large = false;
  std::optional<int64_t> max_m, max_n, max_k;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--large") {
      large = true;
      continue;
    }
    if (arg == "--help" || arg == "-h") usage("help");
    if (i + 1 >= argc) usage(("missing value for " + arg).c_str());
    const char* value = argv[++i];
    if (arg == "--cases")
      o.cases = parse_int(value, "--cases", 0);
    else if (arg == "--seed")
      o.seed = static_cast<uint64_t>(parse_int(value, "--seed", 0));
    else if (arg == "--case")
      o.only_case = parse_int(value, "--case", 0);
    else if (arg == "--max-m")
      max_m = parse_int(value, "--max-m", 1);
    else if (arg == "--max-n")
      max_n = parse_int(value, "--max-n", 16);
    else if (arg == "--max-k")
      max_k = parse_int(value, "--max-k", 128);
    else
      usage(("unknown option " + arg).c_str());
  }
  o.caps = large ? kLargeCaps : kDefaultCaps;
  if (max_m) o.caps.max_m = *max_m;
  if (max_n) o.caps.max_n = *max_n / 16 * 16;
  if (max_k) o.caps.max_k = *max_k / 128 * 128;
  return o;
}

struct Tally {
  int64_t passed = 0, failed = 0;
};

}  // namespace

int main(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  if (const auto reason = blockgemm::testing::gpu_unavailable_reason()) {
    std::printf("fuzz: skipped (no Hopper GPU: %s)\n", reason->c_str());
    return 0;
  }
  check_cuda(cudaSetDevice(0), "cudaSetDevice");

  std::vector<int64_t> indices;
  if (opt.only_case) {
    indices.push_back(*opt.only_case);
  } else {
    for (int64_t i = 0; i < opt.cases; ++i) indices.push_back(i);
  }
  std::printf("blockgemm_fuzz: seed %llu, %zu case(s), caps M<=%lld N<=%lld K<=%lld\n",
              static_cast<unsigned long long>(opt.seed), indices.size(),
              static_cast<long long>(opt.caps.max_m), static_cast<long long>(opt.caps.max_n),
              static_cast<long long>(opt.caps.max_k));
  std::fflush(stdout);

  const auto start = std::chrono::steady_clock::now();
  auto elapsed = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  int64_t passed = 0, failed = 0, gpu_reference_cases = 0;
  std::map<std::string, Tally> tallies;  // "group: value" -> counts
  for (std::size_t done = 0; done < indices.size(); ++done) {
    const int64_t i = indices[done];
    const CaseParams p = draw_case(opt.seed, i, opt.caps);
    Outcome o;
    try {
      o = p.error_case() ? run_error_case(p) : run_gemm_case(p);
    } catch (const std::exception& e) {
      o.pass = false;
      o.detail = std::string("exception: ") + e.what();
      o.context_lost = context_broken();
    }
    (o.pass ? passed : failed) += 1;
    gpu_reference_cases += o.gpu_reference_checked;
    std::vector<std::string> keys = {std::string("dtypes: ") + combo_name(p.combo)};
    if (!p.error_case()) {
      keys.push_back(std::string("out: ") + out_name(p.out_dtype));
      if (p.weight_fp8())
        keys.push_back(std::string("weight_scale: ") + (p.per_row_weight_scale ? "per-row" : "per-block"));
      if (p.input_fp8())
        keys.push_back(std::string("input_scale: ") +
                       (p.column_major_input_scale ? "col-major" : "row-major"));
      keys.push_back(std::string("out_pad: ") + (p.out_pad ? "padded" : "none"));
    }
    for (const std::string& key : keys) (o.pass ? tallies[key].passed : tallies[key].failed) += 1;

    if (!o.pass) {
      std::printf("FAIL case %lld: %s %s\n  reproduce: blockgemm_fuzz --seed %llu --case %lld%s\n",
                  static_cast<long long>(i), p.describe().c_str(), o.detail.c_str(),
                  static_cast<unsigned long long>(opt.seed), static_cast<long long>(i),
                  caps_args(opt.caps).c_str());
    } else if (opt.only_case) {
      std::printf("PASS case %lld: %s %s\n", static_cast<long long>(i), p.describe().c_str(),
                  o.detail.c_str());
    }
    if (!opt.only_case && (done + 1) % 100 == 0)
      std::printf("progress: %zu/%zu cases, %lld failed, %.1f s\n", done + 1, indices.size(),
                  static_cast<long long>(failed), elapsed());
    std::fflush(stdout);
    if (o.context_lost) {
      std::printf("CUDA context unusable after case %lld: stopping after %zu of %zu cases\n",
                  static_cast<long long>(i), done + 1, indices.size());
      break;
    }
  }

  std::printf("summary (%.1f s):\n", elapsed());
  for (const auto& [key, t] : tallies)
    std::printf("  %-36s %6lld passed %6lld failed\n", key.c_str(), static_cast<long long>(t.passed),
                static_cast<long long>(t.failed));
  std::printf("  %-36s %6lld cases\n", "gpu reference (all rows)",
              static_cast<long long>(gpu_reference_cases));
  std::printf("fuzz: %lld passed, %lld failed\n", static_cast<long long>(passed),
              static_cast<long long>(failed));
  return failed == 0 ? 0 : 1;
}
