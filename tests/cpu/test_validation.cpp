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
#include "validation_test_util.h"

namespace blockgemm {
namespace {

using blockgemm::testing::Args;
using blockgemm::testing::fake;
using blockgemm::testing::kDevice;

// Expects Error whose message contains every fragment, from a valid problem that `breaker` spoils.
void expect_error(const std::function<void(Args&)>& breaker, const std::vector<const char*>& fragments,
                  Error::Kind kind = Error::Kind::kInvalidArgument) {
  Args args;
  breaker(args);
  testing::expect_message([&] { args.validate(); }, fragments, kind);
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
