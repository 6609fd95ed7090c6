#include "quantizer_bench.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>

#include "blockgemm/quantize.h"
#include "blockgemm/reference.h"
#include "host_data.h"
#include "operand_sets.h"
#include "text_format.h"
#include "timing.h"

namespace blockgemm_bench {
namespace {

namespace ref = blockgemm::reference;
using blockgemm::DType;

// The copy that sets the quantizers' bandwidth yardstick: far past L2, long enough (~1 ms) that launch
// and event overheads vanish.
constexpr std::size_t kCopyBytes = std::size_t{1} << 30;

void record(TimedCall& call, const GraphTiming& timing) {
  call.timed = true;
  call.us = timing.us_per_call;
  call.calls_per_graph = timing.calls_per_graph;
  call.replay_us = timing.replay_us;
}

// cudaMemcpyAsync device to device of `bytes_copied` (read once, written once), rotated over `sets` buffer
// pairs and timed like the kernels (graph of ~3 ms of copies, median of 7 replays). With kCopyBytes and one
// pair (1 GiB is 20x the L2) it is the quantizers' bandwidth yardstick; with one quantizer call's bytes and
// its rotation, the yardstick a kernel of that size can be held to: below a few MB neither runs at HBM
// speed (launch, one DRAM round trip and the tail dominate).
CopyResult measure_copy(std::size_t bytes_copied, int sets, cudaStream_t stream) {
  CopyResult result;
  result.bytes = align_up(std::max<std::size_t>(bytes_copied, 1), kDeviceAlignment);
  const std::size_t pair_bytes = 2 * result.bytes;
  try {
    DeviceBuffer storage(pair_bytes * static_cast<std::size_t>(sets));
    BENCH_CHECK_CUDA(
        cudaMemsetAsync(storage.bytes(), 0x3C, pair_bytes * static_cast<std::size_t>(sets), stream));
    record(result.timing, time_with_graph(stream, sets, [&](int set, cudaStream_t s) {
             uint8_t* pair = storage.bytes() + pair_bytes * static_cast<std::size_t>(set);
             BENCH_CHECK_CUDA(
                 cudaMemcpyAsync(pair + result.bytes, pair, result.bytes, cudaMemcpyDeviceToDevice, s));
           }));
  } catch (const FatalDeviceError&) {
    throw;
  } catch (const std::exception& error) {
    result.timing.note = error.what();
    ensure_device_usable();
  }
  return result;
}

QuantizerResult run_quantizer(const QuantizerCase& c, uint64_t seed, cudaStream_t stream, int device) {
  QuantizerResult result;
  result.c = c;
  const int64_t rows = c.rows, cols = c.cols;
  const int64_t kg = ceil_div(cols, kGroup);
  const int64_t scale_rows = c.per_block ? ceil_div(rows, kGroup) : rows;
  // Per-token scales column-major with the ld the GEMM's (and cuBLASLt's) input scale uses: the layout
  // a caller would quantize activations into. Per-block scales row-major, as the weight scales.
  result.scale_ld = c.per_block ? kg : ceil_div(rows, 4) * 4;
  const std::size_t scale_elements =
      static_cast<std::size_t>(c.per_block ? scale_rows * kg : result.scale_ld * kg);
  const auto elements = static_cast<std::size_t>(rows * cols);
  result.traffic_bytes = elements * (sizeof(uint16_t) + 1) + static_cast<std::size_t>(scale_rows * kg) * 4;

  // Host data and the reference, from the same bf16 values.
  const uint64_t data_seed =
      splitmix64(seed ^ splitmix64(static_cast<uint64_t>(rows) * 1000003u +
                                   static_cast<uint64_t>(cols) * 1009u + (c.per_block ? 0xB10Cu : 0x70Cu)));
  const std::vector<float> values = random_bf16_exact(rows, cols, data_seed);
  const std::vector<uint16_t> bits = bf16_bits_of(values);
  const ref::Quantized expected = c.per_block ? ref::per_block_cast_to_fp8(values.data(), rows, cols)
                                              : ref::per_token_cast_to_fp8(values.data(), rows, cols);

  // Rotation sets: input, output and scales each at distinct addresses, set 0 copied into the others.
  const std::size_t x_offset = 0;
  const std::size_t out_offset = align_up(elements * sizeof(uint16_t), kDeviceAlignment);
  const std::size_t scale_offset = out_offset + align_up(elements, kDeviceAlignment);
  const std::size_t stride = scale_offset + align_up(scale_elements * sizeof(float), kDeviceAlignment);
  result.rotation_sets = rotation_set_count(result.traffic_bytes, stride);
  DeviceBuffer storage(stride * static_cast<std::size_t>(result.rotation_sets));
  BENCH_CHECK_CUDA(cudaMemcpy(storage.bytes() + x_offset, bits.data(), elements * sizeof(uint16_t),
                              cudaMemcpyHostToDevice));
  for (int set = 1; set < result.rotation_sets; ++set) {
    BENCH_CHECK_CUDA(cudaMemcpy(storage.bytes() + stride * static_cast<std::size_t>(set) + x_offset,
                                storage.bytes() + x_offset, elements * sizeof(uint16_t),
                                cudaMemcpyDeviceToDevice));
  }
  // As in OperandSets: the copies may still run when cudaMemcpy returns, on a stream ours does not wait on.
  BENCH_CHECK_CUDA(cudaDeviceSynchronize());

  auto base = [&](int set) { return storage.bytes() + stride * static_cast<std::size_t>(set); };
  auto enqueue = [&](int set, cudaStream_t s) {
    uint8_t* b = base(set);
    const blockgemm::TensorView x =
        blockgemm::TensorView::matrix(b + x_offset, DType::kBFloat16, rows, cols, device);
    const blockgemm::TensorView out =
        blockgemm::TensorView::matrix(b + out_offset, DType::kFloat8E4M3, rows, cols, device);
    if (c.per_block) {
      blockgemm::per_block_cast_to_fp8(
          x, out,
          blockgemm::TensorView::strided(b + scale_offset, DType::kFloat32, scale_rows, kg, kg, 1, device),
          s);
    } else {
      blockgemm::per_token_cast_to_fp8(x, out,
                                       blockgemm::TensorView::strided(b + scale_offset, DType::kFloat32, rows,
                                                                      kg, 1, result.scale_ld, device),
                                       s);
    }
  };

  try {
    // Poisoned with 0xFF: a NaN both as fp8 (which the reference never produces: its NaN is 0x7F) and as
    // fp32 scale, so anything the kernel leaves unwritten mismatches.
    BENCH_CHECK_CUDA(cudaMemsetAsync(base(0) + out_offset, 0xFF, elements, stream));
    BENCH_CHECK_CUDA(cudaMemsetAsync(base(0) + scale_offset, 0xFF, scale_elements * sizeof(float), stream));
    enqueue(0, stream);
    BENCH_CHECK_CUDA(cudaGetLastError());
    BENCH_CHECK_CUDA(cudaStreamSynchronize(stream));
    std::vector<uint8_t> got_values(elements);
    std::vector<uint32_t> got_scales(scale_elements);
    BENCH_CHECK_CUDA(cudaMemcpy(got_values.data(), base(0) + out_offset, elements, cudaMemcpyDeviceToHost));
    BENCH_CHECK_CUDA(cudaMemcpy(got_scales.data(), base(0) + scale_offset, scale_elements * sizeof(float),
                                cudaMemcpyDeviceToHost));
    result.check_ran = true;
    for (std::size_t i = 0; i < elements; ++i) {
      result.value_mismatches += got_values[i] != expected.values[i] ? 1 : 0;
    }
    for (int64_t row = 0; row < scale_rows; ++row) {
      for (int64_t col = 0; col < kg; ++col) {
        uint32_t want;
        std::memcpy(&want, &expected.scales[static_cast<std::size_t>(row * kg + col)], sizeof(want));
        const int64_t at = c.per_block ? row * kg + col : col * result.scale_ld + row;
        result.scale_mismatches += got_scales[static_cast<std::size_t>(at)] != want ? 1 : 0;
      }
    }
    record(result.timing, time_with_graph(stream, result.rotation_sets, enqueue));
  } catch (const FatalDeviceError&) {
    throw;
  } catch (const std::exception& error) {
    result.timing.note = error.what();
    ensure_device_usable();
  }
  result.same_bytes_copy = measure_copy(result.traffic_bytes / 2, result.rotation_sets, stream);
  const bool bitwise_equal = result.check_ran && result.value_mismatches == 0 && result.scale_mismatches == 0;
  if (result.timing.note.empty() && !bitwise_equal) {
    result.timing.note = "differs from the reference: " + std::to_string(result.value_mismatches) +
                         " fp8 values, " + std::to_string(result.scale_mismatches) + " scales";
  }
  result.passed = bitwise_equal && result.timing.timed;
  return result;
}

void print_quantizer_row(const QuantizerResult& q, const CopyResult& copy) {
  char shape[48];
  std::snprintf(shape, sizeof(shape), "%" PRId64 " x %" PRId64, q.c.rows, q.c.cols);
  std::printf("%-22s %13s | %9s %7s %8s | %9s %8s | %5d | %s\n", q.kernel(), shape,
              fixed(q.timing.us, 2).c_str(), fixed(q.gbps(), 0).c_str(),
              fixed(percent_of_copy(q, copy), 1).c_str(), fixed(q.same_bytes_copy.timing.us, 2).c_str(),
              fixed(percent_of_copy(q, q.same_bytes_copy), 1).c_str(), q.rotation_sets,
              q.passed ? "bitwise equal" : ("FAIL " + q.timing.note).c_str());
  std::fflush(stdout);
}

}  // namespace

double percent_of_copy(const QuantizerResult& q, const CopyResult& copy) {
  return 100.0 * q.gbps() / copy.gbps();
}

bool QuantizerReport::passed() const {
  if (static_cast<int>(rows.size()) != cases) return false;
  for (const QuantizerResult& q : rows) {
    if (!q.passed) return false;
  }
  return true;
}

void run_quantizers(const Options& options, cudaStream_t stream, int device, QuantizerReport& report) {
  report.ran = true;
  report.cases = static_cast<int>(options.quantizer_cases.size());
  report.copy = measure_copy(kCopyBytes, 1, stream);
  std::printf(
      "\nquantizers (GB/s = (bf16 read + fp8 written + scales) / time; %% of the 1 GiB copy's GB/s; a copy "
      "of\n"
      "the same read + written bytes, its us and the quantizer's %% of its GB/s)\n");
  std::printf("%-22s %13s | %9s %7s %8s | %9s %8s | %5s | %s\n", "kernel", "shape", "us", "GB/s", "% copy",
              "copy us", "% same", "sets", "check");
  char copy_shape[48];
  std::snprintf(copy_shape, sizeof(copy_shape), "%zu MiB", kCopyBytes >> 20);
  std::printf(
      "%-22s %13s | %9s %7s %8s | %9s %8s | %5s | %s\n", "cudaMemcpyAsync d2d", copy_shape,
      fixed(report.copy.timing.us, 2).c_str(), fixed(report.copy.gbps(), 0).c_str(),
      report.copy.timing.timed ? "100.0" : "n/a", "", "", "1",
      report.copy.timing.timed ? "read + written bytes" : ("FAIL " + report.copy.timing.note).c_str());
  std::fflush(stdout);
  for (const QuantizerCase& c : options.quantizer_cases) {
    try {
      report.rows.push_back(run_quantizer(c, options.seed, stream, device));
    } catch (const FatalDeviceError&) {
      throw;
    } catch (const std::exception& error) {
      // Set-up failed (host data, allocation): the row counts as failed, the run goes on.
      QuantizerResult failed;
      failed.c = c;
      failed.timing.note = std::string("set-up failed: ") + error.what();
      report.rows.push_back(failed);
      ensure_device_usable();
    }
    print_quantizer_row(report.rows.back(), report.copy);
  }
  double minimum = std::numeric_limits<double>::infinity();
  double minimum_same = std::numeric_limits<double>::infinity();
  for (const QuantizerResult& q : report.rows) {
    const double percent = percent_of_copy(q, report.copy);
    if (std::isfinite(percent)) minimum = std::min(minimum, percent);
    const double percent_same = percent_of_copy(q, q.same_bytes_copy);
    if (std::isfinite(percent_same)) minimum_same = std::min(minimum_same, percent_same);
  }
  if (std::isfinite(minimum)) report.min_percent_of_copy = minimum;
  if (std::isfinite(minimum_same)) report.min_percent_of_same_bytes_copy = minimum_same;
}

void print_quantizer_summaries(const QuantizerReport& report) {
  // Over the rows that were timed; a row that failed its check is a failure whatever its speed.
  int timed = 0;
  for (const QuantizerResult& q : report.rows) timed += std::isfinite(percent_of_copy(q, report.copy));
  std::printf("\n%-7s %-52s %6s  (%d rows)\n", "min", "quantizer % of copy bandwidth",
              fixed(report.min_percent_of_copy, 1).c_str(), timed);
  std::printf("%-7s %-52s %6s  (%d rows)\n", "min", "quantizer % of a same-bytes copy",
              fixed(report.min_percent_of_same_bytes_copy, 1).c_str(), timed);
}

}  // namespace blockgemm_bench
