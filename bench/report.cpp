#include "report.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>

#include "text_format.h"

namespace blockgemm_bench {
namespace {

// The NVML readings shown in the table: blockgemm's, during its best round of `protocol`.
const DeviceConditions* ours_conditions(const ShapeResult& r, Protocol protocol) {
  const RoundTiming* best = r.ours.timing(protocol).best();
  return best != nullptr ? &best->conditions : nullptr;
}

std::string clock_cell(const ShapeResult& r, Protocol protocol) {
  const DeviceConditions* conditions = ours_conditions(r, protocol);
  return conditions != nullptr ? fixed(conditions->sm_clock_mhz, 0) : "n/a";
}

std::string power_cell(const ShapeResult& r, Protocol protocol) {
  const DeviceConditions* conditions = ours_conditions(r, protocol);
  return conditions != nullptr ? fixed(conditions->power_w, 0) : "n/a";
}

template <typename Ratio, typename Predicate>
Summary ratio_summary(const std::vector<ShapeResult>& results, const std::string& name,
                      const std::string& kind, Protocol protocol, Ratio ratio_of, Predicate in_bucket) {
  Summary summary;
  summary.name = name;
  summary.kind = kind;
  summary.protocol = protocol;
  double log_sum = 0.0;
  double minimum = std::numeric_limits<double>::infinity();
  double maximum = -std::numeric_limits<double>::infinity();
  for (const ShapeResult& r : results) {
    const double ratio = ratio_of(r);
    if (!in_bucket(r.shape.m) || !std::isfinite(ratio)) continue;
    ++summary.shapes;
    log_sum += std::log(ratio);
    minimum = std::min(minimum, ratio);
    maximum = std::max(maximum, ratio);
  }
  if (summary.shapes > 0) {
    summary.value = kind == "geomean" ? std::exp(log_sum / summary.shapes)
                    : kind == "min"   ? minimum
                                      : maximum;
  }
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

}  // namespace

double tflops(const ShapeResult& r, Protocol protocol) {
  const double us = r.ours.us(protocol);
  return std::isfinite(us) ? 2.0 * static_cast<double>(r.shape.m) * static_cast<double>(r.shape.n) *
                                 static_cast<double>(r.shape.k) / (us * 1e-6) / 1e12
                           : kNaN;
}

double gbps(const ShapeResult& r, Protocol protocol) {
  const double us = r.ours.us(protocol);
  return std::isfinite(us) ? static_cast<double>(r.traffic_bytes) / (us * 1e-6) / 1e9 : kNaN;
}

double speedup(const BackendResult& baseline, const BackendResult& ours, Protocol protocol) {
  const double ratio = baseline.us(protocol) / ours.us(protocol);
  return std::isfinite(ratio) ? ratio : kNaN;
}

double time_ratio(const BackendResult& path, const BackendResult& fp8) {
  const double ratio = path.us(Protocol::kBurst) / fp8.us(Protocol::kBurst);
  return std::isfinite(ratio) ? ratio : kNaN;
}

void print_table_header(const Options& options, const NvmlMonitor& nvml) {
  const ProtocolOptions& p = options.protocol;
  std::printf(
      "timing: CUDA-graph replays over operand sets rotated past L2, median of %d, best of %d round%s "
      "(backend order reversed on odd rounds)\n",
      p.timed_replays, p.rounds, p.rounds == 1 ? "" : "s");
  if (p.burst) std::printf("  burst : right after set-up (the first column groups)\n");
  if (p.steady) {
    std::printf("  steady: after %.1f s of replays of each backend at its shape, M >= %" PRId64
                " (the 'steady' group; large-M claims use it)\n",
                p.warm_seconds, p.steady_min_m);
  }
  std::printf("  MHz / W: NVML SM clock / board power during blockgemm's timed replays%s\n\n",
              nvml.available() ? "" : (" (unavailable: " + nvml.status() + ")").c_str());
  std::printf(
      "%6s %6s %6s | %9s %8s %7s %5s | %10s %7s | %9s %7s | %9s %8s %10s %7s %9s %7s %5s %4s | %9s %9s %9s | "
      "%s\n",
      "M", "N", "K", "ours us", "TFLOP/s", "GB/s", "MHz", "Lt-blk us", "speedup", "bf16 us", "speedup",
      "steady us", "TFLOP/s", "Lt-blk us", "speedup", "bf16 us", "speedup", "MHz", "W", "diff", "Lt diff",
      "bf16 diff", "plan");
  std::fflush(stdout);
}

void print_table_row(const ShapeResult& r) {
  const std::string ours_diff =
      r.ours_passed ? scientific(r.ours.check.diff) : "FAIL " + scientific(r.ours.check.diff);
  const Protocol burst = Protocol::kBurst, steady = Protocol::kSteady;
  const bool has_steady = r.ours.steady.ran || r.lt.steady.ran || r.bf16.steady.ran;
  auto steady_cell = [&](const std::string& text) { return has_steady ? text : std::string("-"); };
  std::printf(
      "%6" PRId64 " %6" PRId64 " %6" PRId64
      " | %9s %8s %7s %5s | %10s %7s | %9s %7s | %9s %8s %10s %7s %9s %7s %5s %4s | %9s %9s %9s | %s\n",
      r.shape.m, r.shape.n, r.shape.k, fixed(r.ours.us(burst), 2).c_str(), fixed(tflops(r, burst), 1).c_str(),
      fixed(gbps(r, burst), 0).c_str(), clock_cell(r, burst).c_str(), fixed(r.lt.us(burst), 2).c_str(),
      fixed(speedup(r.lt, r.ours, burst), 2).c_str(), fixed(r.bf16.us(burst), 2).c_str(),
      fixed(speedup(r.bf16, r.ours, burst), 2).c_str(), steady_cell(fixed(r.ours.us(steady), 2)).c_str(),
      steady_cell(fixed(tflops(r, steady), 1)).c_str(), steady_cell(fixed(r.lt.us(steady), 2)).c_str(),
      steady_cell(fixed(speedup(r.lt, r.ours, steady), 2)).c_str(),
      steady_cell(fixed(r.bf16.us(steady), 2)).c_str(),
      steady_cell(fixed(speedup(r.bf16, r.ours, steady), 2)).c_str(),
      steady_cell(clock_cell(r, steady)).c_str(), steady_cell(power_cell(r, steady)).c_str(),
      ours_diff.c_str(), scientific(r.lt.check.diff).c_str(), scientific(r.bf16.check.diff).c_str(),
      r.plan.c_str());
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

void print_paths_table(const std::vector<ShapeResult>& results, const Paths& paths) {
  auto cells = [](bool requested, const BackendResult& path, const BackendResult& fp8, bool passed) {
    char text[96];
    if (!requested) {
      std::snprintf(text, sizeof(text), "%12s %6s %14s", "-", "-", "-");
    } else {
      const std::string diff = (passed ? "" : "FAIL ") + scientific(path.check.diff);
      std::snprintf(text, sizeof(text), "%12s %6s %14s", fixed(path.us(Protocol::kBurst), 2).c_str(),
                    fixed(time_ratio(path, fp8), 2).c_str(), diff.c_str());
    }
    return std::string(text);
  };
  std::printf("\nbf16-operand paths (burst; ratio = path time / fp8 time; workspace preallocated)\n");
  std::printf("%6s %6s %6s | %9s | %12s %6s %14s | %12s %6s %14s\n", "M", "N", "K", "fp8 us", "bf16-fp8 us",
              "ratio", "diff", "bf16-bf16 us", "ratio", "diff");
  for (const ShapeResult& r : results) {
    std::printf("%6" PRId64 " %6" PRId64 " %6" PRId64 " | %9s | %s | %s\n", r.shape.m, r.shape.n, r.shape.k,
                fixed(r.ours.us(Protocol::kBurst), 2).c_str(),
                cells(paths.bf16_fp8, r.bf16_fp8, r.ours, r.bf16_fp8_passed).c_str(),
                cells(paths.bf16_bf16, r.bf16_bf16, r.ours, r.bf16_bf16_passed).c_str());
  }
  std::fflush(stdout);
}

std::vector<Summary> summarize(const std::vector<ShapeResult>& results, const Paths& paths) {
  std::vector<Summary> summaries;
  const Protocol burst = Protocol::kBurst, steady = Protocol::kSteady;
  // Decode: the weight streamed from HBM is the whole cost.
  summaries.push_back(extreme_summary(results, "us, 2112 x 7168 at M <= 32", false, [](const ShapeResult& r) {
    return r.shape.m <= 32 && r.shape.n == 2112 && r.shape.k == 7168 ? r.ours.us(Protocol::kBurst) : kNaN;
  }));
  summaries.push_back(
      extreme_summary(results, "GB/s, weight >= 64 MB at M <= 32", true, [](const ShapeResult& r) {
        return r.shape.m <= 32 && r.shape.n * r.shape.k >= (int64_t{64} << 20) ? gbps(r, Protocol::kBurst)
                                                                               : kNaN;
      }));
  for (bool over_lt : {true, false}) {
    const std::string against = over_lt ? "cuBLASLt block" : "cuBLAS bf16";
    auto ratio_in = [over_lt](Protocol protocol) {
      return [over_lt, protocol](const ShapeResult& r) {
        return speedup(over_lt ? r.lt : r.bf16, r.ours, protocol);
      };
    };
    const std::string name = "speedup over " + against;
    summaries.push_back(ratio_summary(results, name + ", M <= 32", "geomean", burst, ratio_in(burst),
                                      [](int64_t m) { return m <= 32; }));
    summaries.push_back(ratio_summary(results, name + ", M 64..512", "geomean", burst, ratio_in(burst),
                                      [](int64_t m) { return m >= 64 && m <= 512; }));
    summaries.push_back(ratio_summary(results, name + ", M >= 1024", "geomean", burst, ratio_in(burst),
                                      [](int64_t m) { return m >= 1024; }));
    summaries.push_back(ratio_summary(results, name + ", M >= 128", "geomean", burst, ratio_in(burst),
                                      [](int64_t m) { return m >= 128; }));
    summaries.push_back(ratio_summary(results, name + ", M >= 128", "min", burst, ratio_in(burst),
                                      [](int64_t m) { return m >= 128; }));
  }
  // Steady state: the figures large-M claims rest on (only shapes it ran on count).
  for (bool over_lt : {true, false}) {
    const std::string name =
        std::string("steady: speedup over ") + (over_lt ? "cuBLASLt block" : "cuBLAS bf16");
    auto ratio_of = [over_lt](const ShapeResult& r) {
      return speedup(over_lt ? r.lt : r.bf16, r.ours, Protocol::kSteady);
    };
    summaries.push_back(ratio_summary(results, name + ", M >= 1024", "geomean", steady, ratio_of,
                                      [](int64_t m) { return m >= 1024; }));
    summaries.push_back(ratio_summary(results, name + ", M 512..1023", "geomean", steady, ratio_of,
                                      [](int64_t m) { return m >= 512 && m < 1024; }));
    summaries.push_back(ratio_summary(results, name + ", all steady shapes", "geomean", steady, ratio_of,
                                      [](int64_t) { return true; }));
    summaries.push_back(ratio_summary(results, name + ", all steady shapes", "min", steady, ratio_of,
                                      [](int64_t) { return true; }));
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
    for (const char* kind : {"geomean", "max"}) {
      summaries.push_back(
          ratio_summary(results, path + " / fp8 time, M >= 128", kind, burst, ratio_of, large));
      summaries.push_back(
          ratio_summary(results, path + " / fp8 time, M <= 32", kind, burst, ratio_of, small));
    }
  }
  return summaries;
}

void print_summaries(const std::vector<Summary>& summaries) {
  std::printf("\n");
  for (const Summary& s : summaries) {
    std::printf("%-7s %-52s %6s  (%d shapes)\n", s.kind.c_str(), s.name.c_str(), fixed(s.value, 3).c_str(),
                s.shapes);
  }
}

}  // namespace blockgemm_bench
