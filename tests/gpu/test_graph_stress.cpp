// Stress test of CUDA-graph capture: every public call (the GEMM on each dtype path and tile family, both
// quantizers) captured and replayed from several threads, each on its own non-blocking stream, at the same
// time. Every replay must reproduce, bit for bit, what the same call wrote eagerly before the threads
// started: the kernels are deterministic (split-K sums in rank order), so any difference is a race, a
// missing stream ordering, or shared state in the library that one thread's capture disturbs for another.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "blockgemm/blockgemm.h"
#include "blockgemm/quantize.h"
#include "blockgemm/reference.h"
#include "gpu_test_util.h"

namespace blockgemm::testing {
namespace {

constexpr int kThreads = 4;
constexpr int kReplays = 12;
constexpr uint8_t kPoison = 0xFF;  // NaN in every output format (and in fp32 scales)

DeviceBuffer upload_bf16_random(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  std::vector<uint16_t> bits(static_cast<std::size_t>(rows * cols));
  for (uint16_t& b : bits) b = reference::float_to_bf16(dist(rng));
  DeviceBuffer buffer(bits.size() * 2);
  buffer.upload(bits.data(), bits.size() * 2);
  return buffer;
}

// One public call with read-only inputs shared by all threads; each thread writes its own outputs.
struct Call {
  std::string name;
  // Output buffers of one thread (out, and the scales for a quantizer), their sizes in bytes.
  std::vector<std::size_t> output_bytes;
  std::size_t workspace_bytes = 0;
  // Runs the call on `stream` into `outputs` (one DeviceBuffer per output_bytes entry).
  std::function<void(const std::vector<DeviceBuffer>& outputs, const Workspace& workspace, cudaStream_t)> run;
};

// The inputs every Call closes over; kept alive for the whole test.
struct Inputs {
  std::vector<std::unique_ptr<Problem>> problems;
  std::vector<DeviceBuffer> buffers;
};

// An fp8 x fp8 GEMM of `spec` (the plan follows M: swapAB with split-K for small M, normal tiles above).
Call fp8_call(Inputs& inputs, const ProblemSpec& spec) {
  inputs.problems.push_back(std::make_unique<Problem>());
  Problem& p = *inputs.problems.back();
  make_problem(spec, p);
  Call call;
  call.name = "fp8 " + spec.str();
  call.output_bytes = {p.out_dev.bytes()};
  call.run = [&p](const std::vector<DeviceBuffer>& outputs, const Workspace&, cudaStream_t stream) {
    TensorView out = p.out;
    out.data = outputs[0].get();
    fp8_blockscale_gemm_sm90(p.input, p.weight, p.input_scale, p.weight_scale, out, std::nullopt, stream);
  };
  return call;
}

// A bf16 input times an fp8 (128x128-block) weight, or times a bf16 weight: quantized inside, into the
// thread's workspace (or, for M <= 32, inside the swapAB kernel).
Call bf16_call(Inputs& inputs, int64_t m, int64_t n, int64_t k, bool bf16_weight, uint64_t seed) {
  inputs.buffers.push_back(upload_bf16_random(m, k, seed));
  const TensorView input = TensorView::matrix(inputs.buffers.back().get(), DType::kBFloat16, m, k, 0);
  TensorView weight;
  std::optional<TensorView> weight_scale;
  if (bf16_weight) {
    inputs.buffers.push_back(upload_bf16_random(n, k, seed + 1));
    weight = TensorView::matrix(inputs.buffers.back().get(), DType::kBFloat16, n, k, 0);
  } else {
    inputs.problems.push_back(std::make_unique<Problem>());
    Problem& p = *inputs.problems.back();
    make_problem(ProblemSpec{m, n, k, false, ScaleLayout::kRowMajor, DType::kBFloat16, 0, seed + 1}, p);
    weight = p.weight;
    weight_scale = p.weight_scale;
  }
  Call call;
  call.name = std::string(bf16_weight ? "bf16 x bf16 " : "bf16 x fp8 ") + std::to_string(m) + "x" +
              std::to_string(n) + "x" + std::to_string(k);
  call.output_bytes = {static_cast<std::size_t>(m * n) * 2};
  call.workspace_bytes = fp8_blockscale_gemm_sm90_workspace_bytes(input, weight);
  call.run = [input, weight, weight_scale, m, n](const std::vector<DeviceBuffer>& outputs,
                                                 const Workspace& workspace, cudaStream_t stream) {
    const TensorView out = TensorView::matrix(outputs[0].get(), DType::kBFloat16, m, n, 0);
    fp8_blockscale_gemm_sm90(input, weight, std::nullopt, weight_scale, out, std::nullopt, stream,
                             workspace.bytes ? std::optional<Workspace>(workspace) : std::nullopt);
  };
  return call;
}

// A quantizer: per-token with column-major (padded) scales, as the GEMM's input_scale takes them, or per
// block with row-major scales.
Call quantizer_call(Inputs& inputs, int64_t rows, int64_t cols, bool per_token, uint64_t seed) {
  inputs.buffers.push_back(upload_bf16_random(rows, cols, seed));
  const TensorView x = TensorView::matrix(inputs.buffers.back().get(), DType::kBFloat16, rows, cols, 0);
  const int64_t scale_rows = per_token ? rows : (rows + 127) / 128, scale_cols = (cols + 127) / 128;
  const int64_t padded_rows = (scale_rows + 3) / 4 * 4;
  Call call;
  call.name = std::string(per_token ? "per_token_cast_to_fp8 " : "per_block_cast_to_fp8 ") +
              std::to_string(rows) + "x" + std::to_string(cols);
  call.output_bytes = {
      static_cast<std::size_t>(rows * cols),
      static_cast<std::size_t>(per_token ? scale_cols * padded_rows : scale_rows * scale_cols) * 4};
  call.run = [=](const std::vector<DeviceBuffer>& outputs, const Workspace&, cudaStream_t stream) {
    const TensorView out = TensorView::matrix(outputs[0].get(), DType::kFloat8E4M3, rows, cols, 0);
    if (per_token) {
      const TensorView scales =
          TensorView::strided(outputs[1].get(), DType::kFloat32, scale_rows, scale_cols, 1, padded_rows, 0);
      per_token_cast_to_fp8(x, out, scales, stream);
    } else {
      const TensorView scales =
          TensorView::matrix(outputs[1].get(), DType::kFloat32, scale_rows, scale_cols, 0);
      per_block_cast_to_fp8(x, out, scales, stream);
    }
  };
  return call;
}

std::vector<DeviceBuffer> make_outputs(const Call& call) {
  std::vector<DeviceBuffer> outputs;
  for (std::size_t bytes : call.output_bytes) outputs.emplace_back(bytes);
  return outputs;
}

std::vector<uint8_t> download_all(const std::vector<DeviceBuffer>& outputs) {
  std::vector<uint8_t> bytes;
  for (const DeviceBuffer& b : outputs) {
    const std::size_t offset = bytes.size();
    bytes.resize(offset + b.bytes());
    b.download(bytes.data() + offset, b.bytes());
  }
  return bytes;
}

// Counts bytes still holding the poison pattern in whole 4-byte words: an output nobody wrote.
std::size_t poisoned_words(const std::vector<uint8_t>& bytes) {
  std::size_t count = 0;
  for (std::size_t i = 0; i + 4 <= bytes.size(); i += 4)
    if (bytes[i] == kPoison && bytes[i + 1] == kPoison && bytes[i + 2] == kPoison && bytes[i + 3] == kPoison)
      ++count;
  return count;
}

TEST(GraphStress, ConcurrentCapturesAndReplaysOfEveryCallReproduceEagerBits) {
  BLOCKGEMM_REQUIRE_HOPPER();
  Inputs inputs;
  std::vector<Call> calls;
  // Normal tiles (one and two waves), swapAB with split-K, per-row weight scales, column-major input scales.
  calls.push_back(
      fp8_call(inputs, {300, 1536, 1024, false, ScaleLayout::kRowMajor, DType::kBFloat16, 0, 71}));
  calls.push_back(
      fp8_call(inputs, {1100, 1024, 512, true, ScaleLayout::kColumnMajor, DType::kBFloat16, 0, 72}));
  calls.push_back(fp8_call(inputs, {8, 2112, 7168, false, ScaleLayout::kRowMajor, DType::kBFloat16, 0, 73}));
  calls.push_back(fp8_call(inputs, {40, 576, 2048, true, ScaleLayout::kRowMajor, DType::kFloat32, 0, 74}));
  // BF16 input: quantized in the swapAB kernel (M <= 32) and by the quantizer into the workspace.
  calls.push_back(bf16_call(inputs, 16, 1024, 2048, false, 75));
  calls.push_back(bf16_call(inputs, 200, 768, 1024, false, 76));
  calls.push_back(bf16_call(inputs, 96, 512, 1024, true, 77));
  calls.push_back(quantizer_call(inputs, 300, 7168, true, 78));
  calls.push_back(quantizer_call(inputs, 333, 1024, false, 79));

  // The eager result of every call on the legacy stream, before any thread starts. It must be fully written.
  std::vector<std::vector<uint8_t>> expected;
  for (const Call& call : calls) {
    std::vector<DeviceBuffer> outputs = make_outputs(call);
    for (const DeviceBuffer& b : outputs) check_cuda(cudaMemset(b.get(), kPoison, b.bytes()), "poison");
    DeviceBuffer workspace(std::max<std::size_t>(call.workspace_bytes, 256));
    call.run(outputs, Workspace{workspace.get(), call.workspace_bytes}, nullptr);
    check_cuda(cudaDeviceSynchronize(), call.name.c_str());
    expected.push_back(download_all(outputs));
    // Padding of the column-major scales stays poisoned; everything else is written.
    EXPECT_LT(poisoned_words(expected.back()), expected.back().size() / 64) << call.name;
  }

  // Each thread: its own outputs, workspaces and stream. Phase 1: all threads capture at once in global
  // mode, where any thread's capture-unsafe CUDA call (an allocation, a synchronisation, a legacy-stream
  // copy) fails the captures, so the library must make none. Phase 2: all threads replay at once, and halfway
  // each captures its calls again (thread-local mode) while the others replay and read back.
  std::mutex mutex;
  std::condition_variable changed;
  int arrived = 0;
  bool aborted = false;
  auto barrier = [&](int generation) {
    std::unique_lock<std::mutex> lock(mutex);
    ++arrived;
    changed.notify_all();
    changed.wait(lock, [&] { return aborted || arrived >= generation * kThreads; });
  };
  std::vector<std::string> failures(kThreads);
  // Begin, enqueue every call, end: between BeginCapture and EndCapture a thread makes no CUDA call but the
  // library's, so a failed capture is the library's doing. Instantiation (which may allocate) comes after.
  auto capture = [&](int thread, cudaStream_t stream, cudaStreamCaptureMode mode,
                     std::vector<std::vector<DeviceBuffer>>& outputs, std::vector<DeviceBuffer>& workspaces) {
    cudaGraph_t graph = nullptr;
    check_cuda(cudaStreamBeginCapture(stream, mode), "begin capture");
    // A different order of the calls in each thread.
    for (std::size_t i = 0; i < calls.size(); ++i) {
      const std::size_t c = (i + static_cast<std::size_t>(thread) * 3) % calls.size();
      calls[c].run(outputs[c], Workspace{workspaces[c].get(), calls[c].workspace_bytes}, stream);
    }
    check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
    return graph;
  };
  auto instantiate = [](cudaGraph_t graph) {
    cudaGraphExec_t exec = nullptr;
    check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
    cudaGraphDestroy(graph);
    return exec;
  };
  // A thread that fails inside a capture must end it: an open global-mode capture would fail every later
  // CUDA call of this process (the tests after this one too).
  auto end_open_capture = [](cudaStream_t stream) {
    cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
    if (stream != nullptr && cudaStreamIsCapturing(stream, &status) == cudaSuccess &&
        status != cudaStreamCaptureStatusNone) {
      cudaGraph_t graph = nullptr;
      cudaStreamEndCapture(stream, &graph);
      if (graph != nullptr) cudaGraphDestroy(graph);
    }
    cudaGetLastError();
  };
  auto worker = [&](int thread) {
    std::string& failure = failures[thread];
    int generation = 0;
    cudaStream_t stream = nullptr;
    try {
      check_cuda(cudaSetDevice(0), "cudaSetDevice");
      std::vector<std::vector<DeviceBuffer>> outputs;
      std::vector<DeviceBuffer> workspaces;
      for (const Call& call : calls) {
        outputs.push_back(make_outputs(call));
        workspaces.emplace_back(std::max<std::size_t>(call.workspace_bytes, 256));
      }
      check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
      barrier(++generation);
      cudaGraph_t graph = capture(thread, stream, cudaStreamCaptureModeGlobal, outputs, workspaces);
      barrier(++generation);  // every capture has ended before anyone instantiates
      cudaGraphExec_t exec = instantiate(graph);
      for (int replay = 0; replay < kReplays && failure.empty(); ++replay) {
        if (replay == kReplays / 2) {
          cudaGraphExecDestroy(exec);
          exec = instantiate(capture(thread, stream, cudaStreamCaptureModeThreadLocal, outputs, workspaces));
        }
        for (auto& call_outputs : outputs)
          for (DeviceBuffer& b : call_outputs)
            check_cuda(cudaMemsetAsync(b.get(), kPoison, b.bytes(), stream), "poison");
        check_cuda(cudaGraphLaunch(exec, stream), "replay");
        check_cuda(cudaStreamSynchronize(stream), "replay sync");
        for (std::size_t c = 0; c < calls.size(); ++c) {
          const std::vector<uint8_t> got = download_all(outputs[c]);
          if (got != expected[c]) {
            std::size_t first = 0;
            while (first < got.size() && got[first] == expected[c][first]) ++first;
            failure = "thread " + std::to_string(thread) + " replay " + std::to_string(replay) + ": " +
                      calls[c].name + " differs from the eager result from byte " + std::to_string(first) +
                      " of " + std::to_string(got.size());
            break;
          }
        }
      }
      cudaGraphExecDestroy(exec);
      cudaStreamDestroy(stream);
    } catch (const std::exception& e) {
      end_open_capture(stream);
      failure = "thread " + std::to_string(thread) + ": " + e.what();
      std::lock_guard<std::mutex> lock(mutex);
      aborted = true;  // never leave the others waiting at a barrier for this thread
      changed.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (std::thread& t : threads) t.join();
  for (const std::string& f : failures) EXPECT_TRUE(f.empty()) << f;
}

}  // namespace
}  // namespace blockgemm::testing
