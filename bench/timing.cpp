#include "timing.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
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

double median(std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const std::size_t count = values.size();
  return count % 2 == 1 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
}

CallGraph::CallGraph(cudaStream_t stream, int num_sets, const EnqueueCall& enqueue,
                     const GraphTimingOptions& options) {
  if (num_sets < 1) throw std::invalid_argument("CallGraph: num_sets must be >= 1");
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
  eager_estimate_us_ = std::max(1e3 * static_cast<double>(elapsed_ms(start, stop)), 1.0);

  const double wanted_calls = std::ceil(options.target_graph_us / eager_estimate_us_);
  const int capped_calls = static_cast<int>(std::min<double>(wanted_calls, options.max_calls_per_graph));
  calls_per_graph_ = std::max(num_sets, std::max(capped_calls, 1));

  BENCH_CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  try {
    for (int call = 0; call < calls_per_graph_; ++call) enqueue(call % num_sets, stream);
  } catch (...) {
    abandon_capture(stream);
    throw;
  }
  BENCH_CHECK_CUDA(cudaStreamEndCapture(stream, &graph_));
  try {
    BENCH_CHECK_CUDA(cudaGraphInstantiate(&exec_, graph_, 0));
    BENCH_CHECK_CUDA(cudaGraphUpload(exec_, stream));
    // One untimed replay: the first launch of an instantiated graph carries setup cost.
    launch(stream);
    BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));
  } catch (...) {
    if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
    cudaGraphDestroy(graph_);
    throw;
  }
}

CallGraph::~CallGraph() {
  if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
  if (graph_ != nullptr) cudaGraphDestroy(graph_);
}

void CallGraph::launch(cudaStream_t stream) const {
  BENCH_CHECK_CUDA(cudaGraphLaunch(exec_, stream));
}

std::vector<double> CallGraph::timed_replays(cudaStream_t stream, int count) const {
  if (count < 1) throw std::invalid_argument("CallGraph::timed_replays: count must be >= 1");
  Event start;
  Event stop;
  std::vector<double> replay_us;
  for (int replay = 0; replay < count; ++replay) {
    BENCH_CHECK_CUDA(cudaEventRecord(start.get(), stream));
    launch(stream);
    BENCH_CHECK_CUDA(cudaEventRecord(stop.get(), stream));
    BENCH_CHECK_CUDA(cudaEventSynchronize(stop.get()));
    replay_us.push_back(1e3 * static_cast<double>(elapsed_ms(start, stop)));
  }
  BENCH_CHECK_CUDA(cudaGetLastError());
  return replay_us;
}

int CallGraph::replay_for(cudaStream_t stream, double seconds) const {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point begin = Clock::now();
  // Each replay is followed by an event; the host waits for replay i - 1 while replay i is queued, so the
  // GPU always has the next graph (~3 ms of work) ready when one ends.
  Event done[2];
  int replays = 0;
  launch(stream);
  BENCH_CHECK_CUDA(cudaEventRecord(done[0].get(), stream));
  ++replays;
  while (true) {
    launch(stream);
    BENCH_CHECK_CUDA(cudaEventRecord(done[replays % 2].get(), stream));
    ++replays;
    BENCH_CHECK_CUDA(cudaEventSynchronize(done[replays % 2].get()));  // the replay before the one just queued
    if (std::chrono::duration<double>(Clock::now() - begin).count() >= seconds) break;
  }
  BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));
  BENCH_CHECK_CUDA(cudaGetLastError());
  return replays;
}

GraphTiming time_with_graph(cudaStream_t stream, int num_sets, const EnqueueCall& enqueue,
                            const GraphTimingOptions& options) {
  if (options.timed_replays < 1) throw std::invalid_argument("time_with_graph: timed_replays must be >= 1");
  const CallGraph graph(stream, num_sets, enqueue, options);
  GraphTiming timing;
  timing.eager_estimate_us = graph.eager_estimate_us();
  timing.calls_per_graph = graph.calls_per_graph();
  timing.replay_us = graph.timed_replays(stream, options.timed_replays);
  timing.us_per_call = median(timing.replay_us) / timing.calls_per_graph;
  return timing;
}

}  // namespace blockgemm_bench
