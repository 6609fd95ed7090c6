// blockgemm-bench's text report: the live table (one row per shape, both protocols), the bf16-path
// table and the summaries (geomeans of speedups per M regime, per protocol).
#pragma once

#include <string>
#include <vector>

#include "nvml_monitor.h"
#include "options.h"
#include "results.h"

namespace blockgemm_bench {

double tflops(const ShapeResult& r, Protocol protocol);
double gbps(const ShapeResult& r, Protocol protocol);
// baseline time / ours under one protocol; NaN unless both were timed.
double speedup(const BackendResult& baseline, const BackendResult& ours, Protocol protocol);
// Time of a bf16-operand path over the fp8 path's under burst (above 1: the in-call quantization costs
// that much).
double time_ratio(const BackendResult& path, const BackendResult& fp8);

// What the columns mean, then the column header.
void print_table_header(const Options& options, const NvmlMonitor& nvml);
void print_table_row(const ShapeResult& r);
// The bf16 paths side by side with fp8, printed once all shapes ran (the main table is printed live).
void print_paths_table(const std::vector<ShapeResult>& results, const Paths& paths);

struct Summary {
  std::string name;
  std::string kind;  // "geomean", "min" or "max"
  Protocol protocol = Protocol::kBurst;
  double value = kNaN;
  int shapes = 0;
};

std::vector<Summary> summarize(const std::vector<ShapeResult>& results, const Paths& paths);
void print_summaries(const std::vector<Summary>& summaries);

}  // namespace blockgemm_bench
