// blockgemm-bench's JSON record (--json): the device and versions, the options, every shape's backends
// with each protocol's rounds and the NVML readings beside each timing, the summaries and the quantizers.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "options.h"
#include "quantizer_bench.h"
#include "report.h"
#include "results.h"

namespace blockgemm_bench {

struct RunInfo {
  std::string device_name;
  int sm_count = 0;
  int compute_major = 0, compute_minor = 0;
  int l2_bytes = 0;
  int driver_version = 0;
  int runtime_version = 0;
  std::size_t cublaslt_version = 0;
  std::string nvml_status;
  std::string date_utc;
};

// Throws std::runtime_error when the file cannot be written.
void write_json(const std::string& path, const RunInfo& info, const Options& options,
                const std::vector<ShapeResult>& results, const std::vector<Summary>& summaries,
                const QuantizerReport& quantizers, bool all_passed);

}  // namespace blockgemm_bench
