// nanobind module `blockgemm._blockgemm_ext`: the C++ API over plain Python descriptors.
//
// A tensor reaches this module as a tuple (data_ptr: int, dtype: str, shape: tuple, strides: tuple,
// device: int), built by python/blockgemm from a torch.Tensor. Taking descriptors instead of tensors keeps
// the extension free of any torch C++ dependency: it builds against nanobind alone and does not break
// when torch's C++ ABI changes between releases.
#include <cuda_runtime_api.h>
#include <nanobind/nanobind.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <string_view>

#include "blockgemm/blockgemm.h"
#include "blockgemm/quantize.h"
#include "blockgemm/tensor.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

using blockgemm::DType;
using blockgemm::Error;
using blockgemm::TensorView;

constexpr const char* kGemm = "fp8_blockscale_gemm_sm90";
constexpr const char* kAnyDtype = "one of float8_e4m3fn, bfloat16, float16, float32";
// The GEMM's operands: FlashInfer's wording ("FP8 ... or BF16"), which its callers match on.
constexpr const char* kOperandDtype = "FP8 (float8_e4m3fn) or BF16 (bfloat16)";

// The Python class of the library's argument errors (Error::Kind::kInvalidArgument), created with the
// module: a ValueError, as FlashInfer raises for every documented argument error, and a RuntimeError too,
// so that code which caught an unsupported (non-Hopper) GPU as a device failure still catches it.
PyObject* argument_error_type = nullptr;

// Problems the library cannot see (it never receives these values) are reported in its own format,
// "<function>: <argument>: expected ..., got ...", so Python callers get one style of message.
[[noreturn]] void fail(const char* function, const std::string& argument, const std::string& expected,
                       const std::string& actual) {
  throw Error(Error::Kind::kInvalidArgument,
              std::string(function) + ": " + argument + ": expected " + expected + ", got " + actual);
}

DType parse_dtype(const char* function, const std::string& argument, std::string_view name,
                  const char* expected) {
  // torch's names: the library's DType names differ for fp8 ("float8_e4m3"), and only e4m3fn is the
  // format the kernels read.
  if (name == "float8_e4m3fn") return DType::kFloat8E4M3;
  if (name == "bfloat16") return DType::kBFloat16;
  if (name == "float16") return DType::kFloat16;
  if (name == "float32") return DType::kFloat32;
  fail(function, argument + ".dtype", expected, std::string(name));
}

TensorView parse_view(const char* function, const char* argument, nb::handle desc,
                      const char* expected_dtype = kAnyDtype) {
  // A malformed descriptor is a bug in the Python wrapper, not a user error: TypeError.
  if (!nb::isinstance<nb::tuple>(desc) || nb::len(desc) != 5)
    throw nb::type_error(
        (std::string(argument) + ": expected a descriptor tuple (data_ptr, dtype, shape, strides, device)")
            .c_str());
  const nb::tuple t = nb::borrow<nb::tuple>(desc);
  if (!nb::isinstance<nb::tuple>(t[2]) || !nb::isinstance<nb::tuple>(t[3]))
    throw nb::type_error((std::string(argument) + ": descriptor shape and strides must be tuples").c_str());
  const nb::tuple shape = nb::borrow<nb::tuple>(t[2]);
  const nb::tuple strides = nb::borrow<nb::tuple>(t[3]);

  TensorView view;
  view.rank = static_cast<int>(nb::len(shape));
  // TensorView holds at most two dimensions; a batch dimension must be folded by the caller.
  if (view.rank < 1 || view.rank > 2)
    fail(function, argument, "a 2-D tensor", std::to_string(view.rank) + "-D tensor");
  if (nb::len(strides) != nb::len(shape))
    throw nb::type_error((std::string(argument) + ": descriptor strides and shape differ in length").c_str());
  view.data = reinterpret_cast<void*>(nb::cast<std::uintptr_t>(t[0]));
  if (!nb::isinstance<nb::str>(t[1]))
    throw nb::type_error((std::string(argument) + ": descriptor dtype must be a str").c_str());
  view.dtype = parse_dtype(function, argument, nb::borrow<nb::str>(t[1]).c_str(), expected_dtype);
  for (int i = 0; i < view.rank; ++i) {
    view.shape[i] = nb::cast<int64_t>(shape[i]);
    view.strides[i] = nb::cast<int64_t>(strides[i]);
  }
  view.device = nb::cast<int>(t[4]);
  return view;
}

std::optional<TensorView> parse_optional_view(const char* function, const char* argument, nb::handle desc) {
  if (desc.is_none()) return std::nullopt;
  return parse_view(function, argument, desc);
}

cudaStream_t to_stream(std::uintptr_t stream) {
  return reinterpret_cast<cudaStream_t>(stream);
}

// The library launches on the current device and rejects tensors of another one. torch's own ops switch
// to the tensors' device for the call, so this module does the same and restores the caller's device.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    if (device < 0) return;  // host tensors: let the library report them
    if (cudaGetDevice(&previous_) != cudaSuccess) {
      cudaGetLastError();  // the library repeats the query and reports the failure with context
      return;
    }
    if (previous_ == device) return;
    if (cudaSetDevice(device) == cudaSuccess)
      switched_ = true;
    else
      cudaGetLastError();  // an invalid ordinal is reported by the library's device check
  }
  ~DeviceGuard() {
    if (switched_) cudaSetDevice(previous_);
  }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
  bool switched_ = false;
};

void gemm(nb::handle input, nb::handle weight, nb::handle input_scale, nb::handle weight_scale,
          nb::handle out, std::uintptr_t stream, std::uintptr_t workspace_ptr, std::size_t workspace_bytes) {
  const TensorView a = parse_view(kGemm, "input", input, kOperandDtype);
  const TensorView b = parse_view(kGemm, "weight", weight, kOperandDtype);
  const std::optional<TensorView> sa = parse_optional_view(kGemm, "input_scale", input_scale);
  const std::optional<TensorView> sb = parse_optional_view(kGemm, "weight_scale", weight_scale);
  const TensorView c = parse_view(kGemm, "out", out);
  // Without a workspace the library falls back to its own per-device buffer, which cannot grow during
  // graph capture; the Python wrapper always lends one from torch's allocator for bf16 operands.
  std::optional<blockgemm::Workspace> workspace;
  if (workspace_bytes > 0)
    workspace = blockgemm::Workspace{reinterpret_cast<void*>(workspace_ptr), workspace_bytes};

  // Validation and launch touch no Python state; other threads may run while the host-side work proceeds.
  nb::gil_scoped_release release;
  DeviceGuard guard(a.device);
  blockgemm::fp8_blockscale_gemm_sm90(a, b, sa, sb, c, std::nullopt, to_stream(stream), workspace);
}

std::size_t workspace_bytes(nb::handle input, nb::handle weight) {
  return blockgemm::fp8_blockscale_gemm_sm90_workspace_bytes(
      parse_view(kGemm, "input", input, kOperandDtype), parse_view(kGemm, "weight", weight, kOperandDtype));
}

template <void (*Cast)(const TensorView&, const TensorView&, const TensorView&, cudaStream_t)>
void cast(const char* function, nb::handle x, nb::handle out, nb::handle scales, std::uintptr_t stream) {
  const TensorView vx = parse_view(function, "x", x);
  const TensorView vout = parse_view(function, "out", out);
  const TensorView vscales = parse_view(function, "scales", scales);
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
  m.def("workspace_bytes", &workspace_bytes, "input"_a, "weight"_a,
        "Bytes of workspace gemm needs for these operands (0 for fp8 x fp8).");
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
