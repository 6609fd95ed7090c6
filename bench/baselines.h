// The in-toolkit baselines blockgemm-bench measures beside our kernel:
//   - cuBLASLt fp8 e4m3 with DeepSeek-style block scaling (1x128 activations, 128x128 weights),
//     the closest library equivalent of what blockgemm computes;
//   - cuBLAS bf16, the unquantized GEMM a model would otherwise run.
// Both are created once per run, outside any timed region, and enqueue only kernel launches, so
// they can be captured into CUDA graphs.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <string>

namespace blockgemm_bench {

// Throws std::runtime_error naming the call and the cuBLAS status.
void check_cublas(cublasStatus_t status, const char* call);
#define BENCH_CHECK_CUBLAS(call) ::blockgemm_bench::check_cublas((call), #call)

enum class WeightScaleLayout {
  kBlock128x128,  // (ceil(N/128), K/128), one scale per 128x128 block
  kPerRow1x128,   // (N, K/128), one scale per 1x128 group of each weight row
};

// Scale-tensor leading dimensions cuBLASLt requires; the benchmark allocates the scales with them
// and hands the very same buffers to blockgemm.
int64_t lt_input_scale_ld(int64_t m);  // column stride of the (M, K/128) column-major input scale
int64_t lt_weight_scale_ld(int64_t n, int64_t k, WeightScaleLayout layout);
// kBlock128x128: row stride of the (ceil(N/128), K/128) row-major weight scale;
// kPerRow1x128:  column stride of the (N, K/128) column-major weight scale.

struct LtProblem {
  int64_t m = 0, n = 0, k = 0;
  WeightScaleLayout weight_scale_layout = WeightScaleLayout::kBlock128x128;
  cudaDataType_t out_type = CUDA_R_16BF;
};

// Device pointers of one operand set.
struct LtOperands {
  const void* input_fp8 = nullptr;      // (M, K) row-major e4m3
  const void* weight_fp8 = nullptr;     // (N, K) row-major e4m3
  const float* input_scale = nullptr;   // (M, K/128) column-major, ld lt_input_scale_ld(M)
  const float* weight_scale = nullptr;  // see WeightScaleLayout, ld lt_weight_scale_ld(...)
  void* out = nullptr;                  // (M, N) row-major, LtProblem::out_type
};

class CublasLtBlockScaledGemm {
 public:
  explicit CublasLtBlockScaledGemm(std::size_t workspace_bytes);
  ~CublasLtBlockScaledGemm();
  CublasLtBlockScaledGemm(const CublasLtBlockScaledGemm&) = delete;
  CublasLtBlockScaledGemm& operator=(const CublasLtBlockScaledGemm&) = delete;

  // Builds the descriptors for `problem` and asks the heuristic for an algorithm. `sample` must
  // point at real buffers: the heuristic insists on scale pointers for block scale modes. Returns
  // false, with the reason in *why_not, when cuBLASLt offers no algorithm for this problem.
  bool prepare(const LtProblem& problem, const LtOperands& sample, std::string* why_not);

  // Enqueues one GEMM on `stream` (after a successful prepare). Throws on a cuBLAS error.
  void enqueue(const LtOperands& operands, cudaStream_t stream);

  // The algorithm the heuristic chose, as raw cuBLASLt config ids (for the JSON record).
  const std::string& algorithm() const { return algorithm_; }

 private:
  void release_descriptors();

  cublasLtHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
  std::size_t workspace_bytes_ = 0;
  cublasLtMatmulDesc_t matmul_desc_ = nullptr;
  cublasLtMatrixLayout_t weight_layout_ = nullptr;  // cuBLASLt's A
  cublasLtMatrixLayout_t input_layout_ = nullptr;   // cuBLASLt's B
  cublasLtMatrixLayout_t out_layout_ = nullptr;     // cuBLASLt's C and D
  cublasLtMatmulAlgo_t algo_{};
  bool prepared_ = false;
  std::string algorithm_;
};

class CublasBf16Gemm {
 public:
  // Binds the handle to `stream` and to a workspace of its own, so that cuBLAS allocates nothing
  // while a graph is being captured.
  CublasBf16Gemm(cudaStream_t stream, std::size_t workspace_bytes);
  ~CublasBf16Gemm();
  CublasBf16Gemm(const CublasBf16Gemm&) = delete;
  CublasBf16Gemm& operator=(const CublasBf16Gemm&) = delete;

  // out (M, N) bf16 row-major = input (M, K) bf16 row-major . weight (N, K)^T, fp32 accumulation,
  // on the stream given at construction. Throws on a cuBLAS error.
  void enqueue(const void* input_bf16, const void* weight_bf16, void* out_bf16, int64_t m, int64_t n,
               int64_t k);

 private:
  cublasHandle_t handle_ = nullptr;
  void* workspace_ = nullptr;
};

}  // namespace blockgemm_bench
