#include "gemm_runner.h"

#include <algorithm>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blockgemm/blockgemm.h"
#include "operand_sets.h"
#include "protocols.h"
#include "timing.h"

namespace blockgemm_bench {
namespace {

using blockgemm::DType;
using blockgemm::TensorView;

cudaDataType_t out_cuda_type(DType dtype) {
  return dtype == DType::kFloat32 ? CUDA_R_32F : dtype == DType::kFloat16 ? CUDA_R_16F : CUDA_R_16BF;
}

// A backend as the shape sees it before timing: its call, its output in set 0 and the reference that
// output must match.
struct Candidate {
  std::string name;
  BackendResult* result = nullptr;
  EnqueueCall enqueue;
  void* out_set0 = nullptr;
  DType out_dtype = DType::kBFloat16;
  const std::vector<double>* expected = nullptr;
  std::string note_prefix;  // put before an error's text in the table's notes
};

// The sequence every backend goes through before the protocols: poison set 0's output, one eager call,
// the check against the reference, then the graph capture. A backend that throws here gets a note and no
// graph; one whose check fails is still timed (its time is shown, but the shape fails).
void check_and_capture(const Candidate& candidate, const Shape& shape, const std::vector<int64_t>& rows,
                       const OperandSets& sets, cudaStream_t stream, std::vector<TimedBackend>& timed) {
  BackendResult& result = *candidate.result;
  try {
    poison(candidate.out_set0,
           static_cast<std::size_t>(shape.m * shape.n) * blockgemm::dtype_size(candidate.out_dtype), stream);
    candidate.enqueue(0, stream);
    BENCH_CHECK_CUDA(cudaGetLastError());
    result.check =
        check_output(candidate.out_set0, candidate.out_dtype, shape, rows, *candidate.expected, stream);
    auto graph = std::make_unique<CallGraph>(stream, sets.num_sets(), candidate.enqueue);
    result.calls_per_graph = graph->calls_per_graph();
    timed.push_back({candidate.name, std::move(graph), &result});
  } catch (const FatalDeviceError&) {
    throw;
  } catch (const std::exception& error) {
    result.note = candidate.note_prefix + error.what();
    ensure_device_usable();
  }
}

// blockgemm's verdict on one of its paths: the check passed and every protocol timed it.
bool ours_verdict(BackendResult& result) {
  if (result.note.empty() && !result.check.passed(kMaxOursDiff)) {
    result.note = !result.check.all_finite ? "non-finite values in the output" : "diff above 1e-3";
  }
  return result.check.passed(kMaxOursDiff) && result.timed;
}

}  // namespace

ShapeResult run_shape(const Shape& shape, const Options& options, GemmBackends& backends) {
  ShapeResult result;
  result.shape = shape;
  const bool per_row_weight = options.weight_scale == WeightScaleLayout::kPerRow1x128;
  const bool row_major_scales = options.scale_layout == ScaleLayout::kRowMajor;
  try {
    result.plan = blockgemm::describe_plan(shape.m, shape.n, shape.k, options.out_dtype, per_row_weight);
  } catch (const std::exception& error) {
    result.plan = std::string("describe_plan failed: ") + error.what();
  }

  if (!backends.last_weight || backends.last_weight->n != shape.n || backends.last_weight->k != shape.k) {
    backends.last_weight.reset();  // free the old one before building the next
    backends.last_weight = make_host_weight(shape.n, shape.k, options.weight_scale, options.run_baselines,
                                            options.paths.bf16_bf16, options.seed);
  }
  const HostProblem problem = make_host_problem(shape, backends.last_weight, options.run_baselines,
                                                options.paths.any_bf16(), options.seed);
  const OperandSets sets(problem, options);
  result.rotation_sets = sets.num_sets();
  result.rotated_bytes_per_set = sets.rotated_bytes_per_set();
  const std::size_t out_bytes =
      static_cast<std::size_t>(shape.m * shape.n) * blockgemm::dtype_size(options.out_dtype);
  result.traffic_bytes = static_cast<std::size_t>(shape.m * shape.k + shape.n * shape.k) +
                         static_cast<std::size_t>(shape.m + problem.weight->scale_rows) *
                             static_cast<std::size_t>(problem.k_groups) * sizeof(float) +
                         out_bytes;

  const std::vector<int64_t> rows = rows_to_check(shape.m, options.check_rows);
  const std::vector<double> expected =
      reference_rows(problem, problem.weight->quantized, per_row_weight, rows);
  cudaStream_t stream = backends.stream;
  std::vector<TimedBackend> timed;

  // ---- blockgemm through its public API, as a C++ caller (or the Python binding) calls it
  const int dev = backends.device;
  const int64_t kg = problem.k_groups;
  auto input_fp8_view = [&](const SetPointers& p) {
    return TensorView::matrix(p.input_fp8, DType::kFloat8E4M3, shape.m, shape.k, dev);
  };
  auto weight_fp8_view = [&](const SetPointers& p) {
    return TensorView::matrix(p.weight_fp8, DType::kFloat8E4M3, shape.n, shape.k, dev);
  };
  auto input_scale_view = [&](const SetPointers& p) {
    return row_major_scales ? TensorView::matrix(p.input_scale, DType::kFloat32, shape.m, kg, dev)
                            : TensorView::strided(p.input_scale, DType::kFloat32, shape.m, kg, 1,
                                                  lt_input_scale_ld(shape.m), dev);
  };
  auto weight_scale_view = [&](const SetPointers& p) {
    const int64_t scale_rows = problem.weight->scale_rows;
    if (row_major_scales) return TensorView::matrix(p.weight_scale, DType::kFloat32, scale_rows, kg, dev);
    return per_row_weight ? TensorView::strided(p.weight_scale, DType::kFloat32, scale_rows, kg, 1,
                                                problem.weight->scale_ld, dev)
                          : TensorView::strided(p.weight_scale, DType::kFloat32, scale_rows, kg,
                                                problem.weight->scale_ld, 1, dev);
  };
  auto out_view = [&](void* out) {
    return TensorView::matrix(out, options.out_dtype, shape.m, shape.n, dev);
  };
  const SetPointers first = sets.pointers(0);
  // The workspace the header offers fp8 callers (row-major input scales copied M-contiguous before long
  // plans), lent as the Python wrapper lends it; shared by the rotation sets like the bf16 one below.
  std::unique_ptr<DeviceBuffer> fp8_workspace;
  std::optional<blockgemm::Workspace> fp8_workspace_arg;
  if (const std::size_t bytes = blockgemm::fp8_blockscale_gemm_sm90_workspace_bytes(
          input_fp8_view(first), weight_fp8_view(first), input_scale_view(first))) {
    fp8_workspace = std::make_unique<DeviceBuffer>(bytes);
    fp8_workspace_arg = blockgemm::Workspace{fp8_workspace->bytes(), bytes};
  }
  check_and_capture({"blockgemm", &result.ours,
                     [&](int set, cudaStream_t s) {
                       const SetPointers p = sets.pointers(set);
                       blockgemm::fp8_blockscale_gemm_sm90(
                           input_fp8_view(p), weight_fp8_view(p), input_scale_view(p), weight_scale_view(p),
                           out_view(p.out_ours), options.out_dtype, s, fp8_workspace_arg);
                     },
                     first.out_ours, options.out_dtype, &expected, ""},
                    shape, rows, sets, stream, timed);

  // ---- blockgemm with bf16 operands, quantized inside the call
  // One workspace for both paths, allocated here and passed explicitly: the library then never grows
  // its own buffer, which it could not do inside the graph capture. Sharing it across the rotation
  // sets is safe because every call of a graph runs in order on one stream.
  std::unique_ptr<DeviceBuffer> workspace;
  std::optional<blockgemm::Workspace> workspace_arg;
  std::vector<double> expected_bf16_weight;
  auto input_bf16_view = [&](const SetPointers& p) {
    return TensorView::matrix(p.input_bf16_data, DType::kBFloat16, shape.m, shape.k, dev);
  };
  auto weight_bf16_view = [&](const SetPointers& p) {
    return TensorView::matrix(p.weight_bf16_data, DType::kBFloat16, shape.n, shape.k, dev);
  };
  if (options.paths.any_bf16()) {
    try {
      std::size_t bytes = 0;
      if (options.paths.bf16_fp8) {
        bytes = std::max(bytes, blockgemm::fp8_blockscale_gemm_sm90_workspace_bytes(input_bf16_view(first),
                                                                                    weight_fp8_view(first)));
      }
      if (options.paths.bf16_bf16) {
        bytes = std::max(bytes, blockgemm::fp8_blockscale_gemm_sm90_workspace_bytes(input_bf16_view(first),
                                                                                    weight_bf16_view(first)));
      }
      result.workspace_bytes = bytes;
      if (bytes > 0) workspace = std::make_unique<DeviceBuffer>(bytes);
      workspace_arg = blockgemm::Workspace{workspace ? workspace->bytes() : nullptr, bytes};
    } catch (const std::exception& error) {
      const std::string note = std::string("workspace set-up failed: ") + error.what();
      if (options.paths.bf16_fp8) result.bf16_fp8.note = note;
      if (options.paths.bf16_bf16) result.bf16_bf16.note = note;
      ensure_device_usable();
    }
  }
  if (options.paths.bf16_fp8 && workspace_arg) {
    // The input is quantized per token exactly as the fp8 path's input was, so the fp8 reference holds.
    check_and_capture({"blockgemm bf16-fp8", &result.bf16_fp8,
                       [&](int set, cudaStream_t s) {
                         const SetPointers p = sets.pointers(set);
                         blockgemm::fp8_blockscale_gemm_sm90(
                             input_bf16_view(p), weight_fp8_view(p), std::nullopt, weight_scale_view(p),
                             out_view(p.out_bf16_fp8), options.out_dtype, s, workspace_arg);
                       },
                       first.out_bf16_fp8, options.out_dtype, &expected, ""},
                      shape, rows, sets, stream, timed);
  }
  if (options.paths.bf16_bf16 && workspace_arg) {
    // The weight is quantized in 128x128 blocks inside; with 1x128 weight scales the fp8 reference used
    // another quantization, so this path gets its own.
    if (per_row_weight)
      expected_bf16_weight = reference_rows(problem, problem.weight->bf16_data_reference(), false, rows);
    check_and_capture(
        {"blockgemm bf16-bf16", &result.bf16_bf16,
         [&](int set, cudaStream_t s) {
           const SetPointers p = sets.pointers(set);
           blockgemm::fp8_blockscale_gemm_sm90(input_bf16_view(p), weight_bf16_view(p), std::nullopt,
                                               std::nullopt, out_view(p.out_bf16_bf16), options.out_dtype, s,
                                               workspace_arg);
         },
         first.out_bf16_bf16, options.out_dtype, per_row_weight ? &expected_bf16_weight : &expected, ""},
        shape, rows, sets, stream, timed);
  }

  if (options.run_baselines) {
    // ---- cuBLASLt block-scaled fp8, on its own scale layouts
    auto lt_operands = [&](int set) {
      const SetPointers p = sets.pointers(set);
      LtOperands operands;
      operands.input_fp8 = p.input_fp8;
      operands.weight_fp8 = p.weight_fp8;
      operands.input_scale = p.input_scale_lt;
      operands.weight_scale = p.weight_scale_lt;
      operands.out = p.out_lt;
      return operands;
    };
    bool lt_ready = false;
    try {
      LtProblem lt_problem;
      lt_problem.m = shape.m;
      lt_problem.n = shape.n;
      lt_problem.k = shape.k;
      lt_problem.weight_scale_layout = options.weight_scale;
      lt_problem.out_type = out_cuda_type(options.out_dtype);
      std::string why_not;
      lt_ready = backends.lt->prepare(lt_problem, lt_operands(0), &why_not);
      if (lt_ready) {
        result.lt_algorithm = backends.lt->algorithm();
      } else {
        result.lt.note = "n/a: " + why_not;
      }
    } catch (const FatalDeviceError&) {
      throw;
    } catch (const std::exception& error) {
      result.lt.note = std::string("n/a: ") + error.what();
      ensure_device_usable();
    }
    if (lt_ready) {
      check_and_capture({"cuBLASLt block", &result.lt,
                         [&](int set, cudaStream_t s) { backends.lt->enqueue(lt_operands(set), s); },
                         first.out_lt, options.out_dtype, &expected, "n/a: "},
                        shape, rows, sets, stream, timed);
    }

    // ---- cuBLAS bf16 (always bf16 out; the handle is bound to the benchmark's stream)
    check_and_capture({"cuBLAS bf16", &result.bf16,
                       [&](int set, cudaStream_t) {
                         const SetPointers p = sets.pointers(set);
                         backends.bf16->enqueue(p.input_bf16, p.weight_bf16, p.out_bf16, shape.m, shape.n,
                                                shape.k);
                       },
                       first.out_bf16, DType::kBFloat16, &expected, "failed: "},
                      shape, rows, sets, stream, timed);
  }

  run_protocols(timed, shape.m, options.protocol, stream, *backends.nvml);
  timed.clear();  // the graphs go before the operands and the workspace they point into

  result.ours_passed = ours_verdict(result.ours);
  if (options.paths.bf16_fp8) result.bf16_fp8_passed = ours_verdict(result.bf16_fp8);
  if (options.paths.bf16_bf16) result.bf16_bf16_passed = ours_verdict(result.bf16_bf16);
  return result;
}

}  // namespace blockgemm_bench
