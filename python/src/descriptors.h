// What both halves of `blockgemm._blockgemm_ext` (bindings.cpp: the dense GEMM and the quantizers;
// bindings_grouped.cpp: the grouped GEMM) take from Python: tensor descriptors, dtype names, streams, and the
// device switch around a call.
//
// A tensor reaches the module as a tuple (data_ptr: int, dtype: str, shape: tuple, strides: tuple,
// device: int), built by python/blockgemm from a torch.Tensor. Taking descriptors instead of tensors keeps
// the extension free of any torch C++ dependency: it builds against nanobind alone and does not break when
// torch's C++ ABI changes between releases.
#pragma once

#include <cuda_runtime_api.h>
#include <nanobind/nanobind.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "blockgemm/tensor.h"

namespace blockgemm::python {

inline constexpr const char* kAnyDtype = "one of float8_e4m3fn, bfloat16, float16, float32";

// Problems the library cannot see (it never receives these values) are reported in its own format,
// "<function>: <argument>: expected ..., got ...", so Python callers get one style of message.
[[noreturn]] inline void fail(const char* function, const std::string& argument, const std::string& expected,
                              const std::string& actual) {
  throw Error(Error::Kind::kInvalidArgument,
              std::string(function) + ": " + argument + ": expected " + expected + ", got " + actual);
}

// torch's names: the library's DType names differ for fp8 ("float8_e4m3"), and only e4m3fn is the format
// the kernels read.
inline DType parse_dtype(const char* function, const std::string& argument, std::string_view name,
                         const char* expected = kAnyDtype) {
  if (name == "float8_e4m3fn") return DType::kFloat8E4M3;
  if (name == "bfloat16") return DType::kBFloat16;
  if (name == "float16") return DType::kFloat16;
  if (name == "float32") return DType::kFloat32;
  fail(function, argument + ".dtype", expected, std::string(name));
}

// A descriptor checked for form (a malformed one is a bug in the Python wrapper: TypeError) and rank (1 to
// `max_rank`; otherwise a user error naming the argument, `expected_rank` saying what it should be).
struct Descriptor {
  std::uintptr_t data = 0;
  std::string dtype;
  int rank = 0;
  int64_t shape[TensorView::kMaxRank] = {};
  int64_t strides[TensorView::kMaxRank] = {};
  int device = TensorView::kHostDevice;
};

inline Descriptor parse_descriptor(const char* function, const char* argument, nanobind::handle desc,
                                   int max_rank, const char* expected_rank) {
  namespace nb = nanobind;
  if (!nb::isinstance<nb::tuple>(desc) || nb::len(desc) != 5)
    throw nb::type_error(
        (std::string(argument) + ": expected a descriptor tuple (data_ptr, dtype, shape, strides, device)")
            .c_str());
  const nb::tuple t = nb::borrow<nb::tuple>(desc);
  if (!nb::isinstance<nb::tuple>(t[2]) || !nb::isinstance<nb::tuple>(t[3]))
    throw nb::type_error((std::string(argument) + ": descriptor shape and strides must be tuples").c_str());
  if (!nb::isinstance<nb::str>(t[1]))
    throw nb::type_error((std::string(argument) + ": descriptor dtype must be a str").c_str());
  const nb::tuple shape = nb::borrow<nb::tuple>(t[2]);
  const nb::tuple strides = nb::borrow<nb::tuple>(t[3]);
  Descriptor d;
  d.rank = static_cast<int>(nb::len(shape));
  if (d.rank < 1 || d.rank > max_rank)
    fail(function, argument, expected_rank, std::to_string(d.rank) + "-D tensor");
  if (nb::len(strides) != nb::len(shape))
    throw nb::type_error((std::string(argument) + ": descriptor strides and shape differ in length").c_str());
  d.data = nb::cast<std::uintptr_t>(t[0]);
  d.dtype = nb::borrow<nb::str>(t[1]).c_str();
  for (int i = 0; i < d.rank; ++i) {
    d.shape[i] = nb::cast<int64_t>(shape[i]);
    d.strides[i] = nb::cast<int64_t>(strides[i]);
  }
  d.device = nb::cast<int>(t[4]);
  return d;
}

// A floating-point tensor of rank 1 to `max_rank` (the library checks the rank each argument needs).
inline TensorView parse_view(const char* function, const char* argument, nanobind::handle desc, int max_rank,
                             const char* expected_rank, const char* expected_dtype = kAnyDtype) {
  const Descriptor d = parse_descriptor(function, argument, desc, max_rank, expected_rank);
  TensorView view;
  view.data = reinterpret_cast<void*>(d.data);
  view.dtype = parse_dtype(function, argument, d.dtype, expected_dtype);
  view.rank = d.rank;
  for (int i = 0; i < d.rank; ++i) view.shape[i] = d.shape[i], view.strides[i] = d.strides[i];
  view.device = d.device;
  return view;
}

inline cudaStream_t to_stream(std::uintptr_t stream) {
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

}  // namespace blockgemm::python
