// blockgemm-plan-rescore: scores the current heuristics against a stored `blockgemm-plan-sweep` (SWEEP_ALL)
// output, on the CPU. For each shape it asks plan_gemm for a plan, looks up that plan's measured time in the
// sweep and compares it with the fastest plan measured, so a heuristic change can be judged on every shape
// a device session recorded before any device time is spent on it. The grouped sweeps (`--grouped`,
// `--masked`; lines may carry a probe's tag in front) are scored the same way against plan_grouped_contiguous
// and plan_grouped_masked.
//
//   blockgemm-plan-rescore [--sms 132] [--over 1.03] sweep.txt...
//
// Prints the shapes whose plan is more than `--over` times the best (or was not measured), then the
// geometric mean of plan/best and the counts over 3% and 5%. Sweep times run 10-20% hot (bench/NOTES.md),
// so ranks between plans within a few percent are noise; the tool is for finding the large misses.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "heuristics/heuristics.h"

namespace {

namespace heuristics = blockgemm::heuristics;

// What identifies a plan in a sweep line: the tile and the split-K factor (grid and waves follow).
using PlanKey = std::tuple<int, int, int, bool, int>;  // block_m, block_n, multicast, swap_ab, k_splits

bool parse_int_field(const std::string& text, const char* name, int& value) {
  const std::size_t at = text.find(name);
  if (at == std::string::npos) return false;
  value = std::atoi(text.c_str() + at + std::strlen(name));
  return true;
}

bool parse_plan(const std::string& text, PlanKey& key) {
  int block_m = 0, block_n = 0, multicast = 0, k_splits = 0;
  if (!parse_int_field(text, "BLOCK_M=", block_m) || !parse_int_field(text, "BLOCK_N=", block_n) ||
      !parse_int_field(text, "multicast=", multicast) || !parse_int_field(text, "k_splits=", k_splits))
    return false;
  // A cluster that shares the input tile counts its CTAs negative: another tile than the weight-sharing one.
  if (text.find("shares=A") != std::string::npos) multicast = -multicast;
  key = {block_m, block_n, multicast, text.find("swapAB") != std::string::npos, k_splits};
  return true;
}

PlanKey key_of(const heuristics::GemmPlan& plan) {
  return {plan.tile.block_m, plan.tile.block_n,
          plan.tile.multicast_a ? -plan.tile.multicast : plan.tile.multicast, plan.tile.swap_ab,
          plan.k_splits};
}

enum class Kind { kDense, kContiguous, kMasked };

struct ShapeRecord {
  long long m = 0, n = 0, k = 0;
  std::map<PlanKey, double> measured_us;
  Kind kind = Kind::kDense;
  long long groups = 0, rows = 0, m_max = 0;  // grouped: G, rows per group (masked: expected M), M_max
};

// A grouped sweep's header ("grouped contiguous G=.. rows=.. N=.. K=.." or "grouped masked G=..
// expected_m=.. (valid rows .., M_max ..) N=.. K=..") anywhere in the line.
bool parse_grouped_header(const std::string& line, ShapeRecord& shape) {
  long long g = 0, rows = 0, valid = 0, m_max = 0, n = 0, k = 0;
  std::size_t at = line.find("grouped contiguous G=");
  if (at != std::string::npos &&
      std::sscanf(line.c_str() + at, "grouped contiguous G=%lld rows=%lld N=%lld K=%lld", &g, &rows, &n,
                  &k) == 4) {
    shape = ShapeRecord{g * rows, n, k, {}, Kind::kContiguous, g, rows, 0};
    return true;
  }
  at = line.find("grouped masked G=");
  if (at != std::string::npos &&
      std::sscanf(line.c_str() + at,
                  "grouped masked G=%lld expected_m=%lld (valid rows %lld, M_max %lld) N=%lld K=%lld", &g,
                  &rows, &valid, &m_max, &n, &k) == 6) {
    shape = ShapeRecord{g * m_max, n, k, {}, Kind::kMasked, g, rows, m_max};
    return true;
  }
  return false;
}

// A grouped sweep's plan line: "<us> us (first <us>, last <us>) ... model <us>  <plan>", after any tag.
bool parse_grouped_time(const std::string& line, double& us) {
  const std::size_t at = line.find(" us (first ");
  if (at == std::string::npos || line.find("model") == std::string::npos) return false;
  std::size_t start = line.rfind(' ', at - 1);
  start = start == std::string::npos ? 0 : start + 1;
  return std::sscanf(line.c_str() + start, "%lf", &us) == 1;
}

heuristics::GemmPlan plan_for(const ShapeRecord& shape, const heuristics::DeviceModel& device) {
  switch (shape.kind) {
    case Kind::kContiguous:
      return heuristics::plan_grouped_contiguous(shape.m, shape.groups, shape.n, shape.k, false, device);
    case Kind::kMasked:
      return heuristics::plan_grouped_masked(shape.groups, shape.m_max, shape.rows, shape.n, shape.k, false,
                                             device);
    case Kind::kDense:
      break;
  }
  return heuristics::plan_gemm(shape.m, shape.n, shape.k, device);
}

// Shape lines start with "M N K |"; the SWEEP_ALL lines under them with "<us> us  model <us>  <plan>".
std::vector<ShapeRecord> read_sweep(const char* path) {
  std::vector<ShapeRecord> shapes;
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "blockgemm-plan-rescore: cannot read %s\n", path);
    std::exit(2);
  }
  std::string line;
  while (std::getline(in, line)) {
    long long m = 0, n = 0, k = 0;
    char bar = 0;
    double us = 0, model = 0;
    char unit[8] = {0}, word[8] = {0};
    ShapeRecord grouped;
    if (parse_grouped_header(line, grouped)) {
      shapes.push_back(grouped);
    } else if (std::sscanf(line.c_str(), " %lld %lld %lld %c", &m, &n, &k, &bar) == 4 && bar == '|') {
      shapes.push_back({m, n, k, {}});
    } else if (!shapes.empty() && shapes.back().kind != Kind::kDense) {
      PlanKey key;
      if (parse_grouped_time(line, us) && parse_plan(line, key)) shapes.back().measured_us[key] = us;
    } else if (!shapes.empty() &&
               std::sscanf(line.c_str(), " %lf %7s %7s %lf", &us, unit, word, &model) == 4 &&
               std::strcmp(unit, "us") == 0 && std::strcmp(word, "model") == 0) {
      PlanKey key;
      if (parse_plan(line, key)) shapes.back().measured_us[key] = us;
    }
  }
  return shapes;
}

}  // namespace

std::string label(const ShapeRecord& shape) {
  char text[96];
  if (shape.kind == Kind::kContiguous)
    std::snprintf(text, sizeof(text), "contiguous %lldx%lld %lldx%lld", shape.groups, shape.rows, shape.n,
                  shape.k);
  else if (shape.kind == Kind::kMasked)
    std::snprintf(text, sizeof(text), "masked %lldx%lld (M_max %lld) %lldx%lld", shape.groups, shape.rows,
                  shape.m_max, shape.n, shape.k);
  else
    std::snprintf(text, sizeof(text), "%6lld %6lld %6lld", shape.m, shape.n, shape.k);
  return text;
}

int main(int argc, char** argv) {
  heuristics::DeviceModel device;
  double over = 1.03;
  std::vector<const char*> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--sms") == 0 && i + 1 < argc) {
      device.num_sms = std::atoi(argv[++i]);
    } else if (std::strcmp(argv[i], "--over") == 0 && i + 1 < argc) {
      over = std::atof(argv[++i]);
    } else {
      files.push_back(argv[i]);
    }
  }
  if (files.empty()) {
    std::fprintf(stderr, "usage: blockgemm-plan-rescore [--sms N] [--over R] sweep.txt...\n");
    return 2;
  }
  double log_sum = 0;
  int scored = 0, over_3 = 0, over_5 = 0, unmeasured = 0;
  for (const char* file : files) {
    for (const ShapeRecord& shape : read_sweep(file)) {
      if (shape.measured_us.empty()) continue;
      double best_us = 0;
      PlanKey best_key{};
      for (const auto& [key, us] : shape.measured_us)
        if (best_us == 0 || us < best_us) best_us = us, best_key = key;
      const heuristics::GemmPlan plan = plan_for(shape, device);
      const auto found = shape.measured_us.find(key_of(plan));
      if (found == shape.measured_us.end()) {
        ++unmeasured;
        std::printf("%s  not measured: %s\n", label(shape).c_str(), plan.describe().c_str());
        continue;
      }
      const double ratio = found->second / best_us;
      log_sum += std::log(ratio);
      ++scored;
      over_3 += ratio > 1.03;
      over_5 += ratio > 1.05;
      if (ratio > over)
        std::printf(
            "%s  %.3fx best: %8.2f us %s | best %8.2f us BLOCK_M=%d BLOCK_N=%d multicast=%d%s k_splits=%d\n",
            label(shape).c_str(), ratio, found->second, plan.describe().c_str(), best_us,
            std::get<0>(best_key), std::get<1>(best_key), std::get<2>(best_key),
            std::get<3>(best_key) ? " swapAB" : "", std::get<4>(best_key));
    }
  }
  std::printf("%d shapes scored: geomean %.4fx best, %d over 3%%, %d over 5%%; %d plans not in the sweep\n",
              scored, scored ? std::exp(log_sum / scored) : 0.0, over_3, over_5, unmeasured);
  return 0;
}
