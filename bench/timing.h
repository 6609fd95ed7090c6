// CUDA-graph timing for blockgemm-bench.
//
// Each measurement captures many calls into one graph so that host launch gaps, which dominate
// small-M problems when launched eagerly, do not enter the figure; calls rotate over independent
// operand sets so that the 50 MB L2 never holds the operands (model layers never find their
// weights in L2 either).
#pragma once

#include <cuda_runtime_api.h>

#include <functional>
#include <vector>

namespace blockgemm_bench {

// Throws std::runtime_error naming the failed call and CUDA's description of the error.
void check_cuda(cudaError_t status, const char* call);
#define BENCH_CHECK_CUDA(call) ::blockgemm_bench::check_cuda((call), #call)

struct GraphTimingOptions {
  double target_graph_us = 3000.0;  // about this much GPU work per graph
  int max_calls_per_graph = 2000;   // unless the rotation itself needs more
  int timed_replays = 7;
};

struct GraphTiming {
  double us_per_call = 0.0;        // median replay time / calls_per_graph
  double eager_estimate_us = 0.0;  // the single eager call that sized the graph (includes launch cost)
  int calls_per_graph = 0;
  std::vector<double> replay_us;  // every timed replay, in order
};

// Enqueues call number `call_index` on `stream`, using operand set `call_index % num_sets`.
// Must not allocate or synchronise: it runs inside stream capture. May throw; the capture is
// then closed and the exception passed on.
using EnqueueCall = std::function<void(int set_index, cudaStream_t stream)>;

// Runs one eager call to warm up, one timed eager call to size the graph, captures
// n = max(num_sets, min(max_calls, target / estimate)) calls rotating over the sets, replays the
// graph once to warm up and then `timed_replays` times, each between two events on `stream`.
GraphTiming time_with_graph(cudaStream_t stream, int num_sets, const EnqueueCall& enqueue,
                            const GraphTimingOptions& options = GraphTimingOptions());

}  // namespace blockgemm_bench
