// The timing protocols of blockgemm-bench, both replaying each backend's captured CallGraph (calls
// rotating over operand sets past L2) and taking the median of ProtocolOptions::timed_replays replays:
//
//   burst   right after set-up, one untimed replay, then the timed ones: ~20 ms of work that times
//           whatever clock the previous seconds left the card at (the anchors' method);
//   steady  the backend's graph replayed for --warm-seconds at its shape first, then the timed replays:
//           what a prefill server sees once the card has reached its power cap (M >= --steady-min-m).
//
// Each protocol makes ProtocolOptions::rounds passes over the backends, in reverse order on odd passes,
// so that no backend always follows the same one; a backend's figure is the best (min) of its rounds'
// medians. All burst rounds run before any steady one, so burst numbers start from the set-up's idle.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nvml_monitor.h"
#include "options.h"
#include "results.h"
#include "timing.h"

namespace blockgemm_bench {

// One backend to be timed at the current shape: its graph and where its times go.
struct TimedBackend {
  std::string name;
  std::unique_ptr<CallGraph> graph;
  BackendResult* result = nullptr;
};

// The order of round `round` over `count` backends: 0..count-1, reversed on odd rounds.
std::vector<int> round_order(int count, int round);

// Runs the protocols that apply to a shape with `m` rows. A backend whose replays fail gets a note and
// is not timed again; FatalDeviceError (the context is lost) propagates.
void run_protocols(std::vector<TimedBackend>& backends, int64_t m, const ProtocolOptions& options,
                   cudaStream_t stream, const NvmlMonitor& nvml);

}  // namespace blockgemm_bench
