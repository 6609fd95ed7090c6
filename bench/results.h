// What blockgemm-bench measured for one GEMM shape: each backend's check and its times under each
// timing protocol, round by round, with the device conditions NVML saw during each.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "device_checks.h"
#include "nvml_monitor.h"
#include "options.h"
#include "suites.h"

namespace blockgemm_bench {

enum class Protocol { kBurst, kSteady };

inline const char* protocol_label(Protocol protocol) {
  return protocol == Protocol::kBurst ? "burst" : "steady";
}

// One round of one protocol for one backend.
struct RoundTiming {
  int round = 0;
  int position = 0;      // the backend's place in this round's order (0 = first)
  double us = kNaN;      // median replay / calls per graph
  int warm_replays = 0;  // steady state: graph replays before the timed ones
  double warm_seconds = 0.0;
  std::vector<double> replay_us;  // the timed replays, in order
  DeviceConditions conditions;    // during the timed replays
};

struct ProtocolTiming {
  bool ran = false;    // the protocol applied to this shape and the backend got to it
  bool timed = false;  // at least one round produced a time
  double us = kNaN;    // the best (min) of the rounds' medians
  int best_round = -1;
  std::vector<RoundTiming> rounds;
  const RoundTiming* best() const {
    return best_round >= 0 ? &rounds[static_cast<std::size_t>(best_round)] : nullptr;
  }
};

struct BackendResult {
  bool timed = false;  // every protocol that ran produced a time
  int calls_per_graph = 0;
  ProtocolTiming burst, steady;
  CheckResult check;
  std::string note;  // why it did not run, or what went wrong
  const ProtocolTiming& timing(Protocol protocol) const {
    return protocol == Protocol::kBurst ? burst : steady;
  }
  ProtocolTiming& timing(Protocol protocol) { return protocol == Protocol::kBurst ? burst : steady; }
  double us(Protocol protocol) const { return timing(protocol).us; }
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

}  // namespace blockgemm_bench
