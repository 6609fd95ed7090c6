// Argument validation runs before any device work, so every bad-input case is checked here without a GPU.
// Pointers are fake (never dereferenced): validation must not touch memory.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "api/validate.h"
#include "blockgemm/blockgemm.h"

namespace blockgemm {
namespace {

constexpr int kDevice = 0;

void* fake(uintptr_t address) {
  return reinterpret_cast<void*>(address);
}

// A valid FP8 x FP8 problem (M=64, N=256, K=512) over disjoint fake buffers; each test breaks one thing.
struct Args {
  int64_t m = 64, n = 256, k = 512;
  TensorView input = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, 64, 512, kDevice);
  TensorView weight = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 256, 512, kDevice);
  std::optional<TensorView> input_scale = TensorView::matrix(fake(0x300000), DType::kFloat32, 64, 4, kDevice);
  std::optional<TensorView> weight_scale = TensorView::matrix(fake(0x400000), DType::kFloat32, 2, 4, kDevice);
  TensorView out = TensorView::matrix(fake(0x500000), DType::kBFloat16, 64, 256, kDevice);
  std::optional<DType> out_dtype;

  void validate() const { api::validate_gemm_args(input, weight, input_scale, weight_scale, out, out_dtype); }
};

// Expects Error whose message contains every fragment (the argument's name, the expected and the actual).
void expect_error(const std::function<void(Args&)>& breaker, std::initializer_list<const char*> fragments,
                  Error::Kind kind = Error::Kind::kInvalidArgument) {
  Args args;
  breaker(args);
  try {
    args.validate();
    ADD_FAILURE() << "no error for fragments starting with '" << *fragments.begin() << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const char* fragment : fragments)
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "message '" << e.what() << "' lacks '" << fragment << "'";
  }
}

TEST(Validation, ValidArgumentsPass) {
  Args args;
  EXPECT_NO_THROW(args.validate());
  const kernels::Fp8GemmArgs k = api::validate_gemm_args(args.input, args.weight, args.input_scale,
                                                         args.weight_scale, args.out, std::nullopt);
  EXPECT_EQ(k.m, 64);
  EXPECT_EQ(k.n, 256);
  EXPECT_EQ(k.k, 512);
  EXPECT_FALSE(k.per_row_weight_scale);
  EXPECT_EQ(k.scale_a_row_stride, 4);
  EXPECT_EQ(k.scale_a_k_stride, 1);
}

TEST(Validation, ColumnMajorInputScaleIsAccepted) {
  Args args;
  args.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, 64, 4, 1, 64, kDevice);
  const auto k = api::validate_gemm_args(args.input, args.weight, args.input_scale, args.weight_scale,
                                         args.out, std::nullopt);
  EXPECT_EQ(k.scale_a_row_stride, 1);
  EXPECT_EQ(k.scale_a_k_stride, 64);
}

TEST(Validation, PerRowWeightScaleIsToldApartByShape) {
  Args args;
  args.weight_scale = TensorView::matrix(fake(0x400000), DType::kFloat32, 256, 4, kDevice);
  EXPECT_TRUE(api::validate_gemm_args(args.input, args.weight, args.input_scale, args.weight_scale, args.out,
                                      std::nullopt)
                  .per_row_weight_scale);
}

TEST(Validation, DtypeCombinations) {
  expect_error([](Args& a) { a.weight.dtype = DType::kBFloat16; },
               {"weight.dtype", "float8_e4m3", "bfloat16", "FP8 input + BF16 weight is not supported"});
  expect_error([](Args& a) { a.input.dtype = DType::kFloat16; }, {"input.dtype", "float16"});
  expect_error([](Args& a) { a.weight.dtype = DType::kFloat32; }, {"weight.dtype", "float32"});
}

TEST(Validation, Bf16OperandsAreFlaggedForQuantization) {
  Args args;
  args.input.dtype = DType::kBFloat16;
  args.input.strides[0] = 512;
  args.input_scale.reset();
  auto k = api::validate_gemm_args(args.input, args.weight, args.input_scale, args.weight_scale, args.out,
                                   std::nullopt);
  EXPECT_TRUE(k.quantize_input);
  EXPECT_FALSE(k.quantize_weight);
  args.weight.dtype = DType::kBFloat16;
  args.weight_scale.reset();
  k = api::validate_gemm_args(args.input, args.weight, args.input_scale, args.weight_scale, args.out,
                              std::nullopt);
  EXPECT_TRUE(k.quantize_input);
  EXPECT_TRUE(k.quantize_weight);
  // A bf16 row stride that breaks 16-byte row alignment is named.
  expect_error(
      [](Args& a) {
        a.input.dtype = DType::kBFloat16;
        a.input_scale.reset();
        a.input.strides[0] = 516;
      },
      {"input strides", "multiple of 16 bytes"});
}

TEST(Validation, WorkspaceBytesCoverTheQuantizedOperands) {
  const TensorView a = TensorView::matrix(fake(0x100000), DType::kBFloat16, 100, 512, 0);
  const TensorView b = TensorView::matrix(fake(0x200000), DType::kBFloat16, 272, 512, 0);
  const TensorView a8 = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, 100, 512, 0);
  const TensorView b8 = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 272, 512, 0);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(a8, b8), 0u);
  // fp8 values + column-major scales (K/128 x roundup(M, 4)), each 256-byte aligned.
  EXPECT_GE(fp8_blockscale_gemm_sm90_workspace_bytes(a, b8), 100u * 512 + 4u * 100 * 4);
  EXPECT_GE(fp8_blockscale_gemm_sm90_workspace_bytes(a, b),
            100u * 512 + 4u * 100 * 4 + 272u * 512 + 3u * 4 * 4);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(a, b) % 256, 0u);
}

// fp8 x fp8: a workspace only for the M-contiguous copy of row-major input scales before a long plan
// (bench/NOTES.md #63). Never an error here: operands the call would refuse get 0, and the call reports them.
TEST(Validation, Fp8WorkspaceBytesOnlyForTheInputScaleCopy) {
  const int64_t m = 4096, n = 7168, k = 16384, kg = k / 128;  // plans 128x160 for ~700 us
  const TensorView a8 = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, m, k, 0);
  const TensorView b8 = TensorView::matrix(fake(0x10000000), DType::kFloat8E4M3, n, k, 0);
  const TensorView row_major = TensorView::matrix(fake(0x30000000), DType::kFloat32, m, kg, 0);
  const TensorView m_contiguous = TensorView::strided(fake(0x30000000), DType::kFloat32, m, kg, 1, m, 0);
  const TensorView transposed_m_contiguous = TensorView::matrix(fake(0x30000000), DType::kFloat32, kg, m, 0);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(a8, b8, m_contiguous), 0u);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(a8, b8, transposed_m_contiguous), 0u);
  // With a GPU the row-major scales get room for (K/128, ceil4(M)) floats; without one, no SM count: 0.
  const std::size_t bytes = fp8_blockscale_gemm_sm90_workspace_bytes(a8, b8, row_major);
  if (bytes != 0) {
    EXPECT_GE(bytes, static_cast<std::size_t>(m * kg * 4));
    EXPECT_EQ(bytes % 256, 0u);
    EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(a8, b8), bytes) << "row-major assumed without scales";
  }
  // Short or small problems, and operands the call refuses: 0, no exception.
  const TensorView small = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, 127, k, 0);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(small, b8), 0u);
  const TensorView short_k = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, m, 512, 0);
  const TensorView short_b = TensorView::matrix(fake(0x10000000), DType::kFloat8E4M3, n, 512, 0);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(short_k, short_b), 0u);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(short_k, b8), 0u) << "K mismatch";
  const TensorView odd_k = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, m, k + 8, 0);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(odd_k, b8), 0u) << "K not a multiple of 128";
  const TensorView no_rows = TensorView::matrix(fake(0x10000000), DType::kFloat8E4M3, 0, k, 0);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(a8, no_rows), 0u);
  const TensorView on_host =
      TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, m, k, TensorView::kHostDevice);
  EXPECT_EQ(fp8_blockscale_gemm_sm90_workspace_bytes(on_host, b8), 0u);
}

TEST(Validation, ExtraOrMissingScales) {
  expect_error([](Args& a) { a.input.dtype = DType::kBFloat16; },
               {"input_scale", "expected None", "should not be provided for BF16 input"});
  expect_error([](Args& a) { a.input_scale.reset(); }, {"input_scale", "None"});
  expect_error([](Args& a) { a.weight_scale.reset(); }, {"weight_scale", "None"});
}

TEST(Validation, RanksAndShapes) {
  expect_error([](Args& a) { a.input.rank = 1; }, {"input", "2-D", "1-D"});
  expect_error(
      [](Args& a) { a.weight = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 256, 384, 0); },
      {"weight", "(N, 512)", "(256, 384)"});
  expect_error(
      [](Args& a) {
        a.input = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, 64, 500, 0);
        a.weight = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 256, 500, 0);
      },
      {"input", "divisible by block size 128", "500"});
  expect_error(
      [](Args& a) { a.weight = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 250, 512, 0); },
      {"weight", "multiple of 16", "250"});
}

TEST(Validation, ScaleDtypeShapeAndLayout) {
  expect_error([](Args& a) { a.input_scale->dtype = DType::kBFloat16; }, {"input_scale.dtype", "float32"});
  expect_error([](Args& a) { a.weight_scale->dtype = DType::kFloat16; }, {"weight_scale.dtype", "float32"});
  expect_error([](Args& a) { a.input_scale = TensorView::matrix(fake(0x300000), DType::kFloat32, 64, 3, 0); },
               {"input_scale", "(64, 4) or its transpose (4, 64)", "(64, 3)"});
  expect_error([](Args& a) { a.weight_scale = TensorView::matrix(fake(0x400000), DType::kFloat32, 3, 4, 0); },
               {"weight_scale", "(2, 4)", "(256, 4)", "(3, 4)"});
  // Neither row- nor column-major (a transposed view with a short stride).
  expect_error(
      [](Args& a) { a.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, 64, 4, 2, 1, 0); },
      {"input_scale strides", "row-major", "column-major", "(2, 1)"});
  expect_error(
      [](Args& a) { a.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, 64, 4, 1, 32, 0); },
      {"input_scale strides", "(1, 32)"});
  expect_error([](Args& a) { a.input_scale->data = fake(0x300002); }, {"input_scale data pointer", "4-byte"});
}

TEST(Validation, OutShapeDtypeAndStride) {
  expect_error([](Args& a) { a.out = TensorView::matrix(fake(0x500000), DType::kBFloat16, 64, 128, 0); },
               {"out", "(64, 256)", "(64, 128)"});
  expect_error([](Args& a) { a.out.dtype = DType::kFloat8E4M3; }, {"out.dtype", "float8_e4m3"});
  expect_error([](Args& a) { a.out_dtype = DType::kFloat32; }, {"out_dtype", "bfloat16", "float32"});
  expect_error([](Args& a) { a.out.strides[0] = 200; }, {"out strides", "row stride >= 256", "(200, 1)"});
  expect_error([](Args& a) { a.out.strides[0] = 260; }, {"out strides", "multiple of 16 bytes", "(260, 1)"});
  expect_error([](Args& a) { a.out.strides[1] = 2; }, {"out strides", "column stride 1"});
  expect_error([](Args& a) { a.input.strides[0] = 1024 + 8; }, {"input strides", "multiple of 16 bytes"});
  expect_error([](Args& a) { a.out.strides[0] = int64_t{1} << 50; }, {"out strides", "below 2^36"});
}

TEST(Validation, PointerAlignment) {
  expect_error([](Args& a) { a.input.data = fake(0x100008); }, {"input data pointer", "16-byte"});
  expect_error([](Args& a) { a.weight.data = fake(0x200001); }, {"weight data pointer", "16-byte"});
  expect_error([](Args& a) { a.out.data = fake(0x500004); }, {"out data pointer", "16-byte"});
  expect_error([](Args& a) { a.weight.data = nullptr; }, {"weight", "non-null"});
}

TEST(Validation, DevicesMustMatch) {
  expect_error([](Args& a) { a.input.device = TensorView::kHostDevice; }, {"input.device", "host memory"});
  expect_error([](Args& a) { a.weight.device = 1; }, {"weight.device", "cuda:0", "cuda:1"});
  expect_error([](Args& a) { a.weight_scale->device = 2; }, {"weight_scale.device", "cuda:2"});
}

TEST(Validation, OutMayNotAliasAnInput) {
  expect_error([](Args& a) { a.out.data = a.weight.data; }, {"out", "disjoint from weight"});
}

TEST(Validation, NonHopperDeviceIsRejected) {
  for (int capability : {80, 89, 100, 120}) {
    try {
      api::require_hopper(0, capability);
      ADD_FAILURE() << "capability " << capability << " accepted";
    } catch (const Error& e) {
      // A bad argument, as FlashInfer reports it (ValueError), worded so that its callers' matches hold.
      EXPECT_EQ(e.kind(), Error::Kind::kInvalidArgument);
      EXPECT_NE(std::string(e.what()).find("only supported on SM90 (Hopper) architecture"), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("fp8_blockscale_gemm_sm90: device: expected "), std::string::npos)
          << e.what();
    }
  }
  EXPECT_NO_THROW(api::require_hopper(0, 90));
}

TEST(Validation, PublicEntryValidatesBeforeTouchingTheDevice) {
  // Through the public function too: the argument error wins over "no GPU here".
  Args args;
  args.out.dtype = DType::kFloat8E4M3;
  try {
    fp8_blockscale_gemm_sm90(args.input, args.weight, args.input_scale, args.weight_scale, args.out);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("out.dtype"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace blockgemm

namespace blockgemm {
namespace {

// The caller's workspace is checked before anything touches the device.
void expect_workspace_error(const Workspace& workspace, const char* fragment) {
  const TensorView input = TensorView::matrix(fake(0x100000), DType::kBFloat16, 64, 512, 0);
  const TensorView weight = TensorView::matrix(fake(0x200000), DType::kFloat8E4M3, 256, 512, 0);
  const TensorView weight_scale = TensorView::matrix(fake(0x400000), DType::kFloat32, 2, 4, 0);
  const TensorView out = TensorView::matrix(fake(0x500000), DType::kBFloat16, 64, 256, 0);
  try {
    fp8_blockscale_gemm_sm90(input, weight, std::nullopt, weight_scale, out, std::nullopt, nullptr,
                             workspace);
    ADD_FAILURE() << "no error for " << fragment;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("workspace"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(Validation, CallersWorkspaceIsChecked) {
  expect_workspace_error({fake(0x800000), 16}, "expected at least");
  expect_workspace_error({nullptr, 1 << 20}, "non-null");
  expect_workspace_error({fake(0x800010), 1 << 20}, "256-byte aligned");
  expect_workspace_error({fake(0x100000), 1 << 20}, "disjoint from input");
  expect_workspace_error({fake(0x4FFF00), 1 << 20}, "disjoint from");
}

}  // namespace
}  // namespace blockgemm

namespace blockgemm {
namespace {

TEST(Validation, AllocatingFormChecksEverythingBeforeAllocating) {
  Args args;
  auto call = [&](std::optional<DType> out_dtype) {
    (void)fp8_blockscale_gemm_sm90(args.input, args.weight, args.input_scale, args.weight_scale, out_dtype);
  };
  try {
    call(DType::kFloat8E4M3);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::kInvalidArgument) << e.what();
    EXPECT_NE(std::string(e.what()).find("out_dtype"), std::string::npos) << e.what();
  }
  args.input.device = TensorView::kHostDevice;
  try {
    call(std::nullopt);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("input.device"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace blockgemm

// FlashInfer's fp8_blockscale_gemm_sm90 is the function this library replaces: its callers' input-scale
// layout is accepted, and its error wording is carried inside ours.
namespace blockgemm {
namespace {

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

// Expects `call` to throw Error of `kind` whose message contains every fragment.
void expect_message(const std::function<void()>& call, std::initializer_list<const char*> fragments,
                    Error::Kind kind = Error::Kind::kInvalidArgument) {
  try {
    call();
    ADD_FAILURE() << "no error for fragments starting with '" << *fragments.begin() << "'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const char* fragment : fragments)
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
          << "message '" << e.what() << "' lacks '" << fragment << "'";
  }
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
    try {
      validated(a);
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), Error::Kind::kInvalidArgument) << e.what();
      for (const char* fragment : error.fragments)
        EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
            << "message '" << e.what() << "' lacks '" << fragment << "'";
    }
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
    auto check = [&](const std::function<void()>& call) {
      try {
        call();
        ADD_FAILURE() << "no error";
      } catch (const Error& e) {
        EXPECT_EQ(e.kind(), Error::Kind::kInvalidArgument) << e.what();
        for (const char* fragment : error.fragments)
          EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos)
              << "message '" << e.what() << "' lacks '" << fragment << "'";
      }
    };
    check([&] { fp8_blockscale_gemm_sm90(a.input, a.weight, a.input_scale, a.weight_scale, a.out); });
    check([&] { (void)fp8_blockscale_gemm_sm90(a.input, a.weight, a.input_scale, a.weight_scale); });
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
