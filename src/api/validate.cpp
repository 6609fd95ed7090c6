#include "api/validate.h"

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <utility>

#include "api/argument_check.h"

namespace blockgemm::api {
namespace {

constexpr int64_t kGroupK = 128;
const ArgumentCheck check("fp8_blockscale_gemm_sm90");

[[noreturn]] void fail(const std::string& argument, const std::string& expected, const std::string& actual,
                       Error::Kind kind = Error::Kind::kInvalidArgument) {
  check.fail(argument, expected, actual, kind);
}

}  // namespace

namespace {

// Everything but the architecture; `out` may be absent (the allocating form checks before it allocates).
kernels::Fp8GemmArgs validate(const TensorView& input, const TensorView& weight,
                              const std::optional<TensorView>& input_scale,
                              const std::optional<TensorView>& weight_scale, const TensorView* out_or_null,
                              std::optional<DType> out_dtype) {
  // Without an out the checks below run against a stand-in of the right shape and dtype that aliases
  // nothing; every out-specific check is skipped for it.
  TensorView stand_in = TensorView::matrix(nullptr, out_dtype.value_or(DType::kBFloat16), input.rows(),
                                           weight.rows(), input.device);
  const bool have_out = out_or_null != nullptr;
  const TensorView& out = have_out ? *out_or_null : stand_in;
  for (const auto& [name, t] : {std::pair<const char*, const TensorView*>{"input", &input},
                                {"weight", &weight},
                                {"out", have_out ? &out : nullptr}}) {
    if (t == nullptr) continue;
    check.require_matrix(name, *t);
    check.require_data(name, *t);
  }

  // dtype combination first: it decides which other arguments must exist. Messages here and below carry
  // FlashInfer's wording for the same errors ("FP8 ... or BF16", "divisible by block size", ...): this
  // function replaces its fp8_blockscale_gemm_sm90, whose callers may match on those words.
  const bool input_fp8 = input.dtype == DType::kFloat8E4M3;
  const bool weight_fp8 = weight.dtype == DType::kFloat8E4M3;
  if (input_fp8 && weight.dtype == DType::kBFloat16)
    fail("weight.dtype", "float8_e4m3 when input is float8_e4m3 (FP8 input + BF16 weight is not supported)",
         dtype_name(weight.dtype));
  if (!input_fp8 && input.dtype != DType::kBFloat16)
    fail("input.dtype", "FP8 (float8_e4m3) or BF16 (bfloat16)", dtype_name(input.dtype));
  if (!weight_fp8 && weight.dtype != DType::kBFloat16)
    fail("weight.dtype", "FP8 (float8_e4m3) or BF16 (bfloat16)", dtype_name(weight.dtype));
  // bf16 operands are quantized inside: a scale for them is a caller mistake, not something to ignore.
  if (!input_fp8 && input_scale)
    fail("input_scale", "None (input_scale should not be provided for BF16 input: it is quantized inside)",
         "a tensor");
  if (!weight_fp8 && weight_scale)
    fail("weight_scale", "None (weight_scale should not be provided for BF16 weight: it is quantized inside)",
         "a tensor");

  const int64_t m = input.rows(), k = input.cols(), n = weight.rows();
  if (weight.cols() != k)
    fail("weight", "shape (N, " + std::to_string(k) + ") to match input's K (K dimension mismatch)",
         shape_str(weight));
  if (k % kGroupK != 0) fail("input", "K (columns) divisible by block size 128", std::to_string(k));
  if (k == 0) fail("input", "K > 0", "0");
  if (n % 16 != 0) fail("weight", "N (rows) a multiple of 16", std::to_string(n));
  if (n == 0) fail("weight", "N > 0", "0");
  // The kernels index with 32-bit rows and columns.
  constexpr int64_t kMaxDim = (int64_t{1} << 31) - 1;
  if (m > kMaxDim || n > kMaxDim || k > kMaxDim)
    fail("input/weight", "every dimension < 2^31", shape_str(input));

  // out
  if (have_out && out_dtype && *out_dtype != out.dtype)
    fail("out_dtype", std::string("out's dtype ") + dtype_name(out.dtype), dtype_name(*out_dtype));
  if (out.dtype != DType::kBFloat16 && out.dtype != DType::kFloat16 && out.dtype != DType::kFloat32)
    fail(have_out ? "out.dtype" : "out_dtype", "bfloat16, float16 or float32", dtype_name(out.dtype));
  if (have_out && (out.rows() != m || out.cols() != n))
    fail("out", "shape (" + std::to_string(m) + ", " + std::to_string(n) + ")", shape_str(out));

  // scales: required for fp8 operands, absent (checked above) for bf16 ones
  const int64_t k_groups = k / kGroupK;
  const int64_t n_blocks = (n + 127) / 128;
  bool per_row = false;
  // FlashInfer's callers hand over the input scale M-contiguous as a (K/128, M) view (its kernel ignores
  // the strides and assumes that layout). Such a view is the (M, K/128) one with its strides swapped, so it
  // is accepted as the transpose wherever the two shapes differ; where M == K/128 they coincide and the
  // documented (M, K/128) reading wins.
  bool input_scale_transposed = false;
  if (input_fp8) {
    if (!input_scale)
      fail("input_scale", "an fp32 (M, K/128) tensor (input_scale is required when input is FP8)", "None");
    check.require_matrix("input_scale", *input_scale);
    check.require_data("input_scale", *input_scale);
    if (input_scale->dtype != DType::kFloat32)
      fail("input_scale.dtype", "float32", dtype_name(input_scale->dtype));
    const bool documented = input_scale->rows() == m && input_scale->cols() == k_groups;
    input_scale_transposed =
        !documented && m != k_groups && input_scale->rows() == k_groups && input_scale->cols() == m;
    if (!documented && !input_scale_transposed) {
      const std::string mk = "(" + std::to_string(m) + ", " + std::to_string(k_groups) + ")";
      const std::string km = "(" + std::to_string(k_groups) + ", " + std::to_string(m) + ")";
      fail("input_scale", "shape " + mk + (m != k_groups ? " or its transpose " + km : ""),
           shape_str(*input_scale));
    }
  }
  if (weight_fp8) {
    if (!weight_scale)
      fail("weight_scale", "an fp32 tensor (weight_scale is required when weight is FP8)", "None");
    check.require_matrix("weight_scale", *weight_scale);
    check.require_data("weight_scale", *weight_scale);
    if (weight_scale->dtype != DType::kFloat32)
      fail("weight_scale.dtype", "float32", dtype_name(weight_scale->dtype));
    const bool per_block = weight_scale->rows() == n_blocks && weight_scale->cols() == k_groups;
    per_row = weight_scale->rows() == n && weight_scale->cols() == k_groups;
    if (!per_block && !per_row)
      fail("weight_scale",
           "shape (" + std::to_string(n_blocks) + ", " + std::to_string(k_groups) +
               ") for 128x128 blocks or (" + std::to_string(n) + ", " + std::to_string(k_groups) +
               ") for 1x128 row groups",
           shape_str(*weight_scale));
  }

  // devices: everything on the input's GPU
  if (input.device == TensorView::kHostDevice) fail("input.device", "a CUDA device", "host memory");
  const int device = input.device;
  check.require_device("weight", weight, device);
  if (have_out) check.require_device("out", out, device);
  if (input_scale) check.require_device("input_scale", *input_scale, device);
  if (weight_scale) check.require_device("weight_scale", *weight_scale, device);

  // layouts and alignment
  // TMA needs 16-byte aligned bases and row strides.
  check.require_row_major("input", input, 16);
  check.require_row_major("weight", weight, 16);
  if (have_out) check.require_row_major("out", out, 16);
  // Checked as given, so that a message quotes the caller's own strides; a transposed view's strides are
  // then swapped into the (M, K/128) order the kernel indexes.
  ScaleStrides a_layout =
      input_scale ? check.require_scale_layout("input_scale", *input_scale) : ScaleStrides{0, 0};
  if (input_scale_transposed) a_layout = {a_layout.col_stride, a_layout.row_stride};
  const ScaleStrides b_layout =
      weight_scale ? check.require_scale_layout("weight_scale", *weight_scale) : ScaleStrides{0, 0};

  // out must not overlap what the kernel reads while it writes.
  if (have_out) {
    check.require_disjoint("out", out, "input", input);
    check.require_disjoint("out", out, "weight", weight);
    if (input_scale) check.require_disjoint("out", out, "input_scale", *input_scale);
    if (weight_scale) check.require_disjoint("out", out, "weight_scale", *weight_scale);
  }

  kernels::Fp8GemmArgs args{};
  args.m = static_cast<int>(m);
  args.n = static_cast<int>(n);
  args.k = static_cast<int>(k);
  args.a = input.data;
  args.a_row_stride = m > 1 ? input.strides[0] : k;
  args.b = weight.data;
  args.b_row_stride = n > 1 ? weight.strides[0] : k;
  args.quantize_input = !input_fp8;
  args.quantize_weight = !weight_fp8;
  args.scale_a = input_scale ? static_cast<const float*>(input_scale->data) : nullptr;
  args.scale_a_row_stride = a_layout.row_stride;
  args.scale_a_k_stride = a_layout.col_stride;
  args.scale_b = weight_scale ? static_cast<const float*>(weight_scale->data) : nullptr;
  args.scale_b_row_stride = b_layout.row_stride;
  args.scale_b_k_stride = b_layout.col_stride;
  args.per_row_weight_scale = per_row;
  args.out = out.data;
  args.out_row_stride = m > 1 ? out.strides[0] : n;
  args.out_dtype = out.dtype;
  return args;
}

}  // namespace

kernels::Fp8GemmArgs validate_gemm_args(const TensorView& input, const TensorView& weight,
                                        const std::optional<TensorView>& input_scale,
                                        const std::optional<TensorView>& weight_scale, const TensorView& out,
                                        std::optional<DType> out_dtype) {
  return validate(input, weight, input_scale, weight_scale, &out, out_dtype);
}

void validate_gemm_operands(const TensorView& input, const TensorView& weight,
                            const std::optional<TensorView>& input_scale,
                            const std::optional<TensorView>& weight_scale, std::optional<DType> out_dtype) {
  validate(input, weight, input_scale, weight_scale, nullptr, out_dtype);
}

void require_hopper(int device, int capability_override) {
  int capability = capability_override;
  if (capability < 0) {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      cudaGetLastError();  // clear the sticky "no device" error for later callers
      throw Error(Error::Kind::kDevice, "fp8_blockscale_gemm_sm90: no CUDA device is available");
    }
    if (device < 0 || device >= count)
      fail("input.device", "a CUDA ordinal < " + std::to_string(count), std::to_string(device),
           Error::Kind::kDevice);
    int major = 0, minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    capability = major * 10 + minor;
  }
  // An invalid argument rather than a device failure: the tensors live on a GPU this function does not
  // support, which FlashInfer's fp8_blockscale_gemm_sm90 also reports as a bad argument (ValueError).
  if (capability != 90)
    fail("device",
         "a Hopper GPU (compute capability 9.0, sm_90a; only supported on SM90 (Hopper) architecture)",
         "compute capability " + std::to_string(capability / 10) + "." + std::to_string(capability % 10));
}

}  // namespace blockgemm::api
