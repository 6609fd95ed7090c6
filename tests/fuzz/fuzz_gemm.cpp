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

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "fuzz_case.h"
#include "fuzz_run.h"
#include "gpu_test_util.h"

namespace {

using blockgemm::fuzz::Caps;
using blockgemm::fuzz::CaseParams;
using blockgemm::fuzz::combo_name;
using blockgemm::fuzz::context_broken;
using blockgemm::fuzz::draw_case;
using blockgemm::fuzz::kDefaultCaps;
using blockgemm::fuzz::kLargeCaps;
using blockgemm::fuzz::Outcome;
using blockgemm::fuzz::run_error_case;
using blockgemm::fuzz::run_gemm_case;
using blockgemm::testing::check_cuda;

// ---- options ----------------------------------------------------------------------------------------------

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

// ---- command line -----------------------------------------------------------------------------------------

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
      keys.push_back(std::string("out: ") + blockgemm::dtype_name(p.out_dtype));
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
