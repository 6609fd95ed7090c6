#include "protocols.h"

#include <chrono>
#include <cmath>
#include <exception>

#include "device_checks.h"

namespace blockgemm_bench {
namespace {

// One timed pass of `backend` under `protocol`; throws on a device error.
RoundTiming time_round(const TimedBackend& backend, Protocol protocol, const ProtocolOptions& options,
                       cudaStream_t stream, const NvmlMonitor& nvml) {
  RoundTiming timing;
  if (protocol == Protocol::kSteady) {
    const auto begin = std::chrono::steady_clock::now();
    timing.warm_replays = backend.graph->replay_for(stream, options.warm_seconds);
    timing.warm_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  } else {
    // As the one-shot measurement did: a replay right before the timed ones, so that none of them pays for
    // the graph's first launch or for a cold instruction cache.
    backend.graph->launch(stream);
    BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));
  }
  timing.conditions = nvml.sample_during(
      [&] { timing.replay_us = backend.graph->timed_replays(stream, options.timed_replays); });
  timing.us = median(timing.replay_us) / backend.graph->calls_per_graph();
  return timing;
}

void run_protocol(std::vector<TimedBackend>& backends, Protocol protocol, const ProtocolOptions& options,
                  cudaStream_t stream, const NvmlMonitor& nvml) {
  for (TimedBackend& backend : backends) {
    if (backend.graph) backend.result->timing(protocol).ran = true;
  }
  for (int round = 0; round < options.rounds; ++round) {
    const std::vector<int> order = round_order(static_cast<int>(backends.size()), round);
    for (std::size_t position = 0; position < order.size(); ++position) {
      TimedBackend& backend = backends[static_cast<std::size_t>(order[position])];
      if (!backend.graph) continue;  // failed before: no more device time for it
      ProtocolTiming& timing = backend.result->timing(protocol);
      try {
        RoundTiming pass = time_round(backend, protocol, options, stream, nvml);
        pass.round = round;
        pass.position = static_cast<int>(position);
        timing.rounds.push_back(pass);
        if (std::isfinite(pass.us) && (!timing.timed || pass.us < timing.us)) {
          timing.timed = true;
          timing.us = pass.us;
          timing.best_round = static_cast<int>(timing.rounds.size()) - 1;
        }
      } catch (const FatalDeviceError&) {
        throw;
      } catch (const std::exception& error) {
        std::string& note = backend.result->note;
        note += (note.empty() ? "" : "; ") + std::string(protocol_label(protocol)) +
                " timing failed: " + error.what();
        backend.graph.reset();
        ensure_device_usable();
      }
    }
  }
}

}  // namespace

std::vector<int> round_order(int count, int round) {
  std::vector<int> order;
  for (int i = 0; i < count; ++i) order.push_back(round % 2 == 0 ? i : count - 1 - i);
  return order;
}

void run_protocols(std::vector<TimedBackend>& backends, int64_t m, const ProtocolOptions& options,
                   cudaStream_t stream, const NvmlMonitor& nvml) {
  if (options.burst) run_protocol(backends, Protocol::kBurst, options, stream, nvml);
  if (options.steady_applies(m)) run_protocol(backends, Protocol::kSteady, options, stream, nvml);
  for (TimedBackend& backend : backends) {
    BackendResult& result = *backend.result;
    const bool burst_ok = !result.burst.ran || result.burst.timed;
    const bool steady_ok = !result.steady.ran || result.steady.timed;
    result.timed = (result.burst.timed || result.steady.timed) && burst_ok && steady_ok;
  }
}

}  // namespace blockgemm_bench
