// FlashInfer's fp8_blockscale_gemm_sm90 is the function this library replaces: its callers' input-scale
// layout is accepted, and its error wording is carried inside ours.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/validate.h"
#include "blockgemm/blockgemm.h"
#include "validation_test_util.h"

namespace blockgemm {
namespace {

using blockgemm::testing::Args;
using blockgemm::testing::expect_message;
using blockgemm::testing::fake;
using blockgemm::testing::kDevice;

// A valid FP8 x FP8 problem of M rows and K columns (N = 256), buffers 1 MiB apart.
Args sized(int64_t m, int64_t k) {
  Args a;
  a.m = m;
  a.k = k;
  a.input = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, m, k, kDevice);
  a.weight = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 256, k, kDevice);
  a.input_scale = TensorView::matrix(fake(0x300000), DType::kFloat32, m, k / 128, kDevice);
  a.weight_scale = TensorView::matrix(fake(0x400000), DType::kFloat32, 2, k / 128, kDevice);
  a.out = TensorView::matrix(fake(0x500000), DType::kBFloat16, m, 256, kDevice);
  return a;
}

kernels::Fp8GemmArgs validated(const Args& a) {
  return api::validate_gemm_args(a.input, a.weight, a.input_scale, a.weight_scale, a.out, a.out_dtype);
}

int64_t ceil4(int64_t x) {
  return (x + 3) / 4 * 4;
}

TEST(SeedInputScale, TransposedViewOfAnMContiguousBufferIsAccepted) {
  // FlashInfer's own test: buf[:, :M] of a (K/128, ceil4(M)) buffer, shape (K/128, M), strides (ceil4(M), 1).
  for (int64_t k : {512, 7168}) {
    for (int64_t m : {1, 2, 5, 16, 31, 32, 33, 64}) {
      Args a = sized(m, k);
      const int64_t k_groups = k / 128;
      a.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, k_groups, m, ceil4(m), 1, kDevice);
      const kernels::Fp8GemmArgs args = validated(a);
      EXPECT_EQ(args.scale_a, fake(0x300000)) << "M=" << m << " K=" << k;
      EXPECT_EQ(args.scale_a_row_stride, 1) << "M=" << m << " K=" << k;
      EXPECT_EQ(args.scale_a_k_stride, ceil4(m)) << "M=" << m << " K=" << k;
    }
  }
}

TEST(SeedInputScale, TransposeOfARowMajorScaleIsAccepted) {
  // scales.t() of a contiguous (M, K/128) tensor: shape (K/128, M), strides (1, K/128).
  Args a = sized(64, 512);
  a.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, 4, 64, 1, 4, kDevice);
  const kernels::Fp8GemmArgs args = validated(a);
  EXPECT_EQ(args.scale_a_row_stride, 4);
  EXPECT_EQ(args.scale_a_k_stride, 1);
}

TEST(SeedInputScale, DocumentedShapeWinsWhenMEqualsKGroups) {
  // M == K/128 (M = 4 at K = 512; M = 56 at DeepSeek's K = 7168): a square scale tensor is read as
  // (M, K/128) in whichever layout its strides give, never as the transpose.
  for (int64_t m : {4, 56}) {
    const int64_t k = m * 128;
    Args a = sized(m, k);
    kernels::Fp8GemmArgs args = validated(a);  // row-major (M, K/128)
    EXPECT_EQ(args.scale_a_row_stride, m) << "M=" << m;
    EXPECT_EQ(args.scale_a_k_stride, 1) << "M=" << m;
    a.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, m, m, 1, m, kDevice);
    args = validated(a);  // column-major (M, K/128)
    EXPECT_EQ(args.scale_a_row_stride, 1) << "M=" << m;
    EXPECT_EQ(args.scale_a_k_stride, m) << "M=" << m;
    // A padded row stride, as FlashInfer's M-contiguous buffer would have: still rows of M.
    a.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, m, m, m + 4, 1, kDevice);
    args = validated(a);
    EXPECT_EQ(args.scale_a_row_stride, m + 4) << "M=" << m;
    EXPECT_EQ(args.scale_a_k_stride, 1) << "M=" << m;
  }
}

TEST(SeedInputScale, TransposedViewErrorsQuoteTheGivenView) {
  // Strides that are neither layout are quoted as given, with the layouts stated for the given shape.
  expect_message(
      [] {
        Args a = sized(64, 512);
        a.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, 4, 64, 2, 1, kDevice);
        validated(a);
      },
      {"fp8_blockscale_gemm_sm90: input_scale strides: expected ", "row-major (>= 64, 1)",
       "column-major (1, >= 4)", "got (2, 1)"});
  expect_message(
      [] {
        Args a = sized(64, 512);
        a.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, 4, 64, 1, 2, kDevice);
        validated(a);
      },
      {"input_scale strides", "got (1, 2)"});
  // A shape that is neither form names both.
  expect_message(
      [] {
        Args a = sized(64, 512);
        a.input_scale = TensorView::matrix(fake(0x300000), DType::kFloat32, 4, 63, kDevice);
        validated(a);
      },
      {"input_scale: expected shape (64, 4) or its transpose (4, 64), got (4, 63)"});
  // Where M == K/128 there is only one shape to name.
  try {
    Args a = sized(4, 512);
    a.input_scale = TensorView::matrix(fake(0x300000), DType::kFloat32, 4, 5, kDevice);
    validated(a);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input_scale: expected shape (4, 4), got (4, 5)"), std::string::npos)
        << e.what();
  }
}

TEST(SeedInputScale, TransposedViewIsCheckedLikeAnyOther) {
  auto transposed = [] {
    Args a = sized(33, 512);
    a.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, 4, 33, 36, 1, kDevice);
    return a;
  };
  expect_message(
      [&] {
        Args a = transposed();
        a.input_scale->dtype = DType::kBFloat16;
        validated(a);
      },
      {"input_scale.dtype", "float32", "bfloat16"});
  expect_message(
      [&] {
        Args a = transposed();
        a.input_scale->device = 1;
        validated(a);
      },
      {"input_scale.device", "cuda:0", "cuda:1"});
  expect_message(
      [&] {
        Args a = transposed();
        a.input_scale->data = fake(0x300002);
        validated(a);
      },
      {"input_scale data pointer", "4-byte"});
  expect_message(
      [&] {
        Args a = transposed();
        a.input_scale->data = nullptr;
        validated(a);
      },
      {"input_scale", "non-null"});
  // The byte span of the view as given: out placed over its last row overlaps it.
  expect_message(
      [&] {
        Args a = transposed();
        a.out.data = fake(0x300000 + 3 * 36 * 4);
        validated(a);
      },
      {"out", "disjoint from input_scale"});
}

// Each of FlashInfer's documented errors: our form ("<function>: <argument>: expected ..., got ...") with
// FlashInfer's words inside, as its callers match them.
struct SeedError {
  const char* name;
  std::function<void(Args&)> breaker;
  std::vector<const char*> fragments;
};

std::vector<SeedError> seed_errors() {
  auto bf16_input = [](Args& a) {
    a.input.dtype = DType::kBFloat16;
    a.input.strides[0] = a.k;
    a.input_scale.reset();
  };
  return {
      {"k_not_multiple_of_128",
       [bf16_input](Args& a) {
         bf16_input(a);
         a.input = TensorView::matrix(fake(0x100000), DType::kBFloat16, a.m, 200, kDevice);
         a.weight = TensorView::matrix(fake(0x200000), DType::kBFloat16, 256, 200, kDevice);
         a.weight_scale.reset();
       },
       {"fp8_blockscale_gemm_sm90: input: expected K (columns) divisible by block size 128, got 200"}},
      {"float16_input",
       [](Args& a) {
         a.input.dtype = DType::kFloat16;
         a.input_scale.reset();
       },
       {"fp8_blockscale_gemm_sm90: input.dtype: expected FP8 (float8_e4m3) or BF16 (bfloat16), got float16"}},
      {"float32_weight",
       [bf16_input](Args& a) {
         bf16_input(a);
         a.weight.dtype = DType::kFloat32;
         a.weight_scale.reset();
       },
       {"fp8_blockscale_gemm_sm90: weight.dtype: expected FP8 (float8_e4m3) or BF16 (bfloat16), got "
        "float32"}},
      {"fp8_input_bf16_weight",
       [](Args& a) {
         a.weight.dtype = DType::kBFloat16;
         a.weight_scale.reset();
       },
       {"fp8_blockscale_gemm_sm90: weight.dtype: expected ", "FP8 input + BF16 weight is not supported",
        "got bfloat16"}},
      {"missing_weight_scale",
       [bf16_input](Args& a) {
         bf16_input(a);
         a.weight_scale.reset();
       },
       {"fp8_blockscale_gemm_sm90: weight_scale: expected ", "weight_scale is required when weight is FP8",
        "got None"}},
      {"missing_input_scale",
       [](Args& a) { a.input_scale.reset(); },
       {"fp8_blockscale_gemm_sm90: input_scale: expected ", "input_scale is required when input is FP8",
        "got None"}},
      {"input_scale_for_bf16_input",
       [](Args& a) {
         a.input.dtype = DType::kBFloat16;
         a.input.strides[0] = a.k;
       },
       {"fp8_blockscale_gemm_sm90: input_scale: expected None", "input_scale should not be provided for BF16",
        "got a tensor"}},
      {"weight_scale_for_bf16_weight",
       [bf16_input](Args& a) {
         bf16_input(a);
         a.weight.dtype = DType::kBFloat16;
       },
       {"fp8_blockscale_gemm_sm90: weight_scale: expected None",
        "weight_scale should not be provided for BF16", "got a tensor"}},
      {"k_mismatch",
       [](Args& a) { a.weight = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 256, 384, kDevice); },
       {"fp8_blockscale_gemm_sm90: weight: expected ", "K dimension mismatch", "got (256, 384)"}},
  };
}

TEST(SeedErrors, MessagesCarryOurFormAndTheSeedsWords) {
  for (const SeedError& error : seed_errors()) {
    SCOPED_TRACE(error.name);
    Args a = sized(16, 256);
    error.breaker(a);
    expect_message([&] { validated(a); }, error.fragments);
  }
}

// Both public entries report every argument error as such before they query the device: on a machine
// without a GPU driver (CI) a device query first would throw "no CUDA device" instead. Every call here
// has a bad argument, so none ever reaches a launch on a machine that has a GPU.
TEST(SeedErrors, PublicEntriesReportArgumentErrorsBeforeQueryingTheDevice) {
  std::vector<SeedError> errors = seed_errors();
  errors.push_back(
      {"input_scale_shape",
       [](Args& a) { a.input_scale = TensorView::matrix(fake(0x300000), DType::kFloat32, a.m, 3, kDevice); },
       {"input_scale: expected shape (16, 2) or its transpose (2, 16), got (16, 3)"}});
  errors.push_back({"transposed_input_scale_strides",
                    [](Args& a) {
                      a.input_scale =
                          TensorView::strided(fake(0x300000), DType::kFloat32, 2, a.m, 3, 1, kDevice);
                    },
                    {"input_scale strides: expected row-major (>= 16, 1)", "got (3, 1)"}});
  errors.push_back(
      {"weight_scale_shape",
       [](Args& a) { a.weight_scale = TensorView::matrix(fake(0x400000), DType::kFloat32, 3, 2, kDevice); },
       {"weight_scale: expected shape (2, 2)", "(256, 2)", "got (3, 2)"}});
  errors.push_back(
      {"rank", [](Args& a) { a.input.rank = 1; }, {"input: expected a 2-D tensor, got 1-D tensor"}});
  errors.push_back({"n_not_multiple_of_16",
                    [](Args& a) {
                      a.weight = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 250, a.k, kDevice);
                      a.weight_scale = TensorView::matrix(fake(0x400000), DType::kFloat32, 2, 2, kDevice);
                    },
                    {"weight: expected N (rows) a multiple of 16, got 250"}});
  errors.push_back({"weight_on_another_device",
                    [](Args& a) { a.weight.device = 1; },
                    {"weight.device: expected cuda:0, got cuda:1"}});
  errors.push_back({"host_input",
                    [](Args& a) { a.input.device = TensorView::kHostDevice; },
                    {"input.device: expected a CUDA device, got host memory"}});
  errors.push_back({"unaligned_input",
                    [](Args& a) { a.input.data = fake(0x100008); },
                    {"input data pointer: expected 16-byte aligned"}});
  for (const SeedError& error : errors) {
    SCOPED_TRACE(error.name);
    Args a = sized(16, 256);
    error.breaker(a);
    expect_message([&] { fp8_blockscale_gemm_sm90(a.input, a.weight, a.input_scale, a.weight_scale, a.out); },
                   error.fragments);
    expect_message([&] { (void)fp8_blockscale_gemm_sm90(a.input, a.weight, a.input_scale, a.weight_scale); },
                   error.fragments);
  }
  // Out's own errors, through the form that takes one.
  expect_message(
      [] {
        Args a = sized(16, 256);
        a.out = TensorView::matrix(fake(0x500000), DType::kBFloat16, 16, 128, kDevice);
        fp8_blockscale_gemm_sm90(a.input, a.weight, a.input_scale, a.weight_scale, a.out);
      },
      {"out: expected shape (16, 256), got (16, 128)"});
  expect_message(
      [] {
        Args a = sized(16, 256);
        fp8_blockscale_gemm_sm90(a.input, a.weight, a.input_scale, a.weight_scale, a.out, DType::kFloat16);
      },
      {"out_dtype: expected out's dtype bfloat16, got float16"});
}

}  // namespace
}  // namespace blockgemm
