// CUDA-graph timing for blockgemm-bench and blockgemm-plan-sweep.
//
// Each measurement captures many calls into one graph so that host launch gaps, which dominate
// small-M problems when launched eagerly, do not enter the figure; calls rotate over independent
// operand sets so that the 50 MB L2 never holds the operands (model layers never find their
// weights in L2 either). CallGraph is the captured graph; the timing protocols (bench/protocols.h)
// decide when and after what it is replayed; time_with_graph is the one-shot burst measurement.
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

// The median of `values` (the mean of the middle two for an even count); NaN when empty.
double median(std::vector<double> values);

// A graph of one backend's calls at one shape, captured once and replayed as often as a protocol wants.
class CallGraph {
 public:
  // Runs one eager call to warm up, one timed eager call to size the graph, captures
  // n = max(num_sets, min(max_calls, target / estimate)) calls rotating over the sets, instantiates and
  // uploads it, and replays it once untimed (the first launch of an instantiated graph carries setup cost).
  CallGraph(cudaStream_t stream, int num_sets, const EnqueueCall& enqueue,
            const GraphTimingOptions& options = GraphTimingOptions());
  ~CallGraph();
  CallGraph(const CallGraph&) = delete;
  CallGraph& operator=(const CallGraph&) = delete;

  int calls_per_graph() const { return calls_per_graph_; }
  double eager_estimate_us() const { return eager_estimate_us_; }

  // Enqueues one replay on `stream`.
  void launch(cudaStream_t stream) const;
  // `count` replays, each between two events and waited for before the next: the microseconds of each.
  std::vector<double> timed_replays(cudaStream_t stream, int count) const;
  // Replays back to back, two in flight so the GPU never waits on the host, until at least `seconds` of
  // wall time have passed, then drains the stream. Returns the number of replays.
  int replay_for(cudaStream_t stream, double seconds) const;

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
  int calls_per_graph_ = 0;
  double eager_estimate_us_ = 0.0;
};

// Captures a CallGraph and times options.timed_replays replays of it right away (the burst
// protocol with one round): us_per_call is the median replay over calls_per_graph.
GraphTiming time_with_graph(cudaStream_t stream, int num_sets, const EnqueueCall& enqueue,
                            const GraphTimingOptions& options = GraphTimingOptions());

}  // namespace blockgemm_bench
