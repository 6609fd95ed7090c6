// GPU tests of the BF16 paths: bf16 input x fp8 weight and bf16 x bf16, quantized inside the call.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "blockgemm/blockgemm.h"
#include "blockgemm/reference.h"
#include "gpu_test_util.h"

namespace blockgemm::testing {
namespace {

// Random normal values already rounded to bf16, as floats (exact) and as bf16 bits.
struct Bf16Matrix {
  std::vector<float> values;
  std::vector<uint16_t> bits;
};

Bf16Matrix random_bf16(int64_t rows, int64_t cols, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.f, 1.f);
  Bf16Matrix m;
  m.values.resize(static_cast<std::size_t>(rows * cols));
  m.bits.resize(m.values.size());
  for (std::size_t i = 0; i < m.values.size(); ++i) {
    m.bits[i] = reference::float_to_bf16(dist(rng));
    m.values[i] = reference::bf16_to_float(m.bits[i]);
  }
  return m;
}

struct Bf16Case {
  int64_t m, n, k;
  bool bf16_weight;  // false: fp8 weight with 128x128 scales
  bool explicit_workspace;
};

class GemmBf16 : public ::testing::TestWithParam<Bf16Case> {};

TEST_P(GemmBf16, MatchesReferenceAndUnquantizedProduct) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const Bf16Case c = GetParam();
  const int64_t m = c.m, n = c.n, k = c.k, kg = k / 128;
  const Bf16Matrix a = random_bf16(m, k, 11 + m);
  const Bf16Matrix b = random_bf16(n, k, 12 + n);

  DeviceBuffer a_dev(a.bits.size() * 2), out_dev(static_cast<std::size_t>(m * n) * 2);
  a_dev.upload(a.bits.data(), a.bits.size() * 2);
  const TensorView input = TensorView::matrix(a_dev.get(), DType::kBFloat16, m, k, 0);

  // The weight as the caller gives it: bf16, or fp8 with 128x128 scales from the reference quantizer.
  const reference::Quantized b_q = reference::per_block_cast_to_fp8(b.values.data(), n, k);
  DeviceBuffer b_dev(c.bf16_weight ? b.bits.size() * 2 : b_q.values.size());
  DeviceBuffer b_scale_dev(b_q.scales.size() * 4);
  std::optional<TensorView> weight_scale;
  TensorView weight;
  if (c.bf16_weight) {
    b_dev.upload(b.bits.data(), b.bits.size() * 2);
    weight = TensorView::matrix(b_dev.get(), DType::kBFloat16, n, k, 0);
  } else {
    b_dev.upload(b_q.values.data(), b_q.values.size());
    b_scale_dev.upload(b_q.scales.data(), b_q.scales.size() * 4);
    weight = TensorView::matrix(b_dev.get(), DType::kFloat8E4M3, n, k, 0);
    weight_scale = TensorView::matrix(b_scale_dev.get(), DType::kFloat32, b_q.scale_rows, kg, 0);
  }
  const TensorView out = TensorView::matrix(out_dev.get(), DType::kBFloat16, m, n, 0);

  const std::size_t workspace_bytes = fp8_blockscale_gemm_sm90_workspace_bytes(input, weight);
  EXPECT_GT(workspace_bytes, static_cast<std::size_t>(m * k));
  DeviceBuffer workspace_dev(workspace_bytes);
  std::optional<Workspace> workspace;
  if (c.explicit_workspace) workspace = Workspace{workspace_dev.get(), workspace_bytes};

  check_cuda(cudaMemset(out_dev.get(), 0xFF, out_dev.bytes()), "poison");
  fp8_blockscale_gemm_sm90(input, weight, std::nullopt, weight_scale, out, std::nullopt, nullptr, workspace);
  check_cuda(cudaDeviceSynchronize(), "gemm");
  std::vector<uint16_t> got(static_cast<std::size_t>(m * n));
  out_dev.download(got.data(), got.size() * 2);

  // Reference 1: the same quantization on the CPU, then the block-scaled product.
  const reference::Quantized a_q = reference::per_token_cast_to_fp8(a.values.data(), m, k);
  const std::vector<int64_t> rows = rows_to_check(m);
  std::vector<double> ref(static_cast<std::size_t>(m * n));
  for (int64_t r : rows)
    reference::blockscale_gemm(a_q.values.data(), a_q.scales.data(), b_q.values.data(), b_q.scales.data(),
                               false, m, n, k, ref.data(), r, r + 1);
  std::vector<double> ours, quantized_ref, exact_ref;
  int64_t nan_count = 0;
  for (int64_t i = 0; i < m * n; ++i) nan_count += std::isnan(reference::bf16_to_float(got[i]));
  for (int64_t r : rows)
    for (int64_t col = 0; col < n; ++col) {
      ours.push_back(reference::bf16_to_float(got[r * n + col]));
      quantized_ref.push_back(ref[r * n + col]);
      // Reference 2: the unquantized product of what the caller passed (bf16 input, bf16 or dequantized
      // fp8 weight).
      double sum = 0;
      for (int64_t x = 0; x < k; ++x) {
        const double w = c.bf16_weight ? b.values[col * k + x]
                                       : reference::fp8_e4m3_to_float(b_q.values[col * k + x]) *
                                             static_cast<double>(b_q.scales[(col / 128) * kg + x / 128]);
        sum += static_cast<double>(a.values[r * k + x]) * w;
      }
      exact_ref.push_back(sum);
    }
  EXPECT_EQ(nan_count, 0);
  const auto count = static_cast<int64_t>(ours.size());
  EXPECT_LT(reference::calc_diff(ours.data(), quantized_ref.data(), count), 1e-3);
  EXPECT_LT(reference::calc_diff(ours.data(), exact_ref.data(), count), 2e-3);
}

INSTANTIATE_TEST_SUITE_P(
    Paths, GemmBf16,
    ::testing::Values(Bf16Case{1, 256, 512, false, false}, Bf16Case{33, 2112, 1024, false, true},
                      Bf16Case{200, 576, 768, false, false}, Bf16Case{1, 256, 512, true, false},
                      Bf16Case{77, 336, 640, true, true}, Bf16Case{300, 1040, 384, true, false}));

TEST(GemmBf16Api, GraphCaptureWithWorkspaceMatchesEager) {
  BLOCKGEMM_REQUIRE_HOPPER();
  const int64_t m = 96, n = 512, k = 1024;
  const Bf16Matrix a = random_bf16(m, k, 5), b = random_bf16(n, k, 6);
  DeviceBuffer a_dev(a.bits.size() * 2), b_dev(b.bits.size() * 2),
      out_dev(static_cast<std::size_t>(m * n) * 4);
  a_dev.upload(a.bits.data(), a.bits.size() * 2);
  b_dev.upload(b.bits.data(), b.bits.size() * 2);
  const TensorView input = TensorView::matrix(a_dev.get(), DType::kBFloat16, m, k, 0);
  const TensorView weight = TensorView::matrix(b_dev.get(), DType::kBFloat16, n, k, 0);
  const TensorView out = TensorView::matrix(out_dev.get(), DType::kFloat32, m, n, 0);
  const std::size_t bytes = fp8_blockscale_gemm_sm90_workspace_bytes(input, weight);
  DeviceBuffer workspace(bytes);

  fp8_blockscale_gemm_sm90(input, weight, std::nullopt, std::nullopt, out);  // internal workspace
  check_cuda(cudaDeviceSynchronize(), "eager");
  std::vector<uint8_t> eager(out_dev.bytes()), replay(out_dev.bytes());
  out_dev.download(eager.data(), eager.size());

  cudaStream_t stream;
  check_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "stream");
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "capture");
  fp8_blockscale_gemm_sm90(input, weight, std::nullopt, std::nullopt, out, std::nullopt, stream,
                           Workspace{workspace.get(), bytes});
  check_cuda(cudaStreamEndCapture(stream, &graph), "end capture");
  check_cuda(cudaGraphInstantiate(&exec, graph, 0), "instantiate");
  // On the replay's stream: a legacy-stream cudaMemset would not be ordered before a non-blocking stream.
  check_cuda(cudaMemsetAsync(out_dev.get(), 0xFF, out_dev.bytes(), stream), "poison");
  check_cuda(cudaGraphLaunch(exec, stream), "replay");
  check_cuda(cudaStreamSynchronize(stream), "sync");
  out_dev.download(replay.data(), replay.size());
  EXPECT_EQ(std::memcmp(eager.data(), replay.data(), eager.size()), 0);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

TEST(GemmBf16Api, TooSmallWorkspaceIsAnError) {
  BLOCKGEMM_REQUIRE_HOPPER();
  DeviceBuffer a(64 * 256 * 2), b(128 * 256 * 2), out(64 * 128 * 2), workspace(1024);
  try {
    fp8_blockscale_gemm_sm90(TensorView::matrix(a.get(), DType::kBFloat16, 64, 256, 0),
                             TensorView::matrix(b.get(), DType::kBFloat16, 128, 256, 0), std::nullopt,
                             std::nullopt, TensorView::matrix(out.get(), DType::kBFloat16, 64, 128, 0),
                             std::nullopt, nullptr, Workspace{workspace.get(), 1024});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("workspace"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace blockgemm::testing
