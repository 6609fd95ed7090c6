#include "timing.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace blockgemm_bench {

void check_cuda(cudaError_t status, const char* call) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorName(status) + " (" +
                             cudaGetErrorString(status) + ")");
  }
}

namespace {

class Event {
 public:
  Event() { BENCH_CHECK_CUDA(cudaEventCreate(&event_)); }
  ~Event() { cudaEventDestroy(event_); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

class Graph {
 public:
  Graph() = default;
  ~Graph() { reset(); }
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;
  void reset() {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    if (graph_ != nullptr) cudaGraphDestroy(graph_);
    exec_ = nullptr;
    graph_ = nullptr;
  }
  cudaGraph_t* graph_slot() { return &graph_; }
  cudaGraph_t graph() const { return graph_; }
  cudaGraphExec_t* exec_slot() { return &exec_; }
  cudaGraphExec_t exec() const { return exec_; }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

float elapsed_ms(const Event& start, const Event& stop) {
  float ms = 0.f;
  BENCH_CHECK_CUDA(cudaEventElapsedTime(&ms, start.get(), stop.get()));
  return ms;
}

// Closes a capture that an exception interrupted, so the stream is usable again; the partial
// graph is discarded. Errors here are secondary to the one being propagated.
void abandon_capture(cudaStream_t stream) {
  cudaStreamCaptureStatus capture_status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture_status) == cudaSuccess &&
      capture_status != cudaStreamCaptureStatusNone) {
    cudaGraph_t partial = nullptr;
    cudaStreamEndCapture(stream, &partial);
    if (partial != nullptr) cudaGraphDestroy(partial);
  }
  cudaGetLastError();
}

}  // namespace

GraphTiming time_with_graph(cudaStream_t stream, int num_sets, const EnqueueCall& enqueue,
                            const GraphTimingOptions& options) {
  if (num_sets < 1) throw std::invalid_argument("time_with_graph: num_sets must be >= 1");
  if (options.timed_replays < 1) throw std::invalid_argument("time_with_graph: timed_replays must be >= 1");
  GraphTiming timing;
  Event start;
  Event stop;

  // The first call may pay for lazy module loading or library initialisation: keep it out of the
  // estimate.
  enqueue(0, stream);
  BENCH_CHECK_CUDA(cudaGetLastError());
  BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));

  BENCH_CHECK_CUDA(cudaEventRecord(start.get(), stream));
  enqueue(1 % num_sets, stream);
  BENCH_CHECK_CUDA(cudaEventRecord(stop.get(), stream));
  BENCH_CHECK_CUDA(cudaGetLastError());
  BENCH_CHECK_CUDA(cudaEventSynchronize(stop.get()));
  timing.eager_estimate_us = std::max(1e3 * static_cast<double>(elapsed_ms(start, stop)), 1.0);

  const double wanted_calls = std::ceil(options.target_graph_us / timing.eager_estimate_us);
  const int capped_calls = static_cast<int>(std::min<double>(wanted_calls, options.max_calls_per_graph));
  timing.calls_per_graph = std::max(num_sets, std::max(capped_calls, 1));

  Graph graph;
  BENCH_CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    for (int call = 0; call < timing.calls_per_graph; ++call) enqueue(call % num_sets, stream);
  } catch (...) {
    abandon_capture(stream);
    throw;
  }
  BENCH_CHECK_CUDA(cudaStreamEndCapture(stream, graph.graph_slot()));
  BENCH_CHECK_CUDA(cudaGraphInstantiate(graph.exec_slot(), graph.graph(), 0));
  BENCH_CHECK_CUDA(cudaGraphUpload(graph.exec(), stream));

  // One untimed replay: the first launch of an instantiated graph carries setup cost.
  BENCH_CHECK_CUDA(cudaGraphLaunch(graph.exec(), stream));
  BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));

  for (int replay = 0; replay < options.timed_replays; ++replay) {
    BENCH_CHECK_CUDA(cudaEventRecord(start.get(), stream));
    BENCH_CHECK_CUDA(cudaGraphLaunch(graph.exec(), stream));
    BENCH_CHECK_CUDA(cudaEventRecord(stop.get(), stream));
    BENCH_CHECK_CUDA(cudaEventSynchronize(stop.get()));
    timing.replay_us.push_back(1e3 * static_cast<double>(elapsed_ms(start, stop)));
  }
  BENCH_CHECK_CUDA(cudaGetLastError());

  std::vector<double> sorted = timing.replay_us;
  std::sort(sorted.begin(), sorted.end());
  const size_t count = sorted.size();
  const double median =
      count % 2 == 1 ? sorted[count / 2] : 0.5 * (sorted[count / 2 - 1] + sorted[count / 2]);
  timing.us_per_call = median / timing.calls_per_graph;
  return timing;
}

}  // namespace blockgemm_bench
