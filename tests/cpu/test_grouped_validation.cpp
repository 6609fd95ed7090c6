// The grouped GEMM's argument validation, group-table checks and heuristics: all host-side, so checked here
// without a GPU. Pointers are fake (never dereferenced) except for the host-memory tables given to
// validate_group_offsets / validate_group_index.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "api/grouped_validate.h"
#include "blockgemm/grouped.h"
#include "heuristics/heuristics.h"
#include "validation_test_util.h"

namespace blockgemm {
namespace {

using testing::expect_message;
using testing::fake;
using testing::kDevice;
const int32_t* fake_int(uintptr_t address) {
  return reinterpret_cast<const int32_t*>(address);
}

// ---- TensorView's rank-3 form ---------------------------------------------------------------------------

TEST(TensorViewRank3, Tensor3IsContiguousAndCountsEveryElement) {
  const TensorView t = TensorView::tensor3(fake(0x1000), DType::kFloat8E4M3, 4, 64, 512, kDevice);
  EXPECT_EQ(t.rank, 3);
  EXPECT_EQ(t.shape[0], 4);
  EXPECT_EQ(t.shape[2], 512);
  EXPECT_EQ(t.strides[0], 64 * 512);
  EXPECT_EQ(t.strides[1], 512);
  EXPECT_EQ(t.strides[2], 1);
  EXPECT_EQ(t.numel(), 4 * 64 * 512);
  // The rank-1 and rank-2 forms count as before.
  EXPECT_EQ(TensorView::matrix(fake(0x1000), DType::kFloat32, 3, 5, kDevice).numel(), 15);
  TensorView v = TensorView::matrix(fake(0x1000), DType::kFloat32, 7, 1, kDevice);
  v.rank = 1;
  EXPECT_EQ(v.numel(), 7);
  EXPECT_EQ(v.cols(), 1);
  EXPECT_EQ(TensorView{}.numel(), 0);
}

// ---- contiguous layout -----------------------------------------------------------------------------------

// A valid contiguous problem: G = 4 groups of N = 256, K = 512, M_total = 300 rows, fp8, per-block weight
// scales, offsets; each test breaks one thing.
struct Contiguous {
  int64_t g = 4, m = 300, n = 256, k = 512;
  TensorView input = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, 300, 512, kDevice);
  TensorView weight = TensorView::tensor3(fake(0x1000000), DType::kFloat8E4M3, 4, 256, 512, kDevice);
  std::optional<TensorView> input_scale =
      TensorView::matrix(fake(0x300000), DType::kFloat32, 300, 4, kDevice);
  std::optional<TensorView> weight_scale =
      TensorView::tensor3(fake(0x400000), DType::kFloat32, 4, 2, 4, kDevice);
  GroupLayout groups = GroupLayout::from_offsets(Int32View::vector(fake_int(0x500000), 5, kDevice));
  TensorView out = TensorView::matrix(fake(0x2000000), DType::kBFloat16, 300, 256, kDevice);
  std::optional<DType> out_dtype;

  api::GroupedProblem validate() const {
    return api::validate_grouped_contiguous(input, weight, input_scale, weight_scale, groups, out, out_dtype);
  }
};

void expect_contiguous_error(const std::function<void(Contiguous&)>& breaker,
                             std::initializer_list<const char*> fragments,
                             Error::Kind kind = Error::Kind::kInvalidArgument) {
  Contiguous args;
  breaker(args);
  expect_message([&] { args.validate(); }, fragments, kind);
}

TEST(GroupedValidation, ValidContiguousArgumentsPass) {
  const Contiguous args;
  const api::GroupedProblem p = args.validate();
  EXPECT_EQ(p.num_groups, 4);
  EXPECT_EQ(p.m, 300);
  EXPECT_EQ(p.args.gemm.m, 300);
  EXPECT_EQ(p.args.gemm.n, 256);
  EXPECT_EQ(p.args.gemm.k, 512);
  EXPECT_EQ(p.args.gemm.b_row_stride, 512);
  EXPECT_FALSE(p.args.gemm.per_row_weight_scale);
  EXPECT_EQ(p.args.num_groups, 4);
  EXPECT_EQ(p.args.table_kind, kernels::GroupTableKind::kOffsets);
  EXPECT_EQ(p.args.table, fake_int(0x500000));
  EXPECT_EQ(p.args.scale_b_group_stride, 8);
  EXPECT_EQ(p.args.scale_a_group_stride, 0);
  EXPECT_EQ(p.group_index, nullptr);
}

TEST(GroupedValidation, ContiguousVariantsPass) {
  Contiguous args;
  args.weight_scale = TensorView::tensor3(fake(0x400000), DType::kFloat32, 4, 256, 4, kDevice);
  EXPECT_TRUE(args.validate().args.gemm.per_row_weight_scale);
  // Column-major per-group weight scales with a padded group stride.
  args.weight_scale = TensorView::strided3(fake(0x400000), DType::kFloat32, 4, 2, 4, 16, 1, 2, kDevice);
  EXPECT_EQ(args.validate().args.gemm.scale_b_k_stride, 2);
  EXPECT_EQ(args.validate().args.scale_b_group_stride, 16);
  // Column-major input scale.
  args.input_scale = TensorView::strided(fake(0x300000), DType::kFloat32, 300, 4, 1, 304, kDevice);
  EXPECT_EQ(args.validate().args.gemm.scale_a_k_stride, 304);
  // The group index form, bf16 input.
  args.groups = GroupLayout::from_group_index(Int32View::vector(fake_int(0x500000), 300, kDevice));
  args.input.dtype = DType::kBFloat16;
  args.input_scale.reset();
  const api::GroupedProblem p = args.validate();
  EXPECT_EQ(p.args.table_kind, kernels::GroupTableKind::kRanges);
  EXPECT_EQ(p.group_index, fake_int(0x500000));
  EXPECT_TRUE(p.args.gemm.quantize_input);
  // No rows at all.
  Contiguous empty;
  empty.input.shape[0] = 0;
  empty.input_scale->shape[0] = 0;
  empty.out.shape[0] = 0;
  EXPECT_EQ(empty.validate().m, 0);
}

TEST(GroupedValidation, ContiguousRanksAndDtypes) {
  expect_contiguous_error(
      [](Contiguous& a) {
        a.input = TensorView::tensor3(fake(0x100000), DType::kFloat8E4M3, 1, 300, 512, kDevice);
      },
      {"grouped_gemm_contiguous: input", "2-D tensor", "3-D"});
  expect_contiguous_error(
      [](Contiguous& a) {
        a.weight = TensorView::matrix(fake(0x1000000), DType::kFloat8E4M3, 1024, 512, kDevice);
      },
      {"weight", "3-D tensor (G, N, K)", "2-D tensor"});
  expect_contiguous_error([](Contiguous& a) { a.weight.dtype = DType::kBFloat16; },
                          {"weight.dtype", "float8_e4m3", "per_block_cast_to_fp8", "got bfloat16"});
  expect_contiguous_error([](Contiguous& a) { a.weight.dtype = DType::kFloat16; },
                          {"weight.dtype", "got float16"});
  expect_contiguous_error([](Contiguous& a) { a.input.dtype = DType::kFloat32; },
                          {"input.dtype", "float8_e4m3 or bfloat16", "float32"});
  expect_contiguous_error([](Contiguous& a) { a.input.dtype = DType::kBFloat16; },
                          {"input_scale", "None for bfloat16 input", "a tensor"});
  expect_contiguous_error([](Contiguous& a) { a.input_scale.reset(); }, {"input_scale", "fp32", "None"});
  expect_contiguous_error([](Contiguous& a) { a.weight_scale.reset(); },
                          {"weight_scale", "(G, ceil(N/128), K/128) or (G, N, K/128)", "None"});
  expect_contiguous_error([](Contiguous& a) { a.out.dtype = DType::kFloat32; },
                          {"out.dtype", "bfloat16", "float32"}, Error::Kind::kNotImplemented);
  expect_contiguous_error([](Contiguous& a) { a.out.dtype = DType::kFloat8E4M3; },
                          {"out.dtype", "float8_e4m3"});
  expect_contiguous_error([](Contiguous& a) { a.out_dtype = DType::kFloat16; },
                          {"out_dtype", "out's dtype bfloat16", "float16"});
}

TEST(GroupedValidation, ContiguousShapes) {
  expect_contiguous_error([](Contiguous& a) { a.weight.shape[2] = 640; },
                          {"weight", "(G, N, 512)", "(4, 256, 640)"});
  expect_contiguous_error(
      [](Contiguous& a) {
        a.input.shape[1] = a.weight.shape[2] = 500;
        a.input.strides[0] = 512;
      },
      {"input", "K a multiple of 128", "500"});
  expect_contiguous_error([](Contiguous& a) { a.weight.shape[1] = 250; },
                          {"weight", "N a multiple of 16", "250"});
  expect_contiguous_error([](Contiguous& a) { a.weight.shape[0] = 0; },
                          {"weight", "G >= 1", "(0, 256, 512)"});
  expect_contiguous_error([](Contiguous& a) { a.out.shape[0] = 299; },
                          {"out", "shape (300, 256)", "(299, 256)"});
  expect_contiguous_error([](Contiguous& a) { a.out.shape[1] = 128; },
                          {"out", "shape (300, 256)", "(300, 128)"});
  expect_contiguous_error([](Contiguous& a) { a.input_scale->shape[1] = 5; },
                          {"input_scale", "shape (300, 4)", "(300, 5)"});
  expect_contiguous_error([](Contiguous& a) { a.input_scale->dtype = DType::kBFloat16; },
                          {"input_scale.dtype", "float32", "bfloat16"});
  expect_contiguous_error([](Contiguous& a) { a.input_scale->rank = 3; }, {"input_scale", "2-D tensor"});
}

TEST(GroupedValidation, GroupCountMismatches) {
  expect_contiguous_error(
      [](Contiguous& a) {
        a.weight_scale = TensorView::tensor3(fake(0x400000), DType::kFloat32, 3, 2, 4, kDevice);
      },
      {"weight_scale", "G = 4 groups (weight's)", "(3, 2, 4)"});
  expect_contiguous_error(
      [](Contiguous& a) {
        a.groups = GroupLayout::from_offsets(Int32View::vector(fake_int(0x500000), 4, kDevice));
      },
      {"offsets", "shape (5,)", "G + 1 for the weight's 4 groups", "got (4,)"});
  expect_contiguous_error(
      [](Contiguous& a) {
        a.groups = GroupLayout::from_group_index(Int32View::vector(fake_int(0x500000), 299, kDevice));
      },
      {"group_index", "shape (300,)", "one group per input row", "(299,)"});
}

TEST(GroupedValidation, WeightScaleShapesAndLayouts) {
  expect_contiguous_error(
      [](Contiguous& a) {
        a.weight_scale = TensorView::tensor3(fake(0x400000), DType::kFloat32, 4, 3, 4, kDevice);
      },
      {"weight_scale", "(4, 2, 4) for 128x128 blocks or (4, 256, 4) for 1x128 row groups", "(4, 3, 4)"});
  expect_contiguous_error([](Contiguous& a) { a.weight_scale->dtype = DType::kFloat16; },
                          {"weight_scale.dtype", "float32", "float16"});
  expect_contiguous_error(
      [](Contiguous& a) {
        a.weight_scale = TensorView::strided3(fake(0x400000), DType::kFloat32, 4, 2, 4, 8, 3, 2, kDevice);
      },
      {"weight_scale strides", "row-major", "column-major", "(8, 3, 2)"});
  expect_contiguous_error(
      [](Contiguous& a) {
        a.weight_scale = TensorView::strided3(fake(0x400000), DType::kFloat32, 4, 2, 4, -8, 4, 1, kDevice);
      },
      {"weight_scale strides", "group stride >= 0", "(-8, 4, 1)"});
  expect_contiguous_error([](Contiguous& a) { a.weight_scale->data = fake(0x400002); },
                          {"weight_scale data pointer", "4-byte aligned"});
  expect_contiguous_error([](Contiguous& a) { a.weight_scale->rank = 2; },
                          {"weight_scale", "3-D tensor", "2-D"});
}

TEST(GroupedValidation, StridesAlignmentAndTables) {
  // The weight's groups must stack into one (G N, K) matrix.
  expect_contiguous_error(
      [](Contiguous& a) { a.weight.strides[0] = 256 * 512 + 64; },
      {"weight strides", "group stride of 256 rows x row stride 512 = 131072", "(131136, 512, 1)"});
  expect_contiguous_error([](Contiguous& a) { a.weight.strides[2] = 2; },
                          {"weight strides", "column stride 1"});
  expect_contiguous_error(
      [](Contiguous& a) {
        a.weight.strides[1] = 520;
        a.weight.strides[0] = 256 * 520;
      },
      {"weight strides", "multiple of 16 bytes"});
  expect_contiguous_error([](Contiguous& a) { a.weight.data = fake(0x1000008); },
                          {"weight data pointer", "16-byte"});
  expect_contiguous_error([](Contiguous& a) { a.input.strides[0] = 520; },
                          {"input strides", "multiple of 16 bytes"});
  expect_contiguous_error([](Contiguous& a) { a.out.strides[0] = 260; },
                          {"out strides", "multiple of 16 bytes"});
  expect_contiguous_error([](Contiguous& a) { a.groups.table.stride = 2; }, {"offsets stride", "1", "got 2"});
  expect_contiguous_error([](Contiguous& a) { a.groups.table.data = nullptr; },
                          {"offsets", "non-null", "nullptr"});
  expect_contiguous_error([](Contiguous& a) { a.groups.table.data = fake_int(0x500002); },
                          {"offsets data pointer", "4-byte aligned"});
  expect_contiguous_error([](Contiguous& a) { a.groups.table.device = 1; },
                          {"offsets.device", "cuda:0", "cuda:1"});
}

TEST(GroupedValidation, DevicesAndOverlaps) {
  expect_contiguous_error([](Contiguous& a) { a.weight.device = 1; }, {"weight.device", "cuda:0", "cuda:1"});
  expect_contiguous_error([](Contiguous& a) { a.weight_scale->device = 1; }, {"weight_scale.device"});
  expect_contiguous_error([](Contiguous& a) { a.out.device = TensorView::kHostDevice; },
                          {"out.device", "cuda:0", "host memory"});
  expect_contiguous_error(
      [](Contiguous& a) {
        a.input.device = TensorView::kHostDevice;
        a.weight.device = a.out.device = a.input_scale->device = a.weight_scale->device =
            a.groups.table.device = TensorView::kHostDevice;
      },
      {"input.device", "a CUDA device", "host memory"});
  expect_contiguous_error([](Contiguous& a) { a.out.data = fake(0x100000 + 4096); },
                          {"out", "memory disjoint from input", "overlapping"});
  expect_contiguous_error([](Contiguous& a) { a.groups.table.data = fake_int(0x2000000 + 1024); },
                          {"out", "memory disjoint from offsets", "overlapping"});
  expect_contiguous_error([](Contiguous& a) { a.weight_scale->data = fake(0x2000000 + 64); },
                          {"out", "memory disjoint from weight_scale"});
}

// ---- masked layout ---------------------------------------------------------------------------------------

// A valid masked problem: G = 8 groups of M_max = 64 rows, N = 512, K = 256; each test breaks one thing.
struct Masked {
  TensorView input = TensorView::tensor3(fake(0x100000), DType::kFloat8E4M3, 8, 64, 256, kDevice);
  TensorView weight = TensorView::tensor3(fake(0x1000000), DType::kFloat8E4M3, 8, 512, 256, kDevice);
  std::optional<TensorView> input_scale =
      TensorView::tensor3(fake(0x300000), DType::kFloat32, 8, 64, 2, kDevice);
  std::optional<TensorView> weight_scale =
      TensorView::tensor3(fake(0x400000), DType::kFloat32, 8, 512, 2, kDevice);
  Int32View masked_m = Int32View::vector(fake_int(0x500000), 8, kDevice);
  std::optional<int64_t> expected_m = 16;
  TensorView out = TensorView::tensor3(fake(0x2000000), DType::kBFloat16, 8, 64, 512, kDevice);

  api::GroupedProblem validate() const {
    return api::validate_grouped_masked(input, weight, input_scale, weight_scale, masked_m, expected_m, out,
                                        std::nullopt);
  }
};

void expect_masked_error(const std::function<void(Masked&)>& breaker,
                         std::initializer_list<const char*> fragments,
                         Error::Kind kind = Error::Kind::kInvalidArgument) {
  Masked args;
  breaker(args);
  expect_message([&] { args.validate(); }, fragments, kind);
}

TEST(GroupedValidation, ValidMaskedArgumentsPass) {
  Masked args;
  api::GroupedProblem p = args.validate();
  EXPECT_EQ(p.m, 8 * 64);
  EXPECT_EQ(p.m_max, 64);
  EXPECT_EQ(p.expected_m, 16);
  EXPECT_EQ(p.args.table_kind, kernels::GroupTableKind::kMasked);
  EXPECT_EQ(p.args.rows_per_group, 64);
  EXPECT_EQ(p.args.gemm.a_row_stride, 256);
  EXPECT_EQ(p.args.gemm.out_row_stride, 512);
  EXPECT_TRUE(p.args.gemm.per_row_weight_scale);
  EXPECT_EQ(p.args.scale_a_group_stride, 64 * 2);
  EXPECT_EQ(p.args.scale_a_group_rows, 64);
  EXPECT_EQ(p.args.gemm.scale_a_row_stride, 2);
  EXPECT_EQ(p.args.scale_b_group_stride, 512 * 2);
  // expected_m defaults to M_max; a column-major input scale per group (DeepGEMM's MN-major layout).
  args.expected_m.reset();
  args.input_scale = TensorView::strided3(fake(0x300000), DType::kFloat32, 8, 64, 2, 2 * 64, 1, 64, kDevice);
  p = args.validate();
  EXPECT_EQ(p.expected_m, 64);
  EXPECT_EQ(p.args.gemm.scale_a_row_stride, 1);
  EXPECT_EQ(p.args.gemm.scale_a_k_stride, 64);
  // bf16 input: no input scale.
  args.input.dtype = DType::kBFloat16;
  args.input.strides[0] = 64 * 256;
  args.input_scale.reset();
  EXPECT_TRUE(args.validate().args.gemm.quantize_input);
}

TEST(GroupedValidation, MaskedErrors) {
  expect_masked_error([](Masked& a) { a.masked_m.size = 7; },
                      {"grouped_gemm_masked: masked_m", "shape (8,)", "weight's 8", "got (7,)"});
  expect_masked_error(
      [](Masked& a) {
        a.input = TensorView::tensor3(fake(0x100000), DType::kFloat8E4M3, 4, 64, 256, kDevice);
      },
      {"input", "G = 8 (weight's groups)", "(4, 64, 256)"});
  expect_masked_error(
      [](Masked& a) { a.input = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, 512, 256, kDevice); },
      {"input", "3-D tensor (G, M_max, K)", "2-D"});
  expect_masked_error(
      [](Masked& a) { a.out = TensorView::tensor3(fake(0x2000000), DType::kBFloat16, 8, 32, 512, kDevice); },
      {"out", "shape (8, 64, 512)", "(8, 32, 512)"});
  expect_masked_error(
      [](Masked& a) {
        a.input_scale = TensorView::tensor3(fake(0x300000), DType::kFloat32, 8, 64, 3, kDevice);
      },
      {"input_scale", "shape (8, 64, 2)", "(8, 64, 3)"});
  expect_masked_error(
      [](Masked& a) { a.input_scale = TensorView::matrix(fake(0x300000), DType::kFloat32, 512, 2, kDevice); },
      {"input_scale", "3-D tensor (G, M_max, K/128)"});
  expect_masked_error(
      [](Masked& a) {
        a.weight_scale = TensorView::tensor3(fake(0x400000), DType::kFloat32, 6, 512, 2, kDevice);
      },
      {"weight_scale", "G = 8 groups", "(6, 512, 2)"});
  expect_masked_error(
      [](Masked& a) {
        a.weight = TensorView::tensor3(fake(0x1000000), DType::kFloat8E4M3, 8, 512, 384, kDevice);
      },
      {"weight", "(G, N, 256)", "(8, 512, 384)"});
  expect_masked_error([](Masked& a) { a.expected_m = 0; }, {"expected_m", ">= 1", "got 0"});
  expect_masked_error(
      [](Masked& a) { a.input.strides[0] = 64 * 256 + 128; },
      {"input strides", "group stride of 64 rows x row stride 256 = 16384", "(16512, 256, 1)"});
  expect_masked_error([](Masked& a) { a.out.strides[0] = 64 * 512 * 2; }, {"out strides", "group stride"});
  expect_masked_error([](Masked& a) { a.masked_m.device = 3; }, {"masked_m.device", "cuda:0", "cuda:3"});
  expect_masked_error([](Masked& a) { a.masked_m.data = fake_int(0x2000000 + 512); },
                      {"out", "memory disjoint from masked_m"});
  expect_masked_error([](Masked& a) { a.out.dtype = DType::kFloat16; }, {"out.dtype", "bfloat16"},
                      Error::Kind::kNotImplemented);
  expect_masked_error([](Masked& a) { a.weight.dtype = DType::kBFloat16; }, {"weight.dtype", "float8_e4m3"});
}

// ---- group tables: explicit validation (host memory, so no GPU is needed) --------------------------------

void validate_offsets(const std::vector<int32_t>& offsets, int64_t m_total) {
  validate_group_offsets(
      Int32View::vector(offsets.data(), static_cast<int64_t>(offsets.size()), TensorView::kHostDevice),
      m_total);
}
void validate_index(const std::vector<int32_t>& index, int64_t groups) {
  validate_group_index(
      Int32View::vector(index.data(), static_cast<int64_t>(index.size()), TensorView::kHostDevice), groups);
}

TEST(GroupTables, ValidTablesPass) {
  EXPECT_NO_THROW(validate_offsets({0, 0, 5, 6, 100}, 100));  // an empty group, a group of 1 row
  EXPECT_NO_THROW(validate_offsets({3, 7, 9}, 20));           // rows outside every group are allowed
  EXPECT_NO_THROW(validate_index({0, 0, -1, -1, 2, 2, 2, -1, 1}, 3));
  EXPECT_NO_THROW(validate_index({}, 3));
  EXPECT_NO_THROW(validate_index({-1, -1}, 1));
}

TEST(GroupTables, BadOffsetsAreNamed) {
  expect_message(
      [] {
        validate_offsets({0, 5, 4, 8}, 10);
      },
      {"validate_group_offsets: offsets[2]", ">= offsets[1] = 5", "must not decrease", "got 4"});
  expect_message([] { validate_offsets({0, 5, 11}, 10); }, {"offsets[2]", "<= M_total = 10", "got 11"});
  expect_message([] { validate_offsets({-1, 5}, 10); }, {"offsets[0]", ">= 0", "got -1"});
  expect_message([] { validate_offsets({0}, 10); }, {"offsets", "G >= 1", "(1,)"});
}

TEST(GroupTables, BadIndicesAreNamed) {
  expect_message(
      [] {
        validate_index({0, 0, 3, -1}, 3);
      },
      {"validate_group_index: group_index[2]", "[0, 3) or -1", "got 3"});
  expect_message([] { validate_index({0, -2}, 3); }, {"group_index[1]", "got -2"});
  expect_message(
      [] {
        validate_index({0, 0, 1, 0}, 2);
      },
      {"group_index[3]", "one contiguous run", "group 0", "row 1"});
  expect_message([] { validate_index({1, -1, 1}, 2); }, {"group_index[2]", "one contiguous run"});
}

TEST(GroupTables, StridedOrNullTablesAreRejected) {
  const std::vector<int32_t> offsets = {0, 1, 2};
  Int32View view = Int32View::vector(offsets.data(), 3, TensorView::kHostDevice);
  view.stride = 2;
  expect_message([&] { validate_group_offsets(view, 10); }, {"offsets stride", "got 2"});
  view = Int32View::vector(nullptr, 3, TensorView::kHostDevice);
  expect_message([&] { validate_group_offsets(view, 10); }, {"offsets", "non-null"});
}

// ---- workspace sizes
// ---------------------------------------------------------------------------------------

TEST(GroupedWorkspace, BytesFollowTheLayoutAndThePlan) {
  const Contiguous c;
  EXPECT_EQ(grouped_gemm_contiguous_workspace_bytes(c.input, c.weight, c.groups), 0u) << "fp8 with offsets";
  const GroupLayout index =
      GroupLayout::from_group_index(Int32View::vector(fake_int(0x500000), 300, kDevice));
  EXPECT_EQ(grouped_gemm_contiguous_workspace_bytes(c.input, c.weight, index), 256u) << "4 groups' ranges";
  TensorView bf16 = c.input;
  bf16.dtype = DType::kBFloat16;
  // 300 rows over 4 groups (75 per group): a normal tile, the input quantized into the workspace.
  EXPECT_GE(grouped_gemm_contiguous_workspace_bytes(bf16, c.weight, c.groups), std::size_t{300 * 512});
  // 16 groups of 300 / 16 = 19 rows: the 32-token swapAB tile quantizes its input itself.
  TensorView weight16 = TensorView::tensor3(fake(0x1000000), DType::kFloat8E4M3, 16, 256, 512, kDevice);
  EXPECT_EQ(grouped_gemm_contiguous_workspace_bytes(bf16, weight16, c.groups), 0u);

  const Masked m;
  TensorView masked_bf16 = m.input;
  masked_bf16.dtype = DType::kBFloat16;
  EXPECT_EQ(grouped_gemm_masked_workspace_bytes(m.input, m.weight, 16), 0u);
  EXPECT_EQ(grouped_gemm_masked_workspace_bytes(masked_bf16, m.weight, 16), 0u) << "quantized in the kernel";
  EXPECT_GE(grouped_gemm_masked_workspace_bytes(masked_bf16, m.weight, 64), std::size_t{8 * 64 * 256})
      << "the 64-token tile reads a quantized copy";
  EXPECT_GE(grouped_gemm_masked_workspace_bytes(masked_bf16, m.weight), std::size_t{8 * 64 * 256})
      << "expected_m defaults to M_max";
  EXPECT_EQ(contiguous_group_alignment(), 128);
}

// bench/NOTES.md #71, #72: room for the M-contiguous copy of row-major fp8 input scales, (K/128, ceil4(M))
// floats, where the contiguous plan is a 128-row tile estimated at 50 us or more (the 128x192 pairs the
// grouped suite plans included); never for bf16 input or the masked layout.
TEST(GroupedWorkspace, LongContiguousPlansHoldTheInputScaleCopy) {
  const heuristics::DeviceModel h100;
  const int64_t g = 2, m = 4094, n = 4096, k = 7168;
  const TensorView input = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, m, k, kDevice);
  const TensorView weight = TensorView::tensor3(fake(0x1000000), DType::kFloat8E4M3, g, n, k, kDevice);
  const GroupLayout offsets =
      GroupLayout::from_offsets(Int32View::vector(fake_int(0x500000), g + 1, kDevice));
  const heuristics::GemmPlan plan = heuristics::plan_grouped_contiguous(m, g, n, k, false, h100);
  ASSERT_LT(plan.tile.block_m, 256) << plan.describe();
  ASSERT_TRUE(heuristics::transposes_grouped_input_scales(plan, m)) << plan.describe();
  const std::size_t copy = std::size_t{4096} * (k / 128) * 4;  // ceil4(4094) rows, already 256-byte whole
  EXPECT_EQ(grouped_gemm_contiguous_workspace_bytes(input, weight, offsets), copy);
  // Given the input scales: row-major ones keep the room, M-contiguous ones need no copy.
  const TensorView row_major = TensorView::matrix(fake(0x2000000), DType::kFloat32, m, k / 128, kDevice);
  const TensorView m_contiguous =
      TensorView::strided(fake(0x2000000), DType::kFloat32, m, k / 128, 1, 4096, kDevice);
  EXPECT_EQ(grouped_gemm_contiguous_workspace_bytes(input, weight, offsets, std::nullopt, row_major), copy);
  EXPECT_EQ(grouped_gemm_contiguous_workspace_bytes(input, weight, offsets, std::nullopt, m_contiguous), 0u);
  const GroupLayout index = GroupLayout::from_group_index(Int32View::vector(fake_int(0x500000), m, kDevice));
  EXPECT_EQ(grouped_gemm_contiguous_workspace_bytes(input, weight, index), 256 + copy) << "ranges first";
  TensorView bf16 = input;
  bf16.dtype = DType::kBFloat16;
  EXPECT_LE(grouped_gemm_contiguous_workspace_bytes(bf16, weight, offsets), std::size_t(m) * k + copy)
      << "bf16: the quantized input and its scales (M-contiguous already), no second scale copy";
  // A short plan (K = 512) makes no copy.
  const TensorView input_short = TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, m, 512, kDevice);
  const TensorView weight_short =
      TensorView::tensor3(fake(0x1000000), DType::kFloat8E4M3, g, n, 512, kDevice);
  EXPECT_EQ(grouped_gemm_contiguous_workspace_bytes(input_short, weight_short, offsets), 0u);
  const TensorView masked_input = TensorView::tensor3(fake(0x100000), DType::kFloat8E4M3, g, m, k, kDevice);
  // Masked (bench/NOTES.md #73): per group (K/128, ceil4(M_max)) floats where M_max <= 4 x expected M.
  EXPECT_EQ(grouped_gemm_masked_workspace_bytes(masked_input, weight, m), std::size_t{2} * 56 * 4096 * 4);
  EXPECT_EQ(grouped_gemm_masked_workspace_bytes(masked_input, weight, (m + 3) / 4),
            std::size_t{2} * 56 * 4096 * 4);
  EXPECT_EQ(grouped_gemm_masked_workspace_bytes(masked_input, weight, m / 5), 0u) << "M_max > 4x expected";
  const TensorView masked_m_contiguous =
      TensorView::strided3(fake(0x2000000), DType::kFloat32, g, m, k / 128, 56 * 4096, 1, 4096, kDevice);
  EXPECT_EQ(grouped_gemm_masked_workspace_bytes(masked_input, weight, m, std::nullopt, masked_m_contiguous),
            0u)
      << "M-contiguous already";
  const TensorView masked_row_major =
      TensorView::strided3(fake(0x2000000), DType::kFloat32, g, m, k / 128, m * 56, 56, 1, kDevice);
  EXPECT_EQ(grouped_gemm_masked_workspace_bytes(masked_input, weight, m, std::nullopt, masked_row_major),
            std::size_t{2} * 56 * 4096 * 4);
  // The grouped suite's 8 x 1024 rows at 4096 x 7168 plan the 128x192 pair: copied too (unlike a dense
  // 128x192 plan).
  const int64_t g8 = 8, m8 = 8 * 1024;
  const heuristics::GemmPlan pair = heuristics::plan_grouped_contiguous(m8, g8, n, k, false, h100);
  EXPECT_EQ(pair.tile.block_n, 192) << pair.describe();
  EXPECT_TRUE(heuristics::transposes_grouped_input_scales(pair, m8)) << pair.describe();
  EXPECT_EQ(grouped_gemm_contiguous_workspace_bytes(
                TensorView::matrix(fake(0x100000), DType::kFloat8E4M3, m8, k, kDevice),
                TensorView::tensor3(fake(0x10000000), DType::kFloat8E4M3, g8, n, k, kDevice),
                GroupLayout::from_offsets(Int32View::vector(fake_int(0x500000), g8 + 1, kDevice))),
            std::size_t{8192} * (k / 128) * 4);
}

}  // namespace
}  // namespace blockgemm
