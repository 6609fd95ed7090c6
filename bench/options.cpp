#include "options.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>

namespace blockgemm_bench {
namespace {

using blockgemm::DType;

const char* kUsage =
    "usage: blockgemm-bench [--suite deepseek] [--shape M,N,K]... [--shapes MxNxK,...] [--m-list M1,M2,...]\n"
    "                       [--out-dtype bf16|fp16|fp32] [--weight-scale block|token] [--scale-layout "
    "row|col]\n"
    "                       [--protocol burst|steady|both] [--rounds N] [--warm-seconds S] [--steady-min-m "
    "M]\n"
    "                       [--json PATH] [--no-baselines] [--check-rows R] [--seed S] [--paths LIST]\n"
    "                       [--quantizers] [--quant-token M,K]... [--quant-block N,K]...\n"
    "  --suite deepseek   DeepSeek-V3 projections (N,K) x M in {1,2,4,8,16,24,32,48,64,128,512,4096}\n"
    "                     (the default)\n"
    "  --shape M,N,K      one problem; repeatable; replaces the suite\n"
    "  --shapes LIST      comma list of MxNxK problems (the Python benchmark's spelling); adds to --shape\n"
    "  --m-list ...       the M values crossed with the suite's (N,K) (not with --shape)\n"
    "  --out-dtype        output dtype of blockgemm and of the cuBLASLt baseline (default bf16)\n"
    "  --weight-scale     block: 128x128 weight scales (default); token: 1x128 per weight row\n"
    "  --scale-layout     how blockgemm gets its scales. row (default): row-major and contiguous, as\n"
    "                     blockgemm.testing's quantizers return them and the Python benchmark passes them;\n"
    "                     col: the buffers cuBLASLt reads (M-contiguous input scales, N-contiguous per-row\n"
    "                     weight scales, block scales with row stride roundup(K/128, 4))\n"
    "  --protocol P       burst: CUDA-graph replays right after set-up, median of 7 (the method of the\n"
    "                     anchors); steady: the same after each backend's graph ran --warm-seconds at its\n"
    "                     shape (only where M >= --steady-min-m); both (default). Large-M claims use steady\n"
    "  --rounds N         passes of each protocol over the backends, the order reversed on odd passes; each\n"
    "                     backend reports the best (min) of the passes' medians (default 2)\n"
    "  --warm-seconds S   replay time of a backend before its steady-state timing (default 1.0)\n"
    "  --steady-min-m M   smallest M timed at steady state (default 512; 1 = every shape)\n"
    "  --json PATH        also write every row, the device and the summaries as JSON\n"
    "  --no-baselines     time blockgemm only\n"
    "  --check-rows R     output rows compared with the CPU reference (default 64, 0 = all)\n"
    "  --seed S           seed of the random operands\n"
    "  --paths LIST       comma list of fp8, bf16-fp8, bf16-bf16 (default fp8): also time the call with\n"
    "                     a bf16 input (bf16-fp8) or bf16 input and weight (bf16-bf16), quantized inside\n"
    "                     into a preallocated workspace; fp8 always runs (the ratios' denominator)\n"
    "  --quantizers       time per_token_cast_to_fp8 (M,K) in {(4096,7168), (16384,7168), (128,7168)} and\n"
    "                     per_block_cast_to_fp8 (N,K) in {(7168,16384), (2112,7168)} against a 1 GiB\n"
    "                     device-to-device copy and a copy of each quantizer's own bytes (burst only);\n"
    "                     alone (or with only --json/--seed/--quant-*) it runs nothing else\n"
    "  --quant-token M,K  a per-token quantizer size; repeatable\n"
    "  --quant-block N,K  a per-block quantizer size; repeatable. Either implies --quantizers, and together\n"
    "                     they replace the whole default size list\n"
    "Needs a Hopper (sm_90) GPU; without one it says so and exits with status 3.\n"
    "exit status: 0 all checks of blockgemm passed (every path, every quantizer), 1 a check failed,\n"
    "             2 usage, 3 fatal error (no usable GPU among them)\n";

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

double parse_seconds(const std::string& text, const char* what) {
  char* end = nullptr;
  errno = 0;
  const double value = std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0' || errno != 0 || !std::isfinite(value) || value < 0.0 ||
      value > 600.0) {
    usage_error(std::string("bad ") + what + " '" + text + "' (want seconds, 0 to 600)");
  }
  return value;
}

std::vector<int64_t> parse_list(const std::string& text, const char* what, char separator = ',') {
  std::vector<int64_t> values;
  std::stringstream stream(text);
  std::string item;
  while (std::getline(stream, item, separator)) values.push_back(parse_positive(item, what));
  if (values.empty()) usage_error(std::string("empty ") + what);
  return values;
}

Paths parse_paths(const std::string& text) {
  Paths paths;
  std::stringstream list(text);
  std::string path;
  bool any = false;
  while (std::getline(list, path, ',')) {
    any = true;
    if (path == "fp8") {
      // Always measured; accepted so that the full list can be spelled out.
    } else if (path == "bf16-fp8") {
      paths.bf16_fp8 = true;
    } else if (path == "bf16-bf16") {
      paths.bf16_bf16 = true;
    } else {
      usage_error("unknown path '" + path + "' in --paths (want fp8, bf16-fp8, bf16-bf16)");
    }
  }
  if (!any) usage_error("empty --paths");
  return paths;
}

}  // namespace

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
    } else if (arg == "--shapes") {
      gemm_option_given = true;
      std::stringstream list(value_of(i));
      std::string item;
      while (std::getline(list, item, ',')) {
        const std::vector<int64_t> mnk = parse_list(item, "shape", 'x');
        if (mnk.size() != 3) usage_error("--shapes wants MxNxK items, got '" + item + "'");
        explicit_shapes.push_back({mnk[0], mnk[1], mnk[2]});
      }
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
    } else if (arg == "--scale-layout") {
      gemm_option_given = true;
      const std::string layout = value_of(i);
      if (layout == "row") {
        options.scale_layout = ScaleLayout::kRowMajor;
      } else if (layout == "col") {
        options.scale_layout = ScaleLayout::kCublasLt;
      } else {
        usage_error("unknown --scale-layout '" + layout + "' (want row or col)");
      }
    } else if (arg == "--protocol") {
      gemm_option_given = true;
      const std::string protocol = value_of(i);
      if (protocol != "burst" && protocol != "steady" && protocol != "both") {
        usage_error("unknown --protocol '" + protocol + "' (want burst, steady or both)");
      }
      options.protocol.burst = protocol != "steady";
      options.protocol.steady = protocol != "burst";
    } else if (arg == "--rounds") {
      gemm_option_given = true;
      const int64_t rounds = parse_positive(value_of(i), "--rounds");
      if (rounds > 100) usage_error("--rounds above 100");
      options.protocol.rounds = static_cast<int>(rounds);
    } else if (arg == "--warm-seconds") {
      gemm_option_given = true;
      options.protocol.warm_seconds = parse_seconds(value_of(i), "--warm-seconds");
    } else if (arg == "--steady-min-m") {
      gemm_option_given = true;
      options.protocol.steady_min_m = parse_positive(value_of(i), "--steady-min-m");
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
      options.paths = parse_paths(value_of(i));
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
    options.quantizer_cases = quantizer_cases.empty() ? default_quantizer_cases() : quantizer_cases;
  }
  if (!options.run_gemm) return options;
  if (!explicit_shapes.empty()) {
    if (m_list) usage_error("--m-list applies to the suite; give M in each --shape instead");
    options.shapes = explicit_shapes;
  } else {
    options.shapes = deepseek_shapes(m_list ? *m_list : deepseek_m());
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

const char* scale_layout_name(ScaleLayout layout) {
  return layout == ScaleLayout::kRowMajor ? "row" : "col";
}

std::string protocol_name(const ProtocolOptions& protocol) {
  return protocol.burst && protocol.steady ? "both" : protocol.burst ? "burst" : "steady";
}

}  // namespace blockgemm_bench
