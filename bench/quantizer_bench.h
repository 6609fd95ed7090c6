// --quantizers: per_token_cast_to_fp8 and per_block_cast_to_fp8 checked bitwise against the CPU reference
// and timed against the device's copy bandwidth.
//
// The quantizers are memory-bound: their yardstick is what the device moves in a plain copy, measured in
// the same run (so card and clocks are the same), and the figure is the share of it they reach. They are
// timed with the burst protocol only (one graph, median of 7 replays).
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "device_checks.h"
#include "options.h"

namespace blockgemm_bench {

// A one-shot graph timing (timing.h) and what went wrong, if anything.
struct TimedCall {
  bool timed = false;
  double us = kNaN;
  int calls_per_graph = 0;
  std::vector<double> replay_us;
  std::string note;
};

struct CopyResult {
  std::size_t bytes = 0;  // copied; read + written = 2 * bytes
  TimedCall timing;
  double gbps() const {
    return timing.timed ? 2.0 * static_cast<double>(bytes) / (timing.us * 1e-6) / 1e9 : kNaN;
  }
};

struct QuantizerResult {
  QuantizerCase c;
  int64_t scale_ld = 0;  // per-token: column stride of the column-major scales; per-block: row stride
  std::size_t traffic_bytes = 0;  // bf16 read + fp8 written + scales written
  int rotation_sets = 0;
  TimedCall timing;
  CopyResult same_bytes_copy;  // a copy of the same read + written bytes, timed right after
  bool check_ran = false;
  int64_t value_mismatches = 0, scale_mismatches = 0;
  bool passed = false;
  const char* kernel() const { return c.per_block ? "per_block_cast_to_fp8" : "per_token_cast_to_fp8"; }
  double gbps() const {
    return timing.timed ? static_cast<double>(traffic_bytes) / (timing.us * 1e-6) / 1e9 : kNaN;
  }
};

double percent_of_copy(const QuantizerResult& q, const CopyResult& copy);

struct QuantizerReport {
  bool ran = false;
  CopyResult copy;
  std::vector<QuantizerResult> rows;
  double min_percent_of_copy = kNaN;
  double min_percent_of_same_bytes_copy = kNaN;
  int cases = 0;
  bool passed() const;
};

// Runs every case of options.quantizer_cases and prints its row as it goes. Throws FatalDeviceError when
// the context dies; every other failure is recorded in its row.
void run_quantizers(const Options& options, cudaStream_t stream, int device, QuantizerReport& report);

// The two closing summary lines.
void print_quantizer_summaries(const QuantizerReport& report);

}  // namespace blockgemm_bench
