// nanobind module `blockgemm._blockgemm_ext`: the C++ API over plain Python descriptors (descriptors.h says
// what they are and why). The grouped GEMM's functions are in bindings_grouped.cpp.
#include <cuda_runtime_api.h>
#include <nanobind/nanobind.h>
#include <nanobind/stl/string.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>

#include "blockgemm/blockgemm.h"
#include "blockgemm/quantize.h"
#include "blockgemm/tensor.h"
#include "descriptors.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using blockgemm::Error;
using blockgemm::TensorView;
using blockgemm::python::DeviceGuard;
using blockgemm::python::to_stream;

constexpr const char* kGemm = "fp8_blockscale_gemm_sm90";
// The GEMM's operands: FlashInfer's wording ("FP8 ... or BF16"), which its callers match on.
constexpr const char* kOperandDtype = "FP8 (float8_e4m3fn) or BF16 (bfloat16)";

// The Python class of the library's argument errors (Error::Kind::kInvalidArgument), created with the
// module: a ValueError, as FlashInfer raises for every documented argument error, and a RuntimeError too,
// so that code which caught an unsupported (non-Hopper) GPU as a device failure still catches it.
PyObject* argument_error_type = nullptr;

// TensorView holds matrices for the dense call; a batch dimension must be folded by the caller.
TensorView parse_matrix(const char* function, const char* argument, nb::handle desc,
                        const char* expected_dtype = blockgemm::python::kAnyDtype) {
  return blockgemm::python::parse_view(function, argument, desc, 2, "a 2-D tensor", expected_dtype);
}

std::optional<TensorView> parse_optional_matrix(const char* function, const char* argument, nb::handle desc) {
  if (desc.is_none()) return std::nullopt;
  return parse_matrix(function, argument, desc);
}

void gemm(nb::handle input, nb::handle weight, nb::handle input_scale, nb::handle weight_scale,
          nb::handle out, std::uintptr_t stream, std::uintptr_t workspace_ptr, std::size_t workspace_bytes) {
  const TensorView a = parse_matrix(kGemm, "input", input, kOperandDtype);
  const TensorView b = parse_matrix(kGemm, "weight", weight, kOperandDtype);
  const std::optional<TensorView> sa = parse_optional_matrix(kGemm, "input_scale", input_scale);
  const std::optional<TensorView> sb = parse_optional_matrix(kGemm, "weight_scale", weight_scale);
  const TensorView c = parse_matrix(kGemm, "out", out);
  // Without a workspace the library falls back to its own per-device buffer, which cannot grow during
  // graph capture; the Python wrapper always lends one from torch's allocator for bf16 operands, and for
  // fp8 ones where the input scales are worth copying M-contiguous first.
  std::optional<blockgemm::Workspace> workspace;
  if (workspace_bytes > 0)
    workspace = blockgemm::Workspace{reinterpret_cast<void*>(workspace_ptr), workspace_bytes};

  // Validation and launch touch no Python state; other threads may run while the host-side work proceeds.
  nb::gil_scoped_release release;
  DeviceGuard guard(a.device);
  blockgemm::fp8_blockscale_gemm_sm90(a, b, sa, sb, c, std::nullopt, to_stream(stream), workspace);
}

std::size_t workspace_bytes(nb::handle input, nb::handle weight, nb::handle input_scale) {
  return blockgemm::fp8_blockscale_gemm_sm90_workspace_bytes(
      parse_matrix(kGemm, "input", input, kOperandDtype),
      parse_matrix(kGemm, "weight", weight, kOperandDtype),
      parse_optional_matrix(kGemm, "input_scale", input_scale));
}

template <void (*Cast)(const TensorView&, const TensorView&, const TensorView&, cudaStream_t)>
void cast(const char* function, nb::handle x, nb::handle out, nb::handle scales, std::uintptr_t stream) {
  const TensorView vx = parse_matrix(function, "x", x);
  const TensorView vout = parse_matrix(function, "out", out);
  const TensorView vscales = parse_matrix(function, "scales", scales);
  nb::gil_scoped_release release;
  DeviceGuard guard(vx.device);
  Cast(vx, vout, vscales, to_stream(stream));
}

void translate_error(const std::exception_ptr& error, void* /*payload*/) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    // Bad arguments are the caller's to fix (BlockgemmArgumentError, a ValueError); a missing kernel is a
    // limitation (NotImplementedError); anything the CUDA runtime reports stays a RuntimeError, as in torch.
    PyObject* type = PyExc_RuntimeError;
    switch (e.kind()) {
      case Error::Kind::kInvalidArgument:
        type = argument_error_type != nullptr ? argument_error_type : PyExc_ValueError;
        break;
      case Error::Kind::kNotImplemented:
        type = PyExc_NotImplementedError;
        break;
      case Error::Kind::kDevice:
        type = PyExc_RuntimeError;
        break;
    }
    PyErr_SetString(type, e.what());
  }
  // Any other exception propagates out of this translator to nanobind's default ones.
}

}  // namespace

NB_MODULE(_blockgemm_ext, m) {
  m.doc() = "blockgemm C++ bindings over (data_ptr, dtype, shape, strides, device) descriptors";
  // A new reference kept for the life of the process, like the built-in exception types it derives from.
  argument_error_type = PyErr_NewExceptionWithDoc(
      "blockgemm._blockgemm_ext.BlockgemmArgumentError",
      "An invalid argument: a ValueError (FlashInfer's class for the same errors) and a RuntimeError.",
      nb::make_tuple(nb::handle(PyExc_ValueError), nb::handle(PyExc_RuntimeError)).ptr(), nullptr);
  if (argument_error_type == nullptr) throw nb::python_error();
  m.attr("BlockgemmArgumentError") = nb::handle(argument_error_type);
  nb::register_exception_translator(&translate_error);

  m.def("gemm", &gemm, "input"_a, "weight"_a, "input_scale"_a.none(), "weight_scale"_a.none(), "out"_a,
        "stream"_a, "workspace_ptr"_a, "workspace_bytes"_a,
        "out = input . weight^T on `stream` (cudaStream_t as int); the scales may be None. Asynchronous.");
  m.def(
      "describe_plan",
      [](int64_t m, int64_t n, int64_t k, bool per_row_weight_scale) {
        return blockgemm::describe_plan(m, n, k, blockgemm::DType::kBFloat16, per_row_weight_scale);
      },
      "m"_a, "n"_a, "k"_a, "per_row_weight_scale"_a = false,
      "The kernel the dispatcher runs for an (M, N, K) fp8 problem on the current device, as one line.");
  m.def("workspace_bytes", &workspace_bytes, "input"_a, "weight"_a, "input_scale"_a.none() = nb::none(),
        "Bytes of workspace gemm uses for these operands (for fp8 x fp8: the M-contiguous copy of row-major "
        "input scales before a long plan, else 0).");
  m.def(
      "per_token_cast",
      [](nb::handle x, nb::handle out, nb::handle scales, std::uintptr_t stream) {
        cast<&blockgemm::per_token_cast_to_fp8>("per_token_cast_to_fp8", x, out, scales, stream);
      },
      "x"_a, "out"_a, "scales"_a, "stream"_a, "bf16 x -> fp8 out with one fp32 scale per 1x128 group.");
  m.def(
      "per_block_cast",
      [](nb::handle x, nb::handle out, nb::handle scales, std::uintptr_t stream) {
        cast<&blockgemm::per_block_cast_to_fp8>("per_block_cast_to_fp8", x, out, scales, stream);
      },
      "x"_a, "out"_a, "scales"_a, "stream"_a, "bf16 x -> fp8 out with one fp32 scale per 128x128 block.");
  void blockgemm_register_grouped(nb::module_ & m);  // python/src/bindings_grouped.cpp: the grouped GEMM
  blockgemm_register_grouped(m);
}
