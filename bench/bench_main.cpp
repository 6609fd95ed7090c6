// blockgemm-bench: times blockgemm::fp8_blockscale_gemm_sm90 against cuBLASLt block-scaled fp8 and
// cuBLAS bf16 on the same inputs, after checking every backend against the CPU reference. Optionally
// also the bf16-operand paths of the same call (--paths) and the GPU quantizers against the device's
// copy bandwidth (--quantizers).
//
// Method (the one behind /work/shared/reference/anchors_h100.md, so numbers compare):
//   - randn-like inputs, 1x128 per-token-group input scales, 128x128 (or 1x128) weight scales;
//   - calls rotate over >= 256 MB of independent operand sets so the L2 never holds operands;
//   - a CUDA graph of ~3 ms of calls, median of 7 replays / calls per graph.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <exception>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "baselines.h"
#include "blockgemm/blockgemm.h"
#include "blockgemm/quantize.h"
#include "blockgemm/reference.h"
#include "blockgemm/tensor.h"
#include "timing.h"

namespace {

namespace ref = blockgemm::reference;
using blockgemm::DType;
using blockgemm_bench::WeightScaleLayout;

constexpr int64_t kGroup = 128;
constexpr double kMaxOursDiff = 1e-3;
constexpr std::size_t kRotationTargetBytes = std::size_t{256} << 20;  // 5x the H100's 50 MB L2
constexpr std::size_t kMaxDeviceBytes = std::size_t{8} << 30;
constexpr int kMaxRotationSets = 2000;
constexpr std::size_t kWorkspaceBytes = std::size_t{32} << 20;
constexpr std::size_t kDeviceAlignment = 256;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The copy that sets the quantizers' bandwidth yardstick: far past L2, long enough (~1 ms) that launch
// and event overheads vanish.
constexpr std::size_t kCopyBytes = std::size_t{1} << 30;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
std::size_t align_up(std::size_t value, std::size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// ---------------------------------------------------------------------------------------------
// Command line

struct Shape {
  int64_t m = 0, n = 0, k = 0;
};

// Which operand dtypes of fp8_blockscale_gemm_sm90 are measured. fp8 x fp8 always is: it is the
// main table and the denominator of the other paths' ratios.
struct Paths {
  bool bf16_fp8 = false;   // bf16 input (quantized inside, 1x128), fp8 weight with its scales
  bool bf16_bf16 = false;  // bf16 input and bf16 weight (quantized inside, 1x128 and 128x128)
  bool any_bf16() const { return bf16_fp8 || bf16_bf16; }
};

struct QuantizerCase {
  bool per_block = false;  // per_block_cast_to_fp8, else per_token_cast_to_fp8
  int64_t rows = 0, cols = 0;
};

struct Options {
  bool run_gemm = true;
  bool run_quantizers = false;
  std::vector<Shape> shapes;
  Paths paths;
  std::vector<QuantizerCase> quantizer_cases;
  DType out_dtype = DType::kBFloat16;
  WeightScaleLayout weight_scale = WeightScaleLayout::kBlock128x128;
  std::string json_path;
  bool run_baselines = true;
  int64_t check_rows = 64;
  uint64_t seed = 0x5EED2026;
};

// DeepSeek-V3's projection shapes (N, K), the suite anchors_h100.md reports.
const std::vector<std::pair<int64_t, int64_t>> kDeepSeekNK = {
    {2112, 7168}, {576, 7168}, {24576, 1536}, {32768, 512}, {7168, 16384}, {4096, 7168}, {7168, 2048}};
const std::vector<int64_t> kDeepSeekM = {1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 512, 4096};

// Activations of a prefill batch, a large prefill and a decode step (per token, (M, K)), and the two
// weights a bf16 checkpoint would quantize (per block, (N, K)).
const std::vector<QuantizerCase> kDefaultQuantizerCases = {
    {false, 4096, 7168}, {false, 16384, 7168}, {false, 128, 7168}, {true, 7168, 16384}, {true, 2112, 7168}};

const char* kUsage =
    "usage: blockgemm-bench [--suite deepseek] [--shape M,N,K]... [--m-list M1,M2,...]\n"
    "                       [--out-dtype bf16|fp16|fp32] [--weight-scale block|token] [--json PATH]\n"
    "                       [--no-baselines] [--check-rows R] [--seed S] [--paths LIST]\n"
    "                       [--quantizers] [--quant-token M,K]... [--quant-block N,K]...\n"
    "  --suite deepseek   DeepSeek-V3 projections (N,K) x M in {1,2,4,8,16,24,32,48,64,128,512,4096}\n"
    "                     (the default)\n"
    "  --shape M,N,K      one problem; repeatable; replaces the suite\n"
    "  --m-list ...       the M values crossed with the suite's (N,K) (not with --shape)\n"
    "  --out-dtype        output dtype of blockgemm and of the cuBLASLt baseline (default bf16)\n"
    "  --weight-scale     block: 128x128 weight scales (default); token: 1x128 per weight row\n"
    "  --json PATH        also write every row, the device and the summaries as JSON\n"
    "  --no-baselines     time blockgemm only\n"
    "  --check-rows R     output rows compared with the CPU reference (default 64, 0 = all)\n"
    "  --seed S           seed of the random operands\n"
    "  --paths LIST       comma list of fp8, bf16-fp8, bf16-bf16 (default fp8): also time the call with\n"
    "                     a bf16 input (bf16-fp8) or bf16 input and weight (bf16-bf16), quantized inside\n"
    "                     into a preallocated workspace; fp8 always runs (the ratios' denominator)\n"
    "  --quantizers       time per_token_cast_to_fp8 (M,K) in {(4096,7168), (16384,7168), (128,7168)} and\n"
    "                     per_block_cast_to_fp8 (N,K) in {(7168,16384), (2112,7168)} against a 1 GiB\n"
    "                     device-to-device copy and a copy of each quantizer's own bytes; alone (or\n"
    "                     with only --json/--seed/--quant-*) it runs nothing else\n"
    "  --quant-token M,K  a per-token quantizer size; repeatable\n"
    "  --quant-block N,K  a per-block quantizer size; repeatable. Either implies --quantizers, and together\n"
    "                     they replace the whole default size list\n"
    "exit status: 0 all checks of blockgemm passed (every path, every quantizer), 1 a check failed,\n"
    "             2 usage, 3 fatal error\n";

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "blockgemm-bench: %s\n%s", message.c_str(), kUsage);
  std::exit(2);
}

int64_t parse_positive(const std::string& text, const char* what) {
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || end == nullptr || *end != '\0' || errno != 0 || value <= 0) {
    usage_error(std::string("bad ") + what + " '" + text + "' (want a positive integer)");
  }
  return value;
}

std::vector<int64_t> parse_list(const std::string& text, const char* what) {
  std::vector<int64_t> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, ',')) values.push_back(parse_positive(item, what));
  if (values.empty()) usage_error(std::string("empty ") + what);
  return values;
}

Options parse_options(int argc, char** argv) {
  Options options;
  std::vector<Shape> explicit_shapes;
  std::optional<std::vector<int64_t>> m_list;
  // Any option that only means something for the GEMM table keeps the GEMMs running beside
  // --quantizers; --json and --seed serve both.
  bool gemm_option_given = false;
  std::vector<QuantizerCase> quantizer_cases;
  auto value_of = [&](int& i) -> std::string {
    if (i + 1 >= argc) usage_error(std::string(argv[i]) + " needs a value");
    return argv[++i];
  };
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--suite") {
      gemm_option_given = true;
      const std::string suite = value_of(i);
      if (suite != "deepseek") usage_error("unknown suite '" + suite + "' (only 'deepseek')");
    } else if (arg == "--shape") {
      gemm_option_given = true;
      const std::vector<int64_t> mnk = parse_list(value_of(i), "shape");
      if (mnk.size() != 3) usage_error("--shape wants M,N,K");
      explicit_shapes.push_back({mnk[0], mnk[1], mnk[2]});
    } else if (arg == "--m-list") {
      gemm_option_given = true;
      m_list = parse_list(value_of(i), "M list");
    } else if (arg == "--out-dtype") {
      gemm_option_given = true;
      const std::string dtype = value_of(i);
      if (dtype == "bf16") {
        options.out_dtype = DType::kBFloat16;
      } else if (dtype == "fp16") {
        options.out_dtype = DType::kFloat16;
      } else if (dtype == "fp32") {
        options.out_dtype = DType::kFloat32;
      } else {
        usage_error("unknown --out-dtype '" + dtype + "'");
      }
    } else if (arg == "--weight-scale") {
      gemm_option_given = true;
      const std::string kind = value_of(i);
      if (kind == "block") {
        options.weight_scale = WeightScaleLayout::kBlock128x128;
      } else if (kind == "token") {
        options.weight_scale = WeightScaleLayout::kPerRow1x128;
      } else {
        usage_error("unknown --weight-scale '" + kind + "'");
      }
    } else if (arg == "--json") {
      options.json_path = value_of(i);
    } else if (arg == "--no-baselines") {
      gemm_option_given = true;
      options.run_baselines = false;
    } else if (arg == "--check-rows") {
      gemm_option_given = true;
      const std::string rows = value_of(i);
      options.check_rows = rows == "0" ? 0 : parse_positive(rows, "--check-rows");
    } else if (arg == "--seed") {
      options.seed = static_cast<uint64_t>(parse_positive(value_of(i), "--seed"));
    } else if (arg == "--paths") {
      gemm_option_given = true;
      std::stringstream list(value_of(i));
      std::string path;
      bool any = false;
      while (std::getline(list, path, ',')) {
        any = true;
        if (path == "fp8") {
          // Always measured; accepted so that the full list can be spelled out.
        } else if (path == "bf16-fp8") {
          options.paths.bf16_fp8 = true;
        } else if (path == "bf16-bf16") {
          options.paths.bf16_bf16 = true;
        } else {
          usage_error("unknown path '" + path + "' in --paths (want fp8, bf16-fp8, bf16-bf16)");
        }
      }
      if (!any) usage_error("empty --paths");
    } else if (arg == "--quantizers") {
      options.run_quantizers = true;
    } else if (arg == "--quant-token" || arg == "--quant-block") {
      const std::vector<int64_t> size = parse_list(value_of(i), arg.c_str());
      if (size.size() != 2) usage_error(arg + " wants two sizes, rows,cols");
      quantizer_cases.push_back({arg == "--quant-block", size[0], size[1]});
      options.run_quantizers = true;
    } else {
      usage_error("unknown argument '" + arg + "'");
    }
  }
  options.run_gemm = !options.run_quantizers || gemm_option_given;
  if (options.run_quantizers) {
    options.quantizer_cases = quantizer_cases.empty() ? kDefaultQuantizerCases : quantizer_cases;
  }
  if (!options.run_gemm) return options;
  if (!explicit_shapes.empty()) {
    if (m_list) usage_error("--m-list applies to the suite; give M in each --shape instead");
    options.shapes = explicit_shapes;
  } else {
    const std::vector<int64_t>& ms = m_list ? *m_list : kDeepSeekM;
    for (const auto& [n, k] : kDeepSeekNK) {
      for (int64_t m : ms) options.shapes.push_back({m, n, k});
    }
  }
  return options;
}

const char* out_dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kBFloat16:
      return "bf16";
    case DType::kFloat16:
      return "fp16";
    case DType::kFloat32:
      return "fp32";
    case DType::kFloat8E4M3:
      return "fp8_e4m3";
  }
  return "?";
}

cudaDataType_t out_cuda_type(DType dtype) {
  return dtype == DType::kFloat32 ? CUDA_R_32F : dtype == DType::kFloat16 ? CUDA_R_16F : CUDA_R_16BF;
}

// ---------------------------------------------------------------------------------------------
// Host data

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

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
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

// `values` as bf16 bits, rounded with the reference's float_to_bf16: the operands of the bf16 paths. The
// values are bf16-exact already (random_bf16_exact), so the bits decode to exactly `values`, and the fp8
// operands this file quantizes from `values` are therefore the reference quantization of these bf16
// operands: one CPU reference serves the fp8 and the bf16 paths. The check guards that invariant
// should the generator ever change.
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

// The weight depends on (N, K) only, so the shapes of the suite that share it (every M) reuse one
// quantisation: the host work is dominated by the weights.
struct HostWeight {
  int64_t n = 0, k = 0;
  WeightScaleLayout layout = WeightScaleLayout::kBlock128x128;
  ref::Quantized quantized;  // (N, K) fp8, scales (ceil(N/128) or N, K/128) row-major
  // The scales as both cuBLASLt and blockgemm read them on the device (see baselines.cpp):
  // block: row-major with row stride scale_ld; per-row: column-major with leading dimension scale_ld.
  std::vector<float> scale_device;
  int64_t scale_rows = 0;
  int64_t scale_ld = 0;
  std::vector<uint16_t> bf16;  // dequantized; empty without baselines
  // The bf16-bf16 path's weight: the random values themselves in bf16 (not dequantized), and their
  // 128x128 quantization, the one the library applies inside (empty unless that path runs and the
  // layout is per-row: for block scales `quantized` is that very quantization).
  std::vector<uint16_t> bf16_data;
  ref::Quantized block_quantized;
  const ref::Quantized& bf16_data_reference() const {
    return layout == WeightScaleLayout::kBlock128x128 ? quantized : block_quantized;
  }
};

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
  weight->scale_ld = blockgemm_bench::lt_weight_scale_ld(n, k, layout);
  if (weight->quantized.scale_rows != weight->scale_rows || weight->quantized.scale_cols != kg) {
    throw std::runtime_error("the reference weight quantiser returned an unexpected scale shape");
  }
  weight->scale_device =
      layout == WeightScaleLayout::kBlock128x128
          ? with_row_stride(weight->quantized.scales, weight->scale_rows, kg, weight->scale_ld)
          : to_column_major(weight->quantized.scales, weight->scale_rows, kg, weight->scale_ld);
  if (with_bf16)
    weight->bf16 = dequantize_to_bf16(weight->quantized, layout == WeightScaleLayout::kPerRow1x128);
  return weight;
}

struct HostProblem {
  Shape shape;
  int64_t k_groups = 0;
  std::shared_ptr<const HostWeight> weight;
  ref::Quantized input;                   // (M, K) fp8, scales (M, K/128) row-major
  std::vector<float> input_scale_device;  // column-major, ld lt_input_scale_ld(M)
  std::vector<uint16_t> input_bf16;       // dequantized; empty without baselines
  // The bf16-input paths' input: the random values themselves in bf16 (empty unless such a path runs).
  std::vector<uint16_t> input_bf16_data;
};

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
  problem.input_scale_device = to_column_major(problem.input.scales, shape.m, problem.k_groups,
                                               blockgemm_bench::lt_input_scale_ld(shape.m));
  if (with_bf16) problem.input_bf16 = dequantize_to_bf16(problem.input, /*scale_per_row=*/true);
  return problem;
}

// Rows spread evenly over [0, M), first and last included; all rows when M <= wanted (or wanted 0).
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

// Double-precision out[rows][:] for the chosen rows, as a compact (rows.size(), N) matrix, against
// `weight` (the problem's fp8 weight, or the 128x128 quantization of its bf16 one).
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

// ---------------------------------------------------------------------------------------------
// Device operand sets

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes) : bytes_(bytes) { BENCH_CHECK_CUDA(cudaMalloc(&ptr_, bytes)); }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  uint8_t* bytes() const { return static_cast<uint8_t*>(ptr_); }
  std::size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

struct SetPointers {
  void* input_fp8;
  void* weight_fp8;
  float* input_scale;
  float* weight_scale;
  void* out_ours;
  void* out_lt;  // null without baselines, likewise the bf16 ones
  void* input_bf16;
  void* weight_bf16;
  void* out_bf16;
  void* input_bf16_data;   // null unless a bf16 path runs
  void* weight_bf16_data;  // null unless the bf16-bf16 path runs
  void* out_bf16_fp8;
  void* out_bf16_bf16;
};

// Every set holds all operands and outputs of all backends at distinct addresses; the sets are
// copies of set 0 (same content, different addresses: all the cache needs).
// The set count is sized by the fp8 call's bytes, so adding the bf16 paths leaves the fp8 measurement
// as it was; the bf16 calls read more bytes per set (bf16 operands are twice as wide), so they too rotate
// over more than the target.
class OperandSets {
 public:
  OperandSets(const HostProblem& problem, DType out_dtype, bool with_baselines, const Paths& paths) {
    const Shape& s = problem.shape;
    std::size_t cursor = 0;
    auto reserve = [&cursor](std::size_t bytes) {
      const std::size_t offset = cursor;
      cursor = align_up(cursor + bytes, kDeviceAlignment);
      return offset;
    };
    const std::size_t out_bytes = static_cast<std::size_t>(s.m * s.n) * dtype_size(out_dtype);
    offsets_.input_fp8 = reserve(problem.input.values.size());
    offsets_.weight_fp8 = reserve(problem.weight->quantized.values.size());
    offsets_.input_scale = reserve(problem.input_scale_device.size() * sizeof(float));
    offsets_.weight_scale = reserve(problem.weight->scale_device.size() * sizeof(float));
    offsets_.out_ours = reserve(out_bytes);
    if (with_baselines) {
      offsets_.out_lt = reserve(out_bytes);
      offsets_.input_bf16 = reserve(problem.input_bf16.size() * sizeof(uint16_t));
      offsets_.weight_bf16 = reserve(problem.weight->bf16.size() * sizeof(uint16_t));
      offsets_.out_bf16 = reserve(static_cast<std::size_t>(s.m * s.n) * sizeof(uint16_t));
    }
    if (paths.any_bf16())
      offsets_.input_bf16_data = reserve(problem.input_bf16_data.size() * sizeof(uint16_t));
    if (paths.bf16_fp8) offsets_.out_bf16_fp8 = reserve(out_bytes);
    if (paths.bf16_bf16) {
      offsets_.weight_bf16_data = reserve(problem.weight->bf16_data.size() * sizeof(uint16_t));
      offsets_.out_bf16_bf16 = reserve(out_bytes);
    }
    with_baselines_ = with_baselines;
    paths_ = paths;
    set_stride_ = align_up(cursor, kDeviceAlignment);
    rotated_bytes_per_set_ =
        problem.input.values.size() + problem.weight->quantized.values.size() +
        (problem.input_scale_device.size() + problem.weight->scale_device.size()) * sizeof(float) + out_bytes;

    const auto wanted = static_cast<int64_t>(
        ceil_div(static_cast<int64_t>(kRotationTargetBytes), static_cast<int64_t>(rotated_bytes_per_set_)));
    const auto affordable = static_cast<int64_t>(kMaxDeviceBytes / set_stride_);
    num_sets_ =
        static_cast<int>(std::max<int64_t>(2, std::min<int64_t>({wanted, affordable, kMaxRotationSets})));
    storage_ = std::make_unique<DeviceBuffer>(set_stride_ * static_cast<std::size_t>(num_sets_));

    const SetPointers first = pointers(0);
    upload(first.input_fp8, problem.input.values.data(), problem.input.values.size());
    upload(first.weight_fp8, problem.weight->quantized.values.data(),
           problem.weight->quantized.values.size());
    upload(first.input_scale, problem.input_scale_device.data(),
           problem.input_scale_device.size() * sizeof(float));
    upload(first.weight_scale, problem.weight->scale_device.data(),
           problem.weight->scale_device.size() * sizeof(float));
    if (with_baselines) {
      upload(first.input_bf16, problem.input_bf16.data(), problem.input_bf16.size() * sizeof(uint16_t));
      upload(first.weight_bf16, problem.weight->bf16.data(), problem.weight->bf16.size() * sizeof(uint16_t));
    }
    if (paths.any_bf16()) {
      upload(first.input_bf16_data, problem.input_bf16_data.data(),
             problem.input_bf16_data.size() * sizeof(uint16_t));
    }
    if (paths.bf16_bf16) {
      upload(first.weight_bf16_data, problem.weight->bf16_data.data(),
             problem.weight->bf16_data.size() * sizeof(uint16_t));
    }
    for (int set = 1; set < num_sets_; ++set) {
      BENCH_CHECK_CUDA(cudaMemcpy(storage_->bytes() + set_stride_ * static_cast<std::size_t>(set),
                                  storage_->bytes(), set_stride_, cudaMemcpyDeviceToDevice));
    }
    // Pageable uploads and device-to-device copies may still be in flight when cudaMemcpy returns,
    // and the benchmark's stream does not synchronise with the legacy default stream.
    BENCH_CHECK_CUDA(cudaDeviceSynchronize());
  }

  SetPointers pointers(int set) const {
    uint8_t* base = storage_->bytes() + set_stride_ * static_cast<std::size_t>(set);
    SetPointers p{};
    p.input_fp8 = base + offsets_.input_fp8;
    p.weight_fp8 = base + offsets_.weight_fp8;
    p.input_scale = reinterpret_cast<float*>(base + offsets_.input_scale);
    p.weight_scale = reinterpret_cast<float*>(base + offsets_.weight_scale);
    p.out_ours = base + offsets_.out_ours;
    if (with_baselines_) {
      p.out_lt = base + offsets_.out_lt;
      p.input_bf16 = base + offsets_.input_bf16;
      p.weight_bf16 = base + offsets_.weight_bf16;
      p.out_bf16 = base + offsets_.out_bf16;
    }
    if (paths_.any_bf16()) p.input_bf16_data = base + offsets_.input_bf16_data;
    if (paths_.bf16_fp8) p.out_bf16_fp8 = base + offsets_.out_bf16_fp8;
    if (paths_.bf16_bf16) {
      p.weight_bf16_data = base + offsets_.weight_bf16_data;
      p.out_bf16_bf16 = base + offsets_.out_bf16_bf16;
    }
    return p;
  }
  int num_sets() const { return num_sets_; }
  std::size_t rotated_bytes_per_set() const { return rotated_bytes_per_set_; }

 private:
  static void upload(void* dst, const void* src, std::size_t bytes) {
    if (bytes > 0) BENCH_CHECK_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  }

  struct Offsets {
    std::size_t input_fp8 = 0, weight_fp8 = 0, input_scale = 0, weight_scale = 0, out_ours = 0, out_lt = 0,
                input_bf16 = 0, weight_bf16 = 0, out_bf16 = 0, input_bf16_data = 0, weight_bf16_data = 0,
                out_bf16_fp8 = 0, out_bf16_bf16 = 0;
  } offsets_;
  bool with_baselines_ = false;
  Paths paths_;
  std::size_t set_stride_ = 0;
  std::size_t rotated_bytes_per_set_ = 0;
  int num_sets_ = 0;
  std::unique_ptr<DeviceBuffer> storage_;
};

// ---------------------------------------------------------------------------------------------
// Checks

struct CheckResult {
  bool ran = false;
  bool all_finite = false;
  double diff = kNaN;
  bool passed(double limit) const { return ran && all_finite && diff < limit; }
};

// Fills `out` with 0xFF bytes (NaN in bf16, fp16 and fp32) so that elements a kernel never writes
// cannot pass for results.
void poison(void* out, std::size_t bytes, cudaStream_t stream) {
  BENCH_CHECK_CUDA(cudaMemsetAsync(out, 0xFF, bytes, stream));
}

// Copies the whole (M, N) output back after the stream drains, requires every element to be finite,
// and compares the chosen rows with the reference.
CheckResult check_output(const void* device_out, DType dtype, const Shape& shape,
                         const std::vector<int64_t>& rows, const std::vector<double>& expected,
                         cudaStream_t stream) {
  BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));
  const std::size_t element_bytes = dtype_size(dtype);
  const auto elements = static_cast<std::size_t>(shape.m * shape.n);
  std::vector<uint8_t> host(elements * element_bytes);
  BENCH_CHECK_CUDA(cudaMemcpy(host.data(), device_out, host.size(), cudaMemcpyDeviceToHost));

  auto value_at = [&](std::size_t index) -> double {
    if (dtype == DType::kFloat32) {
      float value;
      std::memcpy(&value, host.data() + index * 4, 4);
      return value;
    }
    uint16_t bits;
    std::memcpy(&bits, host.data() + index * 2, 2);
    return dtype == DType::kBFloat16 ? ref::bf16_to_float(bits) : ref::fp16_to_float(bits);
  };
  auto is_finite_at = [&](std::size_t index) {
    if (dtype == DType::kFloat32) {
      uint32_t bits;
      std::memcpy(&bits, host.data() + index * 4, 4);
      return (bits & 0x7F800000u) != 0x7F800000u;
    }
    uint16_t bits;
    std::memcpy(&bits, host.data() + index * 2, 2);
    const uint16_t exponent_mask = dtype == DType::kBFloat16 ? 0x7F80 : 0x7C00;
    return (bits & exponent_mask) != exponent_mask;
  };

  CheckResult result;
  result.ran = true;
  result.all_finite = true;
  for (std::size_t i = 0; i < elements; ++i) {
    if (!is_finite_at(i)) {
      result.all_finite = false;
      break;
    }
  }
  std::vector<double> got(expected.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    for (int64_t col = 0; col < shape.n; ++col) {
      got[i * shape.n + col] = value_at(static_cast<std::size_t>(rows[i] * shape.n + col));
    }
  }
  result.diff = ref::calc_diff(got.data(), expected.data(), static_cast<int64_t>(got.size()));
  return result;
}

// After any failure: clear a non-sticky error; a sticky one (a faulting kernel) poisons the
// context for every later shape, so it ends the run.
struct FatalDeviceError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void ensure_device_usable() {
  cudaGetLastError();
  const cudaError_t status = cudaDeviceSynchronize();
  if (status != cudaSuccess) {
    throw FatalDeviceError(std::string("the CUDA context is unusable: ") + cudaGetErrorName(status) + " (" +
                           cudaGetErrorString(status) + ")");
  }
}

// ---------------------------------------------------------------------------------------------
// One shape

struct BackendResult {
  bool timed = false;
  double us = kNaN;
  int calls_per_graph = 0;
  std::vector<double> replay_us;
  CheckResult check;
  std::string note;  // why it did not run, or what went wrong
};

struct ShapeResult {
  Shape shape;
  std::string plan;
  int rotation_sets = 0;
  std::size_t rotated_bytes_per_set = 0;
  std::size_t traffic_bytes = 0;  // input + weight + scales + output, the GB/s numerator
  BackendResult ours, lt, bf16;
  std::string lt_algorithm;
  bool ours_passed = false;
  // The bf16-operand paths of blockgemm (--paths); run only when asked for.
  BackendResult bf16_fp8, bf16_bf16;
  bool bf16_fp8_passed = false, bf16_bf16_passed = false;
  std::size_t workspace_bytes = 0;  // the one workspace both bf16 paths were given
  bool passed(const Paths& paths) const {
    return ours_passed && (!paths.bf16_fp8 || bf16_fp8_passed) && (!paths.bf16_bf16 || bf16_bf16_passed);
  }
};

struct Backends {
  cudaStream_t stream = nullptr;
  int device = 0;
  std::unique_ptr<blockgemm_bench::CublasLtBlockScaledGemm> lt;
  std::unique_ptr<blockgemm_bench::CublasBf16Gemm> bf16;
  std::shared_ptr<const HostWeight> last_weight;  // reused while consecutive shapes share (N, K)
};

void record_timing(BackendResult& backend, const blockgemm_bench::GraphTiming& timing) {
  backend.timed = true;
  backend.us = timing.us_per_call;
  backend.calls_per_graph = timing.calls_per_graph;
  backend.replay_us = timing.replay_us;
}

// The sequence each blockgemm path goes through: poison set 0's output, one eager call, the check
// against `expected`, then the graph timing. Returns whether both the check and the timing succeeded.
bool check_then_time(BackendResult& backend, const OperandSets& sets, void* out_set0, DType out_dtype,
                     const Shape& shape, const std::vector<int64_t>& rows,
                     const std::vector<double>& expected, cudaStream_t stream,
                     const blockgemm_bench::EnqueueCall& enqueue) {
  try {
    poison(out_set0, static_cast<std::size_t>(shape.m * shape.n) * dtype_size(out_dtype), stream);
    enqueue(0, stream);
    BENCH_CHECK_CUDA(cudaGetLastError());
    backend.check = check_output(out_set0, out_dtype, shape, rows, expected, stream);
    record_timing(backend, blockgemm_bench::time_with_graph(stream, sets.num_sets(), enqueue));
  } catch (const FatalDeviceError&) {
    throw;
  } catch (const std::exception& error) {
    backend.note = error.what();
    ensure_device_usable();
  }
  if (backend.note.empty() && !backend.check.passed(kMaxOursDiff)) {
    backend.note = !backend.check.all_finite ? "non-finite values in the output" : "diff above 1e-3";
  }
  return backend.check.passed(kMaxOursDiff) && backend.timed;
}

ShapeResult run_shape(const Shape& shape, const Options& options, Backends& backends) {
  ShapeResult result;
  result.shape = shape;
  const bool per_row_weight = options.weight_scale == WeightScaleLayout::kPerRow1x128;
  try {
    result.plan = blockgemm::describe_plan(shape.m, shape.n, shape.k, options.out_dtype, per_row_weight);
  } catch (const std::exception& error) {
    result.plan = std::string("describe_plan failed: ") + error.what();
  }

  if (!backends.last_weight || backends.last_weight->n != shape.n || backends.last_weight->k != shape.k) {
    backends.last_weight.reset();  // free the old one before building the next
    backends.last_weight = make_host_weight(shape.n, shape.k, options.weight_scale, options.run_baselines,
                                            options.paths.bf16_bf16, options.seed);
  }
  const HostProblem problem = make_host_problem(shape, backends.last_weight, options.run_baselines,
                                                options.paths.any_bf16(), options.seed);
  OperandSets sets(problem, options.out_dtype, options.run_baselines, options.paths);
  result.rotation_sets = sets.num_sets();
  result.rotated_bytes_per_set = sets.rotated_bytes_per_set();
  const std::size_t out_bytes = static_cast<std::size_t>(shape.m * shape.n) * dtype_size(options.out_dtype);
  result.traffic_bytes = static_cast<std::size_t>(shape.m * shape.k + shape.n * shape.k) +
                         static_cast<std::size_t>(shape.m + problem.weight->scale_rows) *
                             static_cast<std::size_t>(problem.k_groups) * sizeof(float) +
                         out_bytes;

  const std::vector<int64_t> rows = rows_to_check(shape.m, options.check_rows);
  const std::vector<double> expected =
      reference_rows(problem, problem.weight->quantized, per_row_weight, rows);
  cudaStream_t stream = backends.stream;

  // ---- blockgemm
  const int dev = backends.device;
  auto input_fp8_view = [&](const SetPointers& p) {
    return blockgemm::TensorView::matrix(p.input_fp8, DType::kFloat8E4M3, shape.m, shape.k, dev);
  };
  auto weight_fp8_view = [&](const SetPointers& p) {
    return blockgemm::TensorView::matrix(p.weight_fp8, DType::kFloat8E4M3, shape.n, shape.k, dev);
  };
  auto input_scale_view = [&](const SetPointers& p) {
    return blockgemm::TensorView::strided(p.input_scale, DType::kFloat32, shape.m, problem.k_groups, 1,
                                          blockgemm_bench::lt_input_scale_ld(shape.m), dev);
  };
  auto weight_scale_view = [&](const SetPointers& p) {
    return per_row_weight
               ? blockgemm::TensorView::strided(p.weight_scale, DType::kFloat32, shape.n, problem.k_groups, 1,
                                                problem.weight->scale_ld, dev)
               : blockgemm::TensorView::strided(p.weight_scale, DType::kFloat32, problem.weight->scale_rows,
                                                problem.k_groups, problem.weight->scale_ld, 1, dev);
  };
  auto out_view = [&](void* out) {
    return blockgemm::TensorView::matrix(out, options.out_dtype, shape.m, shape.n, dev);
  };
  auto enqueue_ours = [&](int set, cudaStream_t s) {
    const SetPointers p = sets.pointers(set);
    blockgemm::fp8_blockscale_gemm_sm90(input_fp8_view(p), weight_fp8_view(p), input_scale_view(p),
                                        weight_scale_view(p), out_view(p.out_ours), options.out_dtype, s);
  };
  try {
    poison(sets.pointers(0).out_ours, out_bytes, stream);
    enqueue_ours(0, stream);
    BENCH_CHECK_CUDA(cudaGetLastError());
    result.ours.check =
        check_output(sets.pointers(0).out_ours, options.out_dtype, shape, rows, expected, stream);
    record_timing(result.ours, blockgemm_bench::time_with_graph(stream, sets.num_sets(), enqueue_ours));
  } catch (const FatalDeviceError&) {
    throw;
  } catch (const std::exception& error) {
    result.ours.note = error.what();
    ensure_device_usable();
  }
  result.ours_passed = result.ours.check.passed(kMaxOursDiff) && result.ours.timed;
  if (result.ours.note.empty() && !result.ours.check.passed(kMaxOursDiff)) {
    result.ours.note = !result.ours.check.all_finite ? "non-finite values in the output" : "diff above 1e-3";
  }

  // ---- blockgemm with bf16 operands, quantized inside the call
  if (options.paths.any_bf16()) {
    auto input_bf16_view = [&](const SetPointers& p) {
      return blockgemm::TensorView::matrix(p.input_bf16_data, DType::kBFloat16, shape.m, shape.k, dev);
    };
    auto weight_bf16_view = [&](const SetPointers& p) {
      return blockgemm::TensorView::matrix(p.weight_bf16_data, DType::kBFloat16, shape.n, shape.k, dev);
    };
    // One workspace for both paths, allocated here and passed explicitly: the library then never grows
    // its own buffer, which it could not do inside the graph capture. Sharing it across the rotation
    // sets is safe because every call of a graph runs in order on one stream.
    std::unique_ptr<DeviceBuffer> workspace;
    std::optional<blockgemm::Workspace> workspace_arg;
    try {
      const SetPointers first = sets.pointers(0);
      std::size_t bytes = 0;
      if (options.paths.bf16_fp8) {
        bytes = std::max(bytes, blockgemm::fp8_blockscale_gemm_sm90_workspace_bytes(input_bf16_view(first),
                                                                                    weight_fp8_view(first)));
      }
      if (options.paths.bf16_bf16) {
        bytes = std::max(bytes, blockgemm::fp8_blockscale_gemm_sm90_workspace_bytes(input_bf16_view(first),
                                                                                    weight_bf16_view(first)));
      }
      result.workspace_bytes = bytes;
      if (bytes > 0) workspace = std::make_unique<DeviceBuffer>(bytes);
      workspace_arg = blockgemm::Workspace{workspace ? workspace->bytes() : nullptr, bytes};
    } catch (const std::exception& error) {
      const std::string note = std::string("workspace set-up failed: ") + error.what();
      if (options.paths.bf16_fp8) result.bf16_fp8.note = note;
      if (options.paths.bf16_bf16) result.bf16_bf16.note = note;
      ensure_device_usable();
    }

    if (options.paths.bf16_fp8 && workspace_arg) {
      // The input is quantized per token exactly as the fp8 path's input was, so the fp8 reference holds.
      auto enqueue_bf16_fp8 = [&](int set, cudaStream_t s) {
        const SetPointers p = sets.pointers(set);
        blockgemm::fp8_blockscale_gemm_sm90(input_bf16_view(p), weight_fp8_view(p), std::nullopt,
                                            weight_scale_view(p), out_view(p.out_bf16_fp8), options.out_dtype,
                                            s, workspace_arg);
      };
      result.bf16_fp8_passed =
          check_then_time(result.bf16_fp8, sets, sets.pointers(0).out_bf16_fp8, options.out_dtype, shape,
                          rows, expected, stream, enqueue_bf16_fp8);
    }
    if (options.paths.bf16_bf16 && workspace_arg) {
      // The weight is quantized in 128x128 blocks inside; with 1x128 weight scales the fp8 reference used
      // another quantization, so this path gets its own.
      const std::vector<double> expected_bf16_weight =
          per_row_weight ? reference_rows(problem, problem.weight->bf16_data_reference(), false, rows)
                         : std::vector<double>();
      auto enqueue_bf16_bf16 = [&](int set, cudaStream_t s) {
        const SetPointers p = sets.pointers(set);
        blockgemm::fp8_blockscale_gemm_sm90(input_bf16_view(p), weight_bf16_view(p), std::nullopt,
                                            std::nullopt, out_view(p.out_bf16_bf16), options.out_dtype, s,
                                            workspace_arg);
      };
      result.bf16_bf16_passed =
          check_then_time(result.bf16_bf16, sets, sets.pointers(0).out_bf16_bf16, options.out_dtype, shape,
                          rows, per_row_weight ? expected_bf16_weight : expected, stream, enqueue_bf16_bf16);
    }
  }

  if (!options.run_baselines) return result;

  // ---- cuBLASLt block-scaled fp8
  auto lt_operands = [&](int set) {
    const SetPointers p = sets.pointers(set);
    blockgemm_bench::LtOperands operands;
    operands.input_fp8 = p.input_fp8;
    operands.weight_fp8 = p.weight_fp8;
    operands.input_scale = p.input_scale;
    operands.weight_scale = p.weight_scale;
    operands.out = p.out_lt;
    return operands;
  };
  try {
    blockgemm_bench::LtProblem lt_problem;
    lt_problem.m = shape.m;
    lt_problem.n = shape.n;
    lt_problem.k = shape.k;
    lt_problem.weight_scale_layout = options.weight_scale;
    lt_problem.out_type = out_cuda_type(options.out_dtype);
    std::string why_not;
    if (!backends.lt->prepare(lt_problem, lt_operands(0), &why_not)) {
      result.lt.note = "n/a: " + why_not;
    } else {
      result.lt_algorithm = backends.lt->algorithm();
      auto enqueue_lt = [&](int set, cudaStream_t s) { backends.lt->enqueue(lt_operands(set), s); };
      poison(sets.pointers(0).out_lt, out_bytes, stream);
      enqueue_lt(0, stream);
      BENCH_CHECK_CUDA(cudaGetLastError());
      result.lt.check =
          check_output(sets.pointers(0).out_lt, options.out_dtype, shape, rows, expected, stream);
      record_timing(result.lt, blockgemm_bench::time_with_graph(stream, sets.num_sets(), enqueue_lt));
    }
  } catch (const FatalDeviceError&) {
    throw;
  } catch (const std::exception& error) {
    result.lt.note = std::string("n/a: ") + error.what();
    ensure_device_usable();
  }

  // ---- cuBLAS bf16 (always bf16 out)
  try {
    auto enqueue_bf16 = [&](int set, cudaStream_t) {
      const SetPointers p = sets.pointers(set);
      backends.bf16->enqueue(p.input_bf16, p.weight_bf16, p.out_bf16, shape.m, shape.n, shape.k);
    };
    const std::size_t bf16_out_bytes = static_cast<std::size_t>(shape.m * shape.n) * sizeof(uint16_t);
    poison(sets.pointers(0).out_bf16, bf16_out_bytes, stream);
    enqueue_bf16(0, stream);
    BENCH_CHECK_CUDA(cudaGetLastError());
    result.bf16.check =
        check_output(sets.pointers(0).out_bf16, DType::kBFloat16, shape, rows, expected, stream);
    record_timing(result.bf16, blockgemm_bench::time_with_graph(stream, sets.num_sets(), enqueue_bf16));
  } catch (const FatalDeviceError&) {
    throw;
  } catch (const std::exception& error) {
    result.bf16.note = std::string("failed: ") + error.what();
    ensure_device_usable();
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Reporting

std::string fixed(double value, int decimals) {
  if (!std::isfinite(value)) return "n/a";
  char text[64];
  std::snprintf(text, sizeof(text), "%.*f", decimals, value);
  return text;
}

std::string scientific(double value) {
  if (std::isnan(value)) return "n/a";
  char text[64];
  std::snprintf(text, sizeof(text), "%.2e", value);
  return text;
}

double tflops(const ShapeResult& r) {
  return r.ours.timed ? 2.0 * static_cast<double>(r.shape.m) * static_cast<double>(r.shape.n) *
                            static_cast<double>(r.shape.k) / (r.ours.us * 1e-6) / 1e12
                      : kNaN;
}
double gbps(const ShapeResult& r) {
  return r.ours.timed ? static_cast<double>(r.traffic_bytes) / (r.ours.us * 1e-6) / 1e9 : kNaN;
}
double speedup(const BackendResult& baseline, const BackendResult& ours) {
  return baseline.timed && ours.timed ? baseline.us / ours.us : kNaN;
}

void print_table_header() {
  std::printf("%6s %6s %6s | %9s %8s %7s | %10s %7s | %9s %7s | %9s %9s %9s | %s\n", "M", "N", "K", "ours us",
              "TFLOP/s", "GB/s", "Lt-blk us", "speedup", "bf16 us", "speedup", "diff", "Lt diff", "bf16 diff",
              "plan");
  std::fflush(stdout);
}

void print_table_row(const ShapeResult& r) {
  const std::string ours_diff =
      r.ours_passed ? scientific(r.ours.check.diff) : "FAIL " + scientific(r.ours.check.diff);
  std::printf("%6" PRId64 " %6" PRId64 " %6" PRId64
              " | %9s %8s %7s | %10s %7s | %9s %7s | %9s %9s %9s | %s\n",
              r.shape.m, r.shape.n, r.shape.k, fixed(r.ours.us, 2).c_str(), fixed(tflops(r), 1).c_str(),
              fixed(gbps(r), 0).c_str(), fixed(r.lt.us, 2).c_str(), fixed(speedup(r.lt, r.ours), 2).c_str(),
              fixed(r.bf16.us, 2).c_str(), fixed(speedup(r.bf16, r.ours), 2).c_str(), ours_diff.c_str(),
              scientific(r.lt.check.diff).c_str(), scientific(r.bf16.check.diff).c_str(), r.plan.c_str());
  if (!r.ours.note.empty()) std::printf("    # ours: %s\n", r.ours.note.c_str());
  if (!r.lt.note.empty()) std::printf("    # cuBLASLt: %s\n", r.lt.note.c_str());
  if (r.lt.check.ran && !r.lt.check.all_finite)
    std::printf("    # cuBLASLt: non-finite values in the output\n");
  if (!r.bf16.note.empty()) std::printf("    # cuBLAS bf16: %s\n", r.bf16.note.c_str());
  if (r.bf16.check.ran && !r.bf16.check.all_finite)
    std::printf("    # cuBLAS bf16: non-finite values in the output\n");
  if (!r.bf16_fp8.note.empty()) std::printf("    # bf16-fp8: %s\n", r.bf16_fp8.note.c_str());
  if (!r.bf16_bf16.note.empty()) std::printf("    # bf16-bf16: %s\n", r.bf16_bf16.note.c_str());
  std::fflush(stdout);
}

// Time of a bf16-operand path over the fp8 path's (above 1: the in-call quantization costs that much).
double time_ratio(const BackendResult& path, const BackendResult& fp8) {
  return path.timed && fp8.timed ? path.us / fp8.us : kNaN;
}

// The bf16 paths side by side with fp8, printed once all shapes ran (the main table is printed live).
void print_paths_table(const std::vector<ShapeResult>& results, const Paths& paths) {
  auto cells = [](bool requested, const BackendResult& path, const BackendResult& fp8, bool passed) {
    char text[96];
    if (!requested) {
      std::snprintf(text, sizeof(text), "%12s %6s %14s", "-", "-", "-");
    } else {
      const std::string diff = (passed ? "" : "FAIL ") + scientific(path.check.diff);
      std::snprintf(text, sizeof(text), "%12s %6s %14s", fixed(path.us, 2).c_str(),
                    fixed(time_ratio(path, fp8), 2).c_str(), diff.c_str());
    }
    return std::string(text);
  };
  std::printf("\nbf16-operand paths (ratio = path time / fp8 time; workspace preallocated)\n");
  std::printf("%6s %6s %6s | %9s | %12s %6s %14s | %12s %6s %14s\n", "M", "N", "K", "fp8 us", "bf16-fp8 us",
              "ratio", "diff", "bf16-bf16 us", "ratio", "diff");
  for (const ShapeResult& r : results) {
    std::printf("%6" PRId64 " %6" PRId64 " %6" PRId64 " | %9s | %s | %s\n", r.shape.m, r.shape.n, r.shape.k,
                fixed(r.ours.us, 2).c_str(),
                cells(paths.bf16_fp8, r.bf16_fp8, r.ours, r.bf16_fp8_passed).c_str(),
                cells(paths.bf16_bf16, r.bf16_bf16, r.ours, r.bf16_bf16_passed).c_str());
  }
  std::fflush(stdout);
}

struct Summary {
  std::string name;
  std::string kind;  // "geomean", "min" or "max"
  double value = kNaN;
  int shapes = 0;
};

template <typename Predicate>
Summary speedup_summary(const std::vector<ShapeResult>& results, const std::string& name, bool geometric,
                        bool over_lt, Predicate in_bucket) {
  Summary summary;
  summary.name = name;
  summary.kind = geometric ? "geomean" : "min";
  double log_sum = 0.0;
  double minimum = std::numeric_limits<double>::infinity();
  for (const ShapeResult& r : results) {
    const double ratio = speedup(over_lt ? r.lt : r.bf16, r.ours);
    if (!in_bucket(r.shape.m) || !std::isfinite(ratio)) continue;
    ++summary.shapes;
    log_sum += std::log(ratio);
    minimum = std::min(minimum, ratio);
  }
  if (summary.shapes > 0) summary.value = geometric ? std::exp(log_sum / summary.shapes) : minimum;
  return summary;
}

template <typename Ratio, typename Predicate>
Summary ratio_summary(const std::vector<ShapeResult>& results, const std::string& name, bool geometric,
                      Ratio ratio_of, Predicate in_bucket) {
  Summary summary;
  summary.name = name;
  summary.kind = geometric ? "geomean" : "max";
  double log_sum = 0.0;
  double maximum = -std::numeric_limits<double>::infinity();
  for (const ShapeResult& r : results) {
    const double ratio = ratio_of(r);
    if (!in_bucket(r.shape.m) || !std::isfinite(ratio)) continue;
    ++summary.shapes;
    log_sum += std::log(ratio);
    maximum = std::max(maximum, ratio);
  }
  if (summary.shapes > 0) summary.value = geometric ? std::exp(log_sum / summary.shapes) : maximum;
  return summary;
}

// The smallest (or largest) value_of(r) over the shapes where it is finite.
template <typename Value>
Summary extreme_summary(const std::vector<ShapeResult>& results, const std::string& name, bool minimum,
                        Value value_of) {
  Summary summary;
  summary.name = name;
  summary.kind = minimum ? "min" : "max";
  for (const ShapeResult& r : results) {
    const double value = value_of(r);
    if (!std::isfinite(value)) continue;
    ++summary.shapes;
    if (!std::isfinite(summary.value) || (minimum ? value < summary.value : value > summary.value))
      summary.value = value;
  }
  return summary;
}

std::vector<Summary> summarize(const std::vector<ShapeResult>& results, const Paths& paths) {
  std::vector<Summary> summaries;
  // Decode: the weight streamed from HBM is the whole cost.
  summaries.push_back(extreme_summary(results, "us, 2112 x 7168 at M <= 32", false, [](const ShapeResult& r) {
    return r.shape.m <= 32 && r.shape.n == 2112 && r.shape.k == 7168 && r.ours.timed ? r.ours.us : kNaN;
  }));
  summaries.push_back(
      extreme_summary(results, "GB/s, weight >= 64 MB at M <= 32", true, [](const ShapeResult& r) {
        return r.shape.m <= 32 && r.shape.n * r.shape.k >= (int64_t{64} << 20) ? gbps(r) : kNaN;
      }));
  for (bool over_lt : {true, false}) {
    const std::string against = over_lt ? "cuBLASLt block" : "cuBLAS bf16";
    summaries.push_back(speedup_summary(results, "speedup over " + against + ", M <= 32", true, over_lt,
                                        [](int64_t m) { return m <= 32; }));
    summaries.push_back(speedup_summary(results, "speedup over " + against + ", M 64..512", true, over_lt,
                                        [](int64_t m) { return m >= 64 && m <= 512; }));
    summaries.push_back(speedup_summary(results, "speedup over " + against + ", M >= 1024", true, over_lt,
                                        [](int64_t m) { return m >= 1024; }));
    summaries.push_back(speedup_summary(results, "speedup over " + against + ", M >= 128", true, over_lt,
                                        [](int64_t m) { return m >= 128; }));
    summaries.push_back(speedup_summary(results, "speedup over " + against + ", M >= 128", false, over_lt,
                                        [](int64_t m) { return m >= 128; }));
  }
  // The bf16 paths only when measured, so that the default output stays as it was.
  for (const bool weight_bf16 : {false, true}) {
    if (!(weight_bf16 ? paths.bf16_bf16 : paths.bf16_fp8)) continue;
    const std::string path = weight_bf16 ? "bf16-bf16" : "bf16-fp8";
    auto ratio_of = [weight_bf16](const ShapeResult& r) {
      return time_ratio(weight_bf16 ? r.bf16_bf16 : r.bf16_fp8, r.ours);
    };
    auto large = [](int64_t m) { return m >= 128; };
    auto small = [](int64_t m) { return m <= 32; };
    for (const bool geometric : {true, false}) {
      summaries.push_back(ratio_summary(results, path + " / fp8 time, M >= 128", geometric, ratio_of, large));
      summaries.push_back(ratio_summary(results, path + " / fp8 time, M <= 32", geometric, ratio_of, small));
    }
  }
  return summaries;
}

void print_summaries(const std::vector<Summary>& summaries) {
  std::printf("\n");
  for (const Summary& s : summaries) {
    std::printf("%-7s %-40s %6s  (%d shapes)\n", s.kind.c_str(), s.name.c_str(), fixed(s.value, 3).c_str(),
                s.shapes);
  }
}

// ---------------------------------------------------------------------------------------------
// Quantizers (--quantizers)
//
// The quantizers are memory-bound: their yardstick is what the device moves in a plain copy, measured in
// the same run (so card and clocks are the same), and the figure is the share of it they reach.

struct CopyResult {
  bool timed = false;
  std::size_t bytes = 0;  // copied; read + written = 2 * bytes
  double us = kNaN;
  int calls_per_graph = 0;
  std::vector<double> replay_us;
  std::string note;
  double gbps() const { return timed ? 2.0 * static_cast<double>(bytes) / (us * 1e-6) / 1e9 : kNaN; }
};

// cudaMemcpyAsync device to device of `bytes_copied` (read once, written once), rotated over `sets` buffer
// pairs and timed like the kernels (graph of ~3 ms of copies, median of 7 replays). With kCopyBytes and one
// pair (1 GiB is 20x the L2) it is the quantizers' bandwidth yardstick; with one quantizer call's bytes and
// its rotation, the yardstick a kernel of that size can be held to: below a few MB neither runs at HBM
// speed (launch, one DRAM round trip and the tail dominate).
CopyResult measure_copy(std::size_t bytes_copied, int sets, cudaStream_t stream) {
  CopyResult result;
  result.bytes = align_up(std::max<std::size_t>(bytes_copied, 1), kDeviceAlignment);
  const std::size_t pair_bytes = 2 * result.bytes;
  try {
    DeviceBuffer storage(pair_bytes * static_cast<std::size_t>(sets));
    BENCH_CHECK_CUDA(
        cudaMemsetAsync(storage.bytes(), 0x3C, pair_bytes * static_cast<std::size_t>(sets), stream));
    const blockgemm_bench::GraphTiming timing =
        blockgemm_bench::time_with_graph(stream, sets, [&](int set, cudaStream_t s) {
          uint8_t* pair = storage.bytes() + pair_bytes * static_cast<std::size_t>(set);
          BENCH_CHECK_CUDA(
              cudaMemcpyAsync(pair + result.bytes, pair, result.bytes, cudaMemcpyDeviceToDevice, s));
        });
    result.timed = true;
    result.us = timing.us_per_call;
    result.calls_per_graph = timing.calls_per_graph;
    result.replay_us = timing.replay_us;
  } catch (const FatalDeviceError&) {
    throw;
  } catch (const std::exception& error) {
    result.note = error.what();
    ensure_device_usable();
  }
  return result;
}

struct QuantizerResult {
  QuantizerCase c;
  int64_t scale_ld = 0;  // per-token: column stride of the column-major scales; per-block: row stride
  std::size_t traffic_bytes = 0;  // bf16 read + fp8 written + scales written
  int rotation_sets = 0;
  BackendResult timing;        // `check` unused: the quantizers are compared bitwise
  CopyResult same_bytes_copy;  // a copy of the same read + written bytes, timed right after
  bool check_ran = false;
  int64_t value_mismatches = 0, scale_mismatches = 0;
  bool passed = false;
  const char* kernel() const { return c.per_block ? "per_block_cast_to_fp8" : "per_token_cast_to_fp8"; }
  double gbps() const {
    return timing.timed ? static_cast<double>(traffic_bytes) / (timing.us * 1e-6) / 1e9 : kNaN;
  }
};

double percent_of_copy(const QuantizerResult& q, const CopyResult& copy) {
  return 100.0 * q.gbps() / copy.gbps();
}

QuantizerResult run_quantizer(const QuantizerCase& c, uint64_t seed, cudaStream_t stream, int device) {
  QuantizerResult result;
  result.c = c;
  const int64_t rows = c.rows, cols = c.cols;
  const int64_t kg = ceil_div(cols, kGroup);
  const int64_t scale_rows = c.per_block ? ceil_div(rows, kGroup) : rows;
  // Per-token scales column-major with the ld the GEMM's (and cuBLASLt's) input scale uses: the layout
  // a caller would quantize activations into. Per-block scales row-major, as the weight scales.
  result.scale_ld = c.per_block ? kg : ceil_div(rows, 4) * 4;
  const std::size_t scale_elements =
      static_cast<std::size_t>(c.per_block ? scale_rows * kg : result.scale_ld * kg);
  const auto elements = static_cast<std::size_t>(rows * cols);
  result.traffic_bytes = elements * (sizeof(uint16_t) + 1) + static_cast<std::size_t>(scale_rows * kg) * 4;

  // Host data and the reference, from the same bf16 values.
  const uint64_t data_seed =
      splitmix64(seed ^ splitmix64(static_cast<uint64_t>(rows) * 1000003u +
                                   static_cast<uint64_t>(cols) * 1009u + (c.per_block ? 0xB10Cu : 0x70Cu)));
  const std::vector<float> values = random_bf16_exact(rows, cols, data_seed);
  const std::vector<uint16_t> bits = bf16_bits_of(values);
  const ref::Quantized expected = c.per_block ? ref::per_block_cast_to_fp8(values.data(), rows, cols)
                                              : ref::per_token_cast_to_fp8(values.data(), rows, cols);

  // Rotation sets: input, output and scales each at distinct addresses, set 0 copied into the others.
  const std::size_t x_offset = 0;
  const std::size_t out_offset = align_up(elements * sizeof(uint16_t), kDeviceAlignment);
  const std::size_t scale_offset = out_offset + align_up(elements, kDeviceAlignment);
  const std::size_t stride = scale_offset + align_up(scale_elements * sizeof(float), kDeviceAlignment);
  const auto wanted = ceil_div(static_cast<int64_t>(kRotationTargetBytes),
                               static_cast<int64_t>(std::max<std::size_t>(result.traffic_bytes, 1)));
  const auto affordable = static_cast<int64_t>(kMaxDeviceBytes / stride);
  result.rotation_sets =
      static_cast<int>(std::max<int64_t>(2, std::min<int64_t>({wanted, affordable, kMaxRotationSets})));
  DeviceBuffer storage(stride * static_cast<std::size_t>(result.rotation_sets));
  BENCH_CHECK_CUDA(cudaMemcpy(storage.bytes() + x_offset, bits.data(), elements * sizeof(uint16_t),
                              cudaMemcpyHostToDevice));
  for (int set = 1; set < result.rotation_sets; ++set) {
    BENCH_CHECK_CUDA(cudaMemcpy(storage.bytes() + stride * static_cast<std::size_t>(set) + x_offset,
                                storage.bytes() + x_offset, elements * sizeof(uint16_t),
                                cudaMemcpyDeviceToDevice));
  }
  // As in OperandSets: the copies may still run when cudaMemcpy returns, on a stream ours does not wait on.
  BENCH_CHECK_CUDA(cudaDeviceSynchronize());

  auto base = [&](int set) { return storage.bytes() + stride * static_cast<std::size_t>(set); };
  auto enqueue = [&](int set, cudaStream_t s) {
    uint8_t* b = base(set);
    const blockgemm::TensorView x =
        blockgemm::TensorView::matrix(b + x_offset, DType::kBFloat16, rows, cols, device);
    const blockgemm::TensorView out =
        blockgemm::TensorView::matrix(b + out_offset, DType::kFloat8E4M3, rows, cols, device);
    if (c.per_block) {
      blockgemm::per_block_cast_to_fp8(
          x, out,
          blockgemm::TensorView::strided(b + scale_offset, DType::kFloat32, scale_rows, kg, kg, 1, device),
          s);
    } else {
      blockgemm::per_token_cast_to_fp8(x, out,
                                       blockgemm::TensorView::strided(b + scale_offset, DType::kFloat32, rows,
                                                                      kg, 1, result.scale_ld, device),
                                       s);
    }
  };

  try {
    // Poisoned with 0xFF: a NaN both as fp8 (which the reference never produces: its NaN is 0x7F) and as
    // fp32 scale, so anything the kernel leaves unwritten mismatches.
    BENCH_CHECK_CUDA(cudaMemsetAsync(base(0) + out_offset, 0xFF, elements, stream));
    BENCH_CHECK_CUDA(cudaMemsetAsync(base(0) + scale_offset, 0xFF, scale_elements * sizeof(float), stream));
    enqueue(0, stream);
    BENCH_CHECK_CUDA(cudaGetLastError());
    BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));
    std::vector<uint8_t> got_values(elements);
    std::vector<uint32_t> got_scales(scale_elements);
    BENCH_CHECK_CUDA(cudaMemcpy(got_values.data(), base(0) + out_offset, elements, cudaMemcpyDeviceToHost));
    BENCH_CHECK_CUDA(cudaMemcpy(got_scales.data(), base(0) + scale_offset, scale_elements * sizeof(float),
                                cudaMemcpyDeviceToHost));
    result.check_ran = true;
    for (std::size_t i = 0; i < elements; ++i) {
      result.value_mismatches += got_values[i] != expected.values[i] ? 1 : 0;
    }
    for (int64_t row = 0; row < scale_rows; ++row) {
      for (int64_t col = 0; col < kg; ++col) {
        uint32_t want;
        std::memcpy(&want, &expected.scales[static_cast<std::size_t>(row * kg + col)], sizeof(want));
        const int64_t at = c.per_block ? row * kg + col : col * result.scale_ld + row;
        result.scale_mismatches += got_scales[static_cast<std::size_t>(at)] != want ? 1 : 0;
      }
    }
    record_timing(result.timing, blockgemm_bench::time_with_graph(stream, result.rotation_sets, enqueue));
  } catch (const FatalDeviceError&) {
    throw;
  } catch (const std::exception& error) {
    result.timing.note = error.what();
    ensure_device_usable();
  }
  result.same_bytes_copy = measure_copy(result.traffic_bytes / 2, result.rotation_sets, stream);
  const bool bitwise_equal = result.check_ran && result.value_mismatches == 0 && result.scale_mismatches == 0;
  if (result.timing.note.empty() && !bitwise_equal) {
    result.timing.note = "differs from the reference: " + std::to_string(result.value_mismatches) +
                         " fp8 values, " + std::to_string(result.scale_mismatches) + " scales";
  }
  result.passed = bitwise_equal && result.timing.timed;
  return result;
}

struct QuantizerReport {
  bool ran = false;
  CopyResult copy;
  std::vector<QuantizerResult> rows;
  double min_percent_of_copy = kNaN;
  double min_percent_of_same_bytes_copy = kNaN;
  int cases = 0;
  bool passed() const {
    if (static_cast<int>(rows.size()) != cases) return false;
    for (const QuantizerResult& q : rows) {
      if (!q.passed) return false;
    }
    return true;
  }
};

void print_quantizer_row(const QuantizerResult& q, const CopyResult& copy) {
  char shape[48];
  std::snprintf(shape, sizeof(shape), "%" PRId64 " x %" PRId64, q.c.rows, q.c.cols);
  std::printf("%-22s %13s | %9s %7s %8s | %9s %8s | %5d | %s\n", q.kernel(), shape,
              fixed(q.timing.us, 2).c_str(), fixed(q.gbps(), 0).c_str(),
              fixed(percent_of_copy(q, copy), 1).c_str(), fixed(q.same_bytes_copy.us, 2).c_str(),
              fixed(percent_of_copy(q, q.same_bytes_copy), 1).c_str(), q.rotation_sets,
              q.passed ? "bitwise equal" : ("FAIL " + q.timing.note).c_str());
  std::fflush(stdout);
}

// Throws FatalDeviceError when the context dies; every other failure is recorded in its row.
void run_quantizers(const Options& options, cudaStream_t stream, int device, QuantizerReport& report) {
  report.ran = true;
  report.cases = static_cast<int>(options.quantizer_cases.size());
  report.copy = measure_copy(kCopyBytes, 1, stream);
  std::printf(
      "\nquantizers (GB/s = (bf16 read + fp8 written + scales) / time; %% of the 1 GiB copy's GB/s; a copy "
      "of\n"
      "the same read + written bytes, its us and the quantizer's %% of its GB/s)\n");
  std::printf("%-22s %13s | %9s %7s %8s | %9s %8s | %5s | %s\n", "kernel", "shape", "us", "GB/s", "% copy",
              "copy us", "% same", "sets", "check");
  char copy_shape[48];
  std::snprintf(copy_shape, sizeof(copy_shape), "%zu MiB", kCopyBytes >> 20);
  std::printf("%-22s %13s | %9s %7s %8s | %9s %8s | %5s | %s\n", "cudaMemcpyAsync d2d", copy_shape,
              fixed(report.copy.us, 2).c_str(), fixed(report.copy.gbps(), 0).c_str(),
              report.copy.timed ? "100.0" : "n/a", "", "", "1",
              report.copy.timed ? "read + written bytes" : ("FAIL " + report.copy.note).c_str());
  std::fflush(stdout);
  for (const QuantizerCase& c : options.quantizer_cases) {
    try {
      report.rows.push_back(run_quantizer(c, options.seed, stream, device));
    } catch (const FatalDeviceError&) {
      throw;
    } catch (const std::exception& error) {
      // Set-up failed (host data, allocation): the row counts as failed, the run goes on.
      QuantizerResult failed;
      failed.c = c;
      failed.timing.note = std::string("set-up failed: ") + error.what();
      report.rows.push_back(failed);
      ensure_device_usable();
    }
    print_quantizer_row(report.rows.back(), report.copy);
  }
  double minimum = std::numeric_limits<double>::infinity();
  double minimum_same = std::numeric_limits<double>::infinity();
  for (const QuantizerResult& q : report.rows) {
    const double percent = percent_of_copy(q, report.copy);
    if (std::isfinite(percent)) minimum = std::min(minimum, percent);
    const double percent_same = percent_of_copy(q, q.same_bytes_copy);
    if (std::isfinite(percent_same)) minimum_same = std::min(minimum_same, percent_same);
  }
  if (std::isfinite(minimum)) report.min_percent_of_copy = minimum;
  if (std::isfinite(minimum_same)) report.min_percent_of_same_bytes_copy = minimum_same;
}

std::string json_string(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x",
                        static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += escaped;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double value) {
  if (!std::isfinite(value)) return "null";
  char text[64];
  std::snprintf(text, sizeof(text), "%.6g", value);
  return text;
}

std::string json_backend(const BackendResult& b) {
  std::ostringstream out;
  out << "{\"us\": " << json_number(b.us) << ", \"calls_per_graph\": " << b.calls_per_graph
      << ", \"check_ran\": " << (b.check.ran ? "true" : "false")
      << ", \"all_finite\": " << (b.check.all_finite ? "true" : "false")
      << ", \"diff\": " << json_number(b.check.diff) << ", \"note\": " << json_string(b.note)
      << ", \"replay_us\": [";
  for (std::size_t i = 0; i < b.replay_us.size(); ++i) out << (i ? ", " : "") << json_number(b.replay_us[i]);
  out << "]}";
  return out.str();
}

struct RunInfo {
  std::string device_name;
  int sm_count = 0;
  int compute_major = 0, compute_minor = 0;
  int l2_bytes = 0;
  int driver_version = 0;
  int runtime_version = 0;
  std::size_t cublaslt_version = 0;
  std::string date_utc;
};

std::string json_replays(const std::vector<double>& replay_us) {
  std::string out = "[";
  for (std::size_t i = 0; i < replay_us.size(); ++i) out += (i ? ", " : "") + json_number(replay_us[i]);
  return out + "]";
}

std::string json_quantizers(const QuantizerReport& report) {
  std::ostringstream out;
  const CopyResult& copy = report.copy;
  out << "{\n    \"copy\": {\"api\": \"cudaMemcpyAsync device to device\", \"bytes_copied\": " << copy.bytes
      << ", \"bytes_read_plus_written\": " << 2 * copy.bytes << ", \"us\": " << json_number(copy.us)
      << ", \"gbps\": " << json_number(copy.gbps()) << ", \"calls_per_graph\": " << copy.calls_per_graph
      << ", \"note\": " << json_string(copy.note) << ", \"replay_us\": " << json_replays(copy.replay_us)
      << "},\n    \"rows\": [\n";
  for (std::size_t i = 0; i < report.rows.size(); ++i) {
    const QuantizerResult& q = report.rows[i];
    out << "      {\"kernel\": " << json_string(q.kernel()) << ", \"rows\": " << q.c.rows
        << ", \"cols\": " << q.c.cols
        << ", \"scale_layout\": " << json_string(q.c.per_block ? "row-major" : "column-major")
        << ", \"scale_ld\": " << q.scale_ld << ", \"traffic_bytes\": " << q.traffic_bytes
        << ", \"rotation_sets\": " << q.rotation_sets << ", \"us\": " << json_number(q.timing.us)
        << ", \"gbps\": " << json_number(q.gbps())
        << ", \"percent_of_copy\": " << json_number(percent_of_copy(q, copy))
        << ", \"same_bytes_copy_us\": " << json_number(q.same_bytes_copy.us)
        << ", \"percent_of_same_bytes_copy\": " << json_number(percent_of_copy(q, q.same_bytes_copy))
        << ", \"calls_per_graph\": " << q.timing.calls_per_graph
        << ", \"check_ran\": " << (q.check_ran ? "true" : "false")
        << ", \"value_mismatches\": " << q.value_mismatches
        << ", \"scale_mismatches\": " << q.scale_mismatches
        << ", \"passed\": " << (q.passed ? "true" : "false") << ", \"note\": " << json_string(q.timing.note)
        << ", \"replay_us\": " << json_replays(q.timing.replay_us) << "}"
        << (i + 1 < report.rows.size() ? "," : "") << "\n";
  }
  out << "    ],\n    \"min_percent_of_copy\": " << json_number(report.min_percent_of_copy)
      << ",\n    \"min_percent_of_same_bytes_copy\": " << json_number(report.min_percent_of_same_bytes_copy)
      << "\n  }";
  return out.str();
}

void write_json(const std::string& path, const RunInfo& info, const Options& options,
                const std::vector<ShapeResult>& results, const std::vector<Summary>& summaries,
                const QuantizerReport& quantizers, bool all_passed) {
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot open " + path + " for writing");
  out << "{\n";
  out << "  \"tool\": \"blockgemm-bench\",\n";
  out << "  \"date_utc\": " << json_string(info.date_utc) << ",\n";
  out << "  \"device\": {\"name\": " << json_string(info.device_name) << ", \"sm_count\": " << info.sm_count
      << ", \"compute_capability\": \"" << info.compute_major << "." << info.compute_minor
      << "\", \"l2_bytes\": " << info.l2_bytes << "},\n";
  out << "  \"versions\": {\"driver\": " << info.driver_version << ", \"runtime\": " << info.runtime_version
      << ", \"cublaslt\": " << info.cublaslt_version << "},\n";
  out << "  \"options\": {\"out_dtype\": " << json_string(out_dtype_name(options.out_dtype))
      << ", \"weight_scale\": "
      << json_string(options.weight_scale == WeightScaleLayout::kBlock128x128 ? "block" : "token")
      << ", \"baselines\": " << (options.run_baselines ? "true" : "false")
      << ", \"check_rows\": " << options.check_rows << ", \"seed\": " << options.seed
      << ", \"rotation_target_bytes\": " << kRotationTargetBytes
      << ", \"max_ours_diff\": " << json_number(kMaxOursDiff)
      << ", \"gemm\": " << (options.run_gemm ? "true" : "false") << ", \"paths\": [\"fp8\""
      << (options.paths.bf16_fp8 ? ", \"bf16-fp8\"" : "")
      << (options.paths.bf16_bf16 ? ", \"bf16-bf16\"" : "")
      << "], \"quantizers\": " << (options.run_quantizers ? "true" : "false") << "},\n";
  out << "  \"all_ours_checks_passed\": " << (all_passed ? "true" : "false") << ",\n";
  out << "  \"rows\": [\n";
  for (std::size_t i = 0; i < results.size(); ++i) {
    const ShapeResult& r = results[i];
    out << "    {\"m\": " << r.shape.m << ", \"n\": " << r.shape.n << ", \"k\": " << r.shape.k
        << ", \"plan\": " << json_string(r.plan)
        << ", \"ours_passed\": " << (r.ours_passed ? "true" : "false")
        << ", \"tflops\": " << json_number(tflops(r)) << ", \"gbps\": " << json_number(gbps(r))
        << ", \"traffic_bytes\": " << r.traffic_bytes << ", \"rotation_sets\": " << r.rotation_sets
        << ", \"rotated_bytes_per_set\": " << r.rotated_bytes_per_set
        << ", \"speedup_vs_cublaslt_block\": " << json_number(speedup(r.lt, r.ours))
        << ", \"speedup_vs_cublas_bf16\": " << json_number(speedup(r.bf16, r.ours))
        << ",\n     \"ours\": " << json_backend(r.ours)
        << ",\n     \"cublaslt_block\": " << json_backend(r.lt)
        << ", \"cublaslt_algorithm\": " << json_string(r.lt_algorithm)
        << ",\n     \"cublas_bf16\": " << json_backend(r.bf16);
    // The bf16 paths' fields only when measured, so that default records keep their old form.
    if (options.paths.any_bf16()) out << ",\n     \"workspace_bytes\": " << r.workspace_bytes;
    if (options.paths.bf16_fp8) {
      out << ", \"bf16_fp8_us\": " << json_number(r.bf16_fp8.us)
          << ", \"bf16_fp8_ratio_to_fp8\": " << json_number(time_ratio(r.bf16_fp8, r.ours))
          << ", \"bf16_fp8_passed\": " << (r.bf16_fp8_passed ? "true" : "false")
          << ",\n     \"bf16_fp8\": " << json_backend(r.bf16_fp8);
    }
    if (options.paths.bf16_bf16) {
      out << ",\n     \"bf16_bf16_us\": " << json_number(r.bf16_bf16.us)
          << ", \"bf16_bf16_ratio_to_fp8\": " << json_number(time_ratio(r.bf16_bf16, r.ours))
          << ", \"bf16_bf16_passed\": " << (r.bf16_bf16_passed ? "true" : "false")
          << ",\n     \"bf16_bf16\": " << json_backend(r.bf16_bf16);
    }
    out << "}" << (i + 1 < results.size() ? "," : "") << "\n";
  }
  out << "  ],\n";
  out << "  \"summaries\": [\n";
  for (std::size_t i = 0; i < summaries.size(); ++i) {
    const Summary& s = summaries[i];
    out << "    {\"name\": " << json_string(s.name) << ", \"kind\": " << json_string(s.kind)
        << ", \"value\": " << json_number(s.value) << ", \"shapes\": " << s.shapes << "}"
        << (i + 1 < summaries.size() ? "," : "") << "\n";
  }
  out << "  ]";
  if (quantizers.ran) out << ",\n  \"quantizers\": " << json_quantizers(quantizers);
  out << "\n}\n";
  if (!out) throw std::runtime_error("failed writing " + path);
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

RunInfo collect_run_info(int device) {
  RunInfo info;
  cudaDeviceProp properties{};
  BENCH_CHECK_CUDA(cudaGetDeviceProperties(&properties, device));
  info.device_name = properties.name;
  info.sm_count = properties.multiProcessorCount;
  info.compute_major = properties.major;
  info.compute_minor = properties.minor;
  info.l2_bytes = properties.l2CacheSize;
  BENCH_CHECK_CUDA(cudaDriverGetVersion(&info.driver_version));
  BENCH_CHECK_CUDA(cudaRuntimeGetVersion(&info.runtime_version));
  info.cublaslt_version = cublasLtGetVersion();
  info.date_utc = utc_now();
  return info;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse_options(argc, argv);
  std::vector<ShapeResult> results;
  QuantizerReport quantizers;
  bool fatal = false;
  RunInfo info;
  try {
    Backends backends;
    BENCH_CHECK_CUDA(cudaGetDevice(&backends.device));
    info = collect_run_info(backends.device);
    std::printf("blockgemm-bench  %s  (%d SMs, cc %d.%d)  driver %d  runtime %d  cuBLASLt %zu  %s\n",
                info.device_name.c_str(), info.sm_count, info.compute_major, info.compute_minor,
                info.driver_version, info.runtime_version, info.cublaslt_version, info.date_utc.c_str());
    BENCH_CHECK_CUDA(cudaStreamCreateWithFlags(&backends.stream, cudaStreamNonBlocking));
    if (options.run_gemm) {
      std::string paths;
      if (options.paths.bf16_fp8) paths += ",bf16-fp8";
      if (options.paths.bf16_bf16) paths += ",bf16-bf16";
      std::printf("out %s, weight scales %s, %zu shapes, check rows %" PRId64 "%s%s\n\n",
                  out_dtype_name(options.out_dtype),
                  options.weight_scale == WeightScaleLayout::kBlock128x128 ? "128x128" : "1x128 per row",
                  options.shapes.size(), options.check_rows, options.run_baselines ? "" : ", no baselines",
                  paths.empty() ? "" : (", paths fp8" + paths).c_str());

      if (options.run_baselines) {
        backends.lt = std::make_unique<blockgemm_bench::CublasLtBlockScaledGemm>(kWorkspaceBytes);
        backends.bf16 = std::make_unique<blockgemm_bench::CublasBf16Gemm>(backends.stream, kWorkspaceBytes);
      }
      print_table_header();
      for (const Shape& shape : options.shapes) {
        try {
          try {
            results.push_back(run_shape(shape, options, backends));
          } catch (const FatalDeviceError&) {
            throw;
          } catch (const std::exception& error) {
            // Set-up failed (host data, allocation, reference): the shape counts as a failure of ours,
            // the run goes on if the device still works.
            ShapeResult failed;
            failed.shape = shape;
            failed.ours.note = std::string("shape set-up failed: ") + error.what();
            results.push_back(failed);
            ensure_device_usable();
          }
          print_table_row(results.back());
        } catch (const FatalDeviceError& error) {
          std::fprintf(stderr, "blockgemm-bench: M=%" PRId64 " N=%" PRId64 " K=%" PRId64 ": %s; stopping\n",
                       shape.m, shape.n, shape.k, error.what());
          fatal = true;
          break;
        }
      }
      if (options.paths.any_bf16() && !results.empty()) print_paths_table(results, options.paths);
      backends.lt.reset();
      backends.bf16.reset();
      backends.last_weight.reset();  // host memory the quantizers may want
    }
    if (options.run_quantizers && !fatal) {
      try {
        run_quantizers(options, backends.stream, backends.device, quantizers);
      } catch (const FatalDeviceError& error) {
        std::fprintf(stderr, "blockgemm-bench: quantizers: %s; stopping\n", error.what());
        fatal = true;
      }
    }
    cudaStreamDestroy(backends.stream);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "blockgemm-bench: fatal: %s\n", error.what());
    fatal = true;
  }

  bool all_passed = !fatal && results.size() == options.shapes.size();
  for (const ShapeResult& r : results) all_passed = all_passed && r.passed(options.paths);
  if (options.run_quantizers) all_passed = all_passed && quantizers.passed();
  const std::vector<Summary> summaries =
      options.run_gemm ? summarize(results, options.paths) : std::vector<Summary>();
  if (!results.empty()) print_summaries(summaries);
  if (quantizers.ran) {
    // Over the rows that were timed; a row that failed its check is a failure whatever its speed.
    int timed = 0;
    for (const QuantizerResult& q : quantizers.rows)
      timed += std::isfinite(percent_of_copy(q, quantizers.copy));
    std::printf("\n%-7s %-40s %6s  (%d rows)\n", "min", "quantizer % of copy bandwidth",
                fixed(quantizers.min_percent_of_copy, 1).c_str(), timed);
    std::printf("%-7s %-40s %6s  (%d rows)\n", "min", "quantizer % of a same-bytes copy",
                fixed(quantizers.min_percent_of_same_bytes_copy, 1).c_str(), timed);
  }
  std::printf("\nblockgemm checks: %s\n", all_passed ? "all passed" : "FAILED");

  if (!options.json_path.empty()) {
    try {
      write_json(options.json_path, info, options, results, summaries, quantizers, all_passed);
      std::printf("wrote %s\n", options.json_path.c_str());
    } catch (const std::exception& error) {
      std::fprintf(stderr, "blockgemm-bench: %s\n", error.what());
      fatal = true;
    }
  }
  if (fatal) return 3;
  return all_passed ? 0 : 1;
}
