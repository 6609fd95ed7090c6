// Argument validation for fp8_blockscale_gemm_sm90: everything checked before anything is launched.
#pragma once

#include <optional>

#include "blockgemm/tensor.h"
#include "kernels/launch.h"

namespace blockgemm::api {

// Checks every argument (dtype combination, ranks, shapes, strides, scales, alignment, devices; not the
// device's architecture) and returns the kernel arguments, with bf16 operands flagged for quantization.
// Throws Error(kInvalidArgument or kNotImplemented) with a message naming the argument, the expected and the
// actual value.
kernels::Fp8GemmArgs validate_gemm_args(const TensorView& input, const TensorView& weight,
                                        const std::optional<TensorView>& input_scale,
                                        const std::optional<TensorView>& weight_scale, const TensorView& out,
                                        std::optional<DType> out_dtype);

// The same checks without an `out` (which the allocating form creates only once they pass); out_dtype
// must be a supported output dtype.
void validate_gemm_operands(const TensorView& input, const TensorView& weight,
                            const std::optional<TensorView>& input_scale,
                            const std::optional<TensorView>& weight_scale, std::optional<DType> out_dtype);

// Throws unless `device` is a Hopper GPU (compute capability 9.0) this process can use: Error(kDevice) when
// it cannot be queried, Error(kInvalidArgument) for another architecture (the seed reports that as a bad
// argument too, ValueError in Python).
// `capability_override` (major * 10 + minor, for tests) replaces the queried capability when >= 0.
void require_hopper(int device, int capability_override = -1);

}  // namespace blockgemm::api
