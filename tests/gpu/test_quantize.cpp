// GPU quantizers against the CPU reference: fp8 bytes and fp32 scale bits must be identical.
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "blockgemm/quantize.h"
#include "blockgemm/reference.h"
#include "gpu_test_util.h"

namespace blockgemm::testing {
namespace {

constexpr int64_t kGroup = reference::kGroupK;
constexpr uint8_t kPoisonByte = 0xFF;
constexpr std::size_t kGuardBytes = 256;

enum class Granularity { kPerToken, kPerBlock };

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

uint32_t float_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof(u));
  return u;
}

// Equal bits, or both NaN: the NaN payload of a NaN scale is not part of the contract.
bool same_scale(float a, float b) {
  return (std::isnan(a) && std::isnan(b)) || float_bits(a) == float_bits(b);
}

// Values exactly representable in bf16, so that the reference (fp32 input) and the GPU (bf16 input) see
// the same numbers.
std::vector<float> random_bf16_values(int64_t count, uint64_t seed, float stddev = 1.f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.f, stddev);
  std::vector<float> x(static_cast<std::size_t>(count));
  for (float& v : x) v = reference::bf16_to_float(reference::float_to_bf16(dist(rng)));
  return x;
}

struct Case {
  Granularity granularity = Granularity::kPerToken;
  int64_t rows = 1, cols = 128;
  ScaleLayout scale_layout = ScaleLayout::kRowMajor;
  int64_t x_row_padding = 0;    // elements; a multiple of 8
  int64_t out_row_padding = 0;  // bytes; a multiple of 8
  int64_t scale_padding = 0;    // extra leading-dimension elements of scales
};

std::string describe(const Case& c) {
  return std::string(c.granularity == Granularity::kPerToken ? "per-token" : "per-block") +
         " rows=" + std::to_string(c.rows) + " cols=" + std::to_string(c.cols) +
         (c.scale_layout == ScaleLayout::kRowMajor ? " scales row-major" : " scales col-major") +
         " x_pad=" + std::to_string(c.x_row_padding) + " out_pad=" + std::to_string(c.out_row_padding) +
         " scale_pad=" + std::to_string(c.scale_padding);
}

// Device buffers for one case, with poisoned outputs and a guard region after out and scales.
struct DeviceCase {
  Case spec;
  int64_t scale_rows = 0, scale_cols = 0;
  int64_t x_row_stride = 0, out_row_stride = 0, scale_row_stride = 0, scale_col_stride = 0;
  std::size_t out_bytes = 0, scale_elements = 0;
  DeviceBuffer x_dev, out_dev, scales_dev;
  TensorView x, out, scales;

  DeviceCase(const Case& c, const std::vector<float>& x_host) : spec(c) {
    scale_rows = c.granularity == Granularity::kPerToken ? c.rows : ceil_div(c.rows, kGroup);
    scale_cols = ceil_div(c.cols, kGroup);
    x_row_stride = c.cols + c.x_row_padding;
    out_row_stride = c.cols + c.out_row_padding;
    if (c.scale_layout == ScaleLayout::kRowMajor) {
      scale_row_stride = scale_cols + c.scale_padding;
      scale_col_stride = 1;
      scale_elements = static_cast<std::size_t>(scale_rows * scale_row_stride);
    } else {
      scale_row_stride = 1;
      scale_col_stride = scale_rows + c.scale_padding;
      scale_elements = static_cast<std::size_t>(scale_cols * scale_col_stride);
    }
    out_bytes = static_cast<std::size_t>(c.rows * out_row_stride);

    std::vector<uint16_t> x_bits(static_cast<std::size_t>(c.rows * x_row_stride), 0);
    for (int64_t r = 0; r < c.rows; ++r)
      for (int64_t col = 0; col < c.cols; ++col)
        x_bits[static_cast<std::size_t>(r * x_row_stride + col)] =
            reference::float_to_bf16(x_host[static_cast<std::size_t>(r * c.cols + col)]);
    x_dev = DeviceBuffer(x_bits.size() * sizeof(uint16_t));
    x_dev.upload(x_bits.data(), x_bits.size() * sizeof(uint16_t));
    out_dev = DeviceBuffer(out_bytes + kGuardBytes);
    scales_dev = DeviceBuffer(scale_elements * sizeof(float) + kGuardBytes);
    poison();

    const int device = current_device();
    x = TensorView::strided(x_dev.get(), DType::kBFloat16, c.rows, c.cols, x_row_stride, 1, device);
    out = TensorView::strided(out_dev.get(), DType::kFloat8E4M3, c.rows, c.cols, out_row_stride, 1, device);
    scales = TensorView::strided(scales_dev.get(), DType::kFloat32, scale_rows, scale_cols, scale_row_stride,
                                 scale_col_stride, device);
  }

  static int current_device() {
    int device = 0;
    check_cuda(cudaGetDevice(&device), "cudaGetDevice");
    return device;
  }

  void poison() {
    check_cuda(cudaMemset(out_dev.get(), kPoisonByte, out_dev.bytes()), "cudaMemset out");
    check_cuda(cudaMemset(scales_dev.get(), kPoisonByte, scales_dev.bytes()), "cudaMemset scales");
    // cudaMemset is asynchronous on the legacy stream, which a cudaStreamNonBlocking stream (the graph
    // replay below) does not wait for: under parallel ctest the poison once landed after the replay's
    // stores and every scale read back as poison. Wait for it here, whatever stream runs next.
    check_cuda(cudaDeviceSynchronize(), "poison");
  }

  void run(cudaStream_t stream = nullptr) {
    if (spec.granularity == Granularity::kPerToken)
      per_token_cast_to_fp8(x, out, scales, stream);
    else
      per_block_cast_to_fp8(x, out, scales, stream);
  }
};

struct Downloaded {
  std::vector<uint8_t> out;   // whole buffer, padding and guard included
  std::vector<float> scales;  // whole buffer
};

Downloaded download(const DeviceCase& d) {
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  Downloaded h;
  h.out.resize(d.out_dev.bytes());
  d.out_dev.download(h.out.data(), h.out.size());
  h.scales.resize(d.scales_dev.bytes() / sizeof(float));
  d.scales_dev.download(h.scales.data(), h.scales.size() * sizeof(float));
  return h;
}

// Compares every element with the reference, and checks that the bytes outside the views (row padding,
// scale padding, guard) still hold the poison. Reports the first few mismatches.
void expect_matches_reference(const DeviceCase& d, const std::vector<float>& x_host) {
  const Case& c = d.spec;
  const reference::Quantized ref = c.granularity == Granularity::kPerToken
                                       ? reference::per_token_cast_to_fp8(x_host.data(), c.rows, c.cols)
                                       : reference::per_block_cast_to_fp8(x_host.data(), c.rows, c.cols);
  ASSERT_EQ(ref.scale_rows, d.scale_rows);
  ASSERT_EQ(ref.scale_cols, d.scale_cols);
  const Downloaded h = download(d);
  const std::string where = describe(c);

  std::vector<bool> out_in_view(h.out.size(), false);
  int64_t value_mismatches = 0;
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int64_t col = 0; col < c.cols; ++col) {
      const std::size_t at = static_cast<std::size_t>(r * d.out_row_stride + col);
      out_in_view[at] = true;
      const uint8_t expected = ref.values[static_cast<std::size_t>(r * c.cols + col)];
      if (h.out[at] != expected && ++value_mismatches <= 5)
        ADD_FAILURE() << where << ": value (" << r << ", " << col << "): got 0x" << std::hex << int{h.out[at]}
                      << ", expected 0x" << int{expected} << std::dec
                      << " (x = " << x_host[static_cast<std::size_t>(r * c.cols + col)] << ")";
    }
  }
  EXPECT_EQ(value_mismatches, 0) << where;
  int64_t out_outside_written = 0;
  for (std::size_t i = 0; i < h.out.size(); ++i)
    if (!out_in_view[i] && h.out[i] != kPoisonByte) ++out_outside_written;
  EXPECT_EQ(out_outside_written, 0) << where << ": bytes outside out's view (padding, guard) were written";

  std::vector<bool> scale_in_view(h.scales.size(), false);
  int64_t scale_mismatches = 0;
  for (int64_t r = 0; r < d.scale_rows; ++r) {
    for (int64_t g = 0; g < d.scale_cols; ++g) {
      const std::size_t at = static_cast<std::size_t>(r * d.scale_row_stride + g * d.scale_col_stride);
      scale_in_view[at] = true;
      const float expected = ref.scales[static_cast<std::size_t>(r * d.scale_cols + g)];
      // The poison is a NaN too: a NaN scale must still have been written (the GPU's NaN is positive).
      const bool written = float_bits(h.scales[at]) != 0x01010101u * kPoisonByte;
      if ((!written || !same_scale(h.scales[at], expected)) && ++scale_mismatches <= 5)
        ADD_FAILURE() << where << ": scale (" << r << ", " << g << "): got 0x" << std::hex
                      << float_bits(h.scales[at]) << ", expected 0x" << float_bits(expected) << std::dec;
    }
  }
  EXPECT_EQ(scale_mismatches, 0) << where;
  const uint32_t poison_bits = 0x01010101u * kPoisonByte;
  int64_t scales_outside_written = 0;
  for (std::size_t i = 0; i < h.scales.size(); ++i)
    if (!scale_in_view[i] && float_bits(h.scales[i]) != poison_bits) ++scales_outside_written;
  EXPECT_EQ(scales_outside_written, 0) << where << ": scale padding or guard was written";
}

void run_and_check(const Case& c, const std::vector<float>& x_host) {
  DeviceCase d(c, x_host);
  d.run();
  check_cuda(cudaGetLastError(), "quantizer launch");
  expect_matches_reference(d, x_host);
}

// ---------------------------------------------------------------------------------------------------------

TEST(Quantize, RandomNormalMatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t row_counts[] = {1, 7, 130, 300};
  const int64_t col_counts[] = {128, 256, 7168, 136, 8};
  uint64_t seed = 1;
  for (Granularity granularity : {Granularity::kPerToken, Granularity::kPerBlock}) {
    for (int64_t rows : row_counts) {
      for (int64_t cols : col_counts) {
        for (ScaleLayout layout : {ScaleLayout::kRowMajor, ScaleLayout::kColumnMajor}) {
          Case c;
          c.granularity = granularity;
          c.rows = rows;
          c.cols = cols;
          c.scale_layout = layout;
          // Padded leading dimensions: the column-major case mimics an M padded to a multiple of 4.
          c.scale_padding = layout == ScaleLayout::kColumnMajor ? 3 : 1;
          run_and_check(c, random_bf16_values(rows * cols, ++seed));
        }
      }
    }
  }
}

TEST(Quantize, PaddedRowStrides) {
  BLOCKGEMM_REQUIRE_HOPPER();
  for (Granularity granularity : {Granularity::kPerToken, Granularity::kPerBlock}) {
    Case c;
    c.granularity = granularity;
    c.rows = 131;
    c.cols = 264;
    c.x_row_padding = 24;
    c.out_row_padding = 40;
    c.scale_layout = ScaleLayout::kColumnMajor;
    c.scale_padding = 5;
    run_and_check(c, random_bf16_values(c.rows * c.cols, 77));
  }
}

// Many rows x many groups: several warps, CTAs and grid-stride iterations per launch.
TEST(Quantize, LargeMatchesReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  for (Granularity granularity : {Granularity::kPerToken, Granularity::kPerBlock}) {
    Case c;
    c.granularity = granularity;
    c.rows = 4099;
    c.cols = 7168;
    run_and_check(c, random_bf16_values(c.rows * c.cols, 123, 3.f));
  }
}

// Groups with special contents. Per-token groups are 1x128, so each row below holds one kind of group per
// 128 columns; the same data quantized per block mixes them inside blocks.
std::vector<float> special_groups(int64_t rows, int64_t cols) {
  std::vector<float> x = random_bf16_values(rows * cols, 99);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  auto at = [&](int64_t r, int64_t c) -> float& { return x[static_cast<std::size_t>(r * cols + c)]; };
  // Row 0, group 0: all zeros (one of them -0). Group 1: huge. Group 2: tiny.
  for (int64_t c = 0; c < kGroup; ++c) at(0, c) = 0.f;
  at(0, 5) = -0.f;
  for (int64_t c = kGroup; c < 2 * kGroup; ++c)
    at(0, c) = reference::bf16_to_float(reference::float_to_bf16(at(0, c) * 1e30f));
  for (int64_t c = 2 * kGroup; c < 3 * kGroup; ++c)
    at(0, c) = reference::bf16_to_float(reference::float_to_bf16(at(0, c) * 1e-30f));
  // Row 1: a NaN in group 0, +Inf in group 1, -Inf and NaN in group 2 (NaN wins), +Inf last in group 3.
  at(1, 17) = nan;
  at(1, kGroup + 3) = inf;
  at(1, 2 * kGroup + 1) = -inf;
  at(1, 2 * kGroup + 100) = nan;
  at(1, 4 * kGroup - 1) = inf;
  // Row 2: NaN as the very last element of the row (the partial last group when cols % 128 != 0).
  at(2, cols - 1) = nan;
  // Row 3: bf16's largest finite value, whose quotient is exactly 448 after rounding.
  at(3, 7) = reference::bf16_to_float(0x7F7F);
  at(3, kGroup + 9) = -reference::bf16_to_float(0x7F7F);
  // Rows 4.. : bf16 denormals and the smallest normals, in groups whose amax is 1 (column 0 of each group).
  for (int64_t r = 4; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      at(r, c) = c % kGroup == 0 ? 1.f
                                 : reference::bf16_to_float(static_cast<uint16_t>((r * cols + c) % 0x0180 |
                                                                                  (c % 2 ? 0x8000u : 0u)));
  return x;
}

TEST(Quantize, SpecialGroupsMatchReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  for (Granularity granularity : {Granularity::kPerToken, Granularity::kPerBlock}) {
    for (int64_t cols : {int64_t{512}, int64_t{520}}) {
      for (ScaleLayout layout : {ScaleLayout::kRowMajor, ScaleLayout::kColumnMajor}) {
        Case c;
        c.granularity = granularity;
        c.rows = 9;
        c.cols = cols;
        c.scale_layout = layout;
        run_and_check(c, special_groups(c.rows, c.cols));
      }
    }
  }
}

// The semantics the reference documents, checked directly on the GPU output (not only through equality
// with the reference), per-token so that each group is one kind.
TEST(Quantize, SpecialGroupSemantics) {
  BLOCKGEMM_REQUIRE_HOPPER();
  Case c;
  c.rows = 2;
  c.cols = 512;
  const std::vector<float> x = special_groups(9, c.cols);
  const std::vector<float> first_rows(x.begin(), x.begin() + c.rows * c.cols);
  DeviceCase d(c, first_rows);
  d.run();
  const Downloaded h = download(d);
  auto value = [&](int64_t r, int64_t col) { return h.out[static_cast<std::size_t>(r * c.cols + col)]; };
  auto scale = [&](int64_t r, int64_t g) { return h.scales[static_cast<std::size_t>(r * 4 + g)]; };

  EXPECT_EQ(float_bits(scale(0, 0)), float_bits(1e-4f / 448.0f));
  for (int64_t col = 0; col < kGroup; ++col) EXPECT_EQ(value(0, col), col == 5 ? 0x80 : 0x00) << col;
  EXPECT_TRUE(std::isnan(scale(1, 0)));
  for (int64_t col = 0; col < kGroup; ++col) EXPECT_EQ(value(1, col), 0x7F) << col;
  EXPECT_EQ(scale(1, 1), std::numeric_limits<float>::infinity());
  for (int64_t col = kGroup; col < 2 * kGroup; ++col) {
    const float xv = first_rows[static_cast<std::size_t>(c.cols + col)];
    const uint8_t expected = std::isinf(xv) ? 0x7F : (std::signbit(xv) ? 0x80 : 0x00);
    EXPECT_EQ(value(1, col), expected) << col;
  }
  EXPECT_TRUE(std::isnan(scale(1, 2)));
}

// Every finite bf16 value x against a spread of group maxima (|x| <= amax), one amax per group: covers
// the division and fp8 rounding over the whole input range, denormals included.
TEST(Quantize, AllBf16ValuesMatchReference) {
  BLOCKGEMM_REQUIRE_HOPPER();
  std::vector<uint16_t> magnitudes;  // finite, non-negative bf16 bit patterns
  for (uint32_t bits = 0; bits < 0x7F80; ++bits) magnitudes.push_back(static_cast<uint16_t>(bits));
  std::vector<uint16_t> amax_bits = {0x0000, 0x0001, 0x3800, 0x38D1, 0x38D2, 0x38D3,
                                     0x38D4, 0x3F80, 0x43E0, 0x7F00, 0x7F7F};
  for (uint32_t bits = 0x0100; bits < 0x7F80; bits += 0x0133)
    amax_bits.push_back(static_cast<uint16_t>(bits));

  constexpr int64_t kValuesPerGroup = kGroup - 1;  // column 0 holds the amax
  std::vector<float> x;
  int64_t groups = 0;
  for (uint16_t amax : amax_bits) {
    std::vector<float> members;
    for (uint16_t m : magnitudes) {
      if (m > amax) break;
      members.push_back(reference::bf16_to_float(m));
      members.push_back(-reference::bf16_to_float(m));
    }
    for (std::size_t i = 0; i < members.size(); i += kValuesPerGroup) {
      x.push_back(reference::bf16_to_float(amax));
      for (int64_t j = 0; j < kValuesPerGroup; ++j) {
        const std::size_t k = i + static_cast<std::size_t>(j);
        x.push_back(k < members.size() ? members[k] : 0.f);
      }
      ++groups;
    }
  }
  // Groups laid out 56 per row (7168 columns), the last row padded with zeros.
  constexpr int64_t kCols = 7168;
  const int64_t rows = ceil_div(groups * kGroup, kCols);
  x.resize(static_cast<std::size_t>(rows * kCols), 0.f);
  Case c;
  c.rows = rows;
  c.cols = kCols;
  run_and_check(c, x);
}

TEST(Quantize, EmptyInputLaunchesNothing) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int device = DeviceCase::current_device();
  for (Granularity granularity : {Granularity::kPerToken, Granularity::kPerBlock}) {
    const TensorView x = TensorView::matrix(nullptr, DType::kBFloat16, 0, 256, device);
    const TensorView out = TensorView::matrix(nullptr, DType::kFloat8E4M3, 0, 256, device);
    const TensorView scales = TensorView::matrix(nullptr, DType::kFloat32, 0, 2, device);
    if (granularity == Granularity::kPerToken)
      EXPECT_NO_THROW(per_token_cast_to_fp8(x, out, scales));
    else
      EXPECT_NO_THROW(per_block_cast_to_fp8(x, out, scales));
  }
}

TEST(Quantize, GraphCaptureReplaysSameBits) {
  BLOCKGEMM_REQUIRE_HOPPER();
  Case c;
  c.rows = 300;
  c.cols = 7168;
  c.scale_layout = ScaleLayout::kColumnMajor;
  c.scale_padding = 4;
  const std::vector<float> x = random_bf16_values(c.rows * c.cols, 2024);
  DeviceCase d(c, x);

  cudaStream_t stream = nullptr;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
  d.run(stream);
  check_cuda(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
  check_cuda(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  // Nothing ran during capture: the outputs are still poisoned.
  const Downloaded before = download(d);
  EXPECT_EQ(before.out[0], kPoisonByte);

  for (int replay = 0; replay < 2; ++replay) {
    d.poison();
    check_cuda(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
    expect_matches_reference(d, x);
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// ---------------------------------------------------------------------------------------------------------
// Validation: rejected before any launch, so these need a device only for the device ordinal.

void expect_invalid(const std::function<void()>& call, const std::vector<std::string>& fragments) {
  try {
    call();
    ADD_FAILURE() << "expected blockgemm::Error(kInvalidArgument)";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), Error::Kind::kInvalidArgument) << e.what();
    for (const std::string& f : fragments)
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << "'" << f << "' not in: " << e.what();
  }
}

TEST(Quantize, ValidationErrors) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t rows = 4, cols = 256;
  DeviceBuffer x_buf(rows * cols * 2 + 64), out_buf(rows * cols + 64), scale_buf(64 * sizeof(float));
  const int device = DeviceCase::current_device();
  const TensorView x = TensorView::matrix(x_buf.get(), DType::kBFloat16, rows, cols, device);
  const TensorView out = TensorView::matrix(out_buf.get(), DType::kFloat8E4M3, rows, cols, device);
  const TensorView scales = TensorView::matrix(scale_buf.get(), DType::kFloat32, rows, 2, device);
  EXPECT_NO_THROW(per_token_cast_to_fp8(x, out, scales));
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");

  TensorView bad_scales = TensorView::matrix(scale_buf.get(), DType::kFloat32, rows, 3, device);
  expect_invalid([&] { per_token_cast_to_fp8(x, out, bad_scales); },
                 {"per_token_cast_to_fp8", "scales", "expected shape (4, 2)", "got (4, 3)"});
  const TensorView block_scales = TensorView::matrix(scale_buf.get(), DType::kFloat32, 1, 2, device);
  expect_invalid([&] { per_block_cast_to_fp8(x, out, scales); },
                 {"per_block_cast_to_fp8", "scales", "expected shape (1, 2)", "got (4, 2)"});
  EXPECT_NO_THROW(per_block_cast_to_fp8(x, out, block_scales));
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize");

  TensorView wrong_dtype = x;
  wrong_dtype.dtype = DType::kFloat16;
  expect_invalid([&] { per_token_cast_to_fp8(wrong_dtype, out, scales); },
                 {"x.dtype", "bfloat16", "float16"});
  TensorView out_bf16 = out;
  out_bf16.dtype = DType::kBFloat16;
  expect_invalid([&] { per_token_cast_to_fp8(x, out_bf16, scales); }, {"out.dtype", "float8_e4m3"});
  TensorView scales_bf16 = scales;
  scales_bf16.dtype = DType::kBFloat16;
  expect_invalid([&] { per_token_cast_to_fp8(x, out, scales_bf16); }, {"scales.dtype", "float32"});

  TensorView rank1 = x;
  rank1.rank = 1;
  expect_invalid([&] { per_token_cast_to_fp8(rank1, out, scales); }, {"x", "2-D"});

  const TensorView odd_cols = TensorView::strided(x_buf.get(), DType::kBFloat16, rows, 252, cols, 1, device);
  const TensorView odd_out =
      TensorView::strided(out_buf.get(), DType::kFloat8E4M3, rows, 252, cols, 1, device);
  expect_invalid([&] { per_token_cast_to_fp8(odd_cols, odd_out, scales); }, {"x", "multiple of 8", "252"});

  const TensorView out_shape = TensorView::matrix(out_buf.get(), DType::kFloat8E4M3, rows, 128, device);
  expect_invalid([&] { per_token_cast_to_fp8(x, out_shape, scales); }, {"out", "(4, 256)", "(4, 128)"});

  const TensorView x_stride = TensorView::strided(x_buf.get(), DType::kBFloat16, rows, 248, 252, 1, device);
  const TensorView out_248 =
      TensorView::strided(out_buf.get(), DType::kFloat8E4M3, rows, 248, 256, 1, device);
  expect_invalid([&] { per_token_cast_to_fp8(x_stride, out_248, scales); },
                 {"x strides", "multiple of 16 bytes"});
  const TensorView out_stride =
      TensorView::strided(out_buf.get(), DType::kFloat8E4M3, rows, cols, 260, 1, device);
  expect_invalid([&] { per_token_cast_to_fp8(x, out_stride, scales); },
                 {"out strides", "multiple of 8 bytes"});
  const TensorView x_col_stride =
      TensorView::strided(x_buf.get(), DType::kBFloat16, rows, cols, cols, 2, device);
  expect_invalid([&] { per_token_cast_to_fp8(x_col_stride, out, scales); }, {"x strides", "column stride 1"});

  const TensorView x_misaligned =
      TensorView::matrix(static_cast<char*>(x_buf.get()) + 8, DType::kBFloat16, rows, cols, device);
  expect_invalid([&] { per_token_cast_to_fp8(x_misaligned, out, scales); }, {"x data pointer", "16-byte"});
  const TensorView scales_misaligned =
      TensorView::matrix(static_cast<char*>(scale_buf.get()) + 2, DType::kFloat32, rows, 2, device);
  expect_invalid([&] { per_token_cast_to_fp8(x, out, scales_misaligned); },
                 {"scales data pointer", "4-byte"});

  const TensorView scales_bad_layout =
      TensorView::strided(scale_buf.get(), DType::kFloat32, rows, 2, 1, 2, device);
  expect_invalid([&] { per_token_cast_to_fp8(x, out, scales_bad_layout); },
                 {"scales strides", "row-major", "column-major", "(1, 2)"});

  TensorView host_x = x;
  host_x.device = TensorView::kHostDevice;
  expect_invalid([&] { per_token_cast_to_fp8(host_x, out, scales); }, {"x.device", "host memory"});
  TensorView other_device_out = out;
  other_device_out.device = device + 1;
  expect_invalid([&] { per_token_cast_to_fp8(x, other_device_out, scales); }, {"out.device"});

  const TensorView out_over_x = TensorView::matrix(x_buf.get(), DType::kFloat8E4M3, rows, cols, device);
  expect_invalid([&] { per_token_cast_to_fp8(x, out_over_x, scales); }, {"out", "disjoint from x"});
}

}  // namespace
}  // namespace blockgemm::testing
