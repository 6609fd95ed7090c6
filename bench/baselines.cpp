// cuBLASLt block-scaled fp8 and cuBLAS bf16 baselines.
//
// Mapping the row-major problem onto column-major cuBLASLt
// ---------------------------------------------------------
// out (M, N) row-major is, byte for byte, the column-major N x M matrix D = op(A) . op(B) with
//   A = the weight buffer read as column-major K x N (lda = K), transa = T  -> op(A) is N x K,
//   B = the input buffer read as column-major K x M (ldb = K),  transb = N  -> op(B) is K x M.
// That is the "TN" form, the one cuBLASLt's fp8 kernels accept on Hopper and Ada (cuBLAS docs,
// cublasLtMatmul fp8 requirements). So in cuBLASLt's terms A is the weight and B the activation;
// torch._scaled_mm ends up in the same place (it swaps operands and scales when the result is
// row-major), which is why its "VEC128 for a, BLK128x128 for b" is A = BLK128x128, B = VEC128 here.
//
// Scale modes and scale-tensor layouts relied on
// ----------------------------------------------
// - cublasLt.h (cuBLAS 13.1): VEC128_32F = "a dedicated CUDA_R_32F scaling factor for each
//   128-element block in the innermost dimension" (the K dimension of both operands in TN form);
//   BLK128x128_32F = "a dedicated CUDA_R_32F scaling factor for each 128x128-element block".
// - cuBLAS docs, "Scaling factors layouts" (https://docs.nvidia.com/cuda/cublas/#scaling-factors-layouts),
//   as restated by pytorch/pytorch PR #166752 (which fixed silent wrong answers from ignoring them),
//   with L4 = roundup(ceil(K/128), 4):
//     VEC128_32F on an operand with R rows (R = M or N): fp32 (R, K/128) with R contiguous,
//       i.e. column-major with leading dimension R. We pad it to roundup(R, 4); torch only ever
//       passes R % 4 == 0 (it rejects other M), where the two agree. UNVERIFIED for R % 4 != 0.
//     BLK128x128_32F: fp32 ceil(K/128) x ceil(R/128) with the K-block index contiguous and
//       leading dimension L4: for the weight that is the (ceil(N/128), K/128) row-major tensor with
//       its row stride padded to L4.
//   torch._scaled_mm accepted these layouts on the H100 (/work/shared/reference/toolchain.md).
// - Combinations on sm_90: 1x128 x 128x128, 128x128 x 1x128 and 1x128 x 1x128 (PR #166752 lists
//   the layouts of all three; TransformerEngine's cuBLASLt grouped GEMM states "Only 1D by 1D, 1D by
//   2D, and 2D by 1D block scaling ... is supported"). So --weight-scale token runs as
//   VEC128_32F x VEC128_32F. If the installed cuBLASLt disagrees, the heuristic returns no
//   algorithm and the benchmark reports n/a.
// - Fast accumulation stays off (its default): torch refuses it with block scaling, and the point of
//   block scaling is the per-128 promotion to fp32.
#include "baselines.h"

#include <sstream>
#include <stdexcept>
#include <string>

#include "timing.h"

namespace blockgemm_bench {

void check_cublas(cublasStatus_t status, const char* call) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(call) + " failed: " + cublasGetStatusString(status));
  }
}

namespace {

constexpr int64_t kScaleGroup = 128;

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}
int64_t round_up(int64_t a, int64_t b) {
  return ceil_div(a, b) * b;
}

template <typename T>
void set_desc_attribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attribute, const T& value,
                        const char* name) {
  check_cublas(cublasLtMatmulDescSetAttribute(desc, attribute, &value, sizeof(value)), name);
}

template <typename T>
T algo_config(const cublasLtMatmulAlgo_t& algo, cublasLtMatmulAlgoConfigAttributes_t attribute) {
  T value{};
  size_t written = 0;
  if (cublasLtMatmulAlgoConfigGetAttribute(&algo, attribute, &value, sizeof(value), &written) !=
      CUBLAS_STATUS_SUCCESS) {
    return T{};
  }
  return value;
}

}  // namespace

int64_t lt_input_scale_ld(int64_t m) {
  return round_up(m, 4);
}

int64_t lt_weight_scale_ld(int64_t n, int64_t k, WeightScaleLayout layout) {
  return layout == WeightScaleLayout::kBlock128x128 ? round_up(ceil_div(k, kScaleGroup), 4) : round_up(n, 4);
}

CublasLtBlockScaledGemm::CublasLtBlockScaledGemm(std::size_t workspace_bytes)
    : workspace_bytes_(workspace_bytes) {
  BENCH_CHECK_CUBLAS(cublasLtCreate(&handle_));
  if (workspace_bytes_ > 0) {
    const cudaError_t status = cudaMalloc(&workspace_, workspace_bytes_);
    if (status != cudaSuccess) {
      cublasLtDestroy(handle_);
      check_cuda(status, "cudaMalloc(cuBLASLt workspace)");
    }
  }
}

CublasLtBlockScaledGemm::~CublasLtBlockScaledGemm() {
  release_descriptors();
  if (workspace_ != nullptr) cudaFree(workspace_);
  if (handle_ != nullptr) cublasLtDestroy(handle_);
}

void CublasLtBlockScaledGemm::release_descriptors() {
  if (out_layout_ != nullptr) cublasLtMatrixLayoutDestroy(out_layout_);
  if (input_layout_ != nullptr) cublasLtMatrixLayoutDestroy(input_layout_);
  if (weight_layout_ != nullptr) cublasLtMatrixLayoutDestroy(weight_layout_);
  if (matmul_desc_ != nullptr) cublasLtMatmulDescDestroy(matmul_desc_);
  out_layout_ = input_layout_ = weight_layout_ = nullptr;
  matmul_desc_ = nullptr;
  prepared_ = false;
  algorithm_.clear();
}

bool CublasLtBlockScaledGemm::prepare(const LtProblem& problem, const LtOperands& sample,
                                      std::string* why_not) {
  release_descriptors();
  const auto m = static_cast<uint64_t>(problem.m);
  const auto n = static_cast<uint64_t>(problem.n);
  const auto k = static_cast<uint64_t>(problem.k);

  BENCH_CHECK_CUBLAS(cublasLtMatmulDescCreate(&matmul_desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  set_desc_attribute(matmul_desc_, CUBLASLT_MATMUL_DESC_TRANSA, CUBLAS_OP_T, "TRANSA");
  set_desc_attribute(matmul_desc_, CUBLASLT_MATMUL_DESC_TRANSB, CUBLAS_OP_N, "TRANSB");
  const int32_t weight_scale_mode = problem.weight_scale_layout == WeightScaleLayout::kBlock128x128
                                        ? CUBLASLT_MATMUL_MATRIX_SCALE_BLK128x128_32F
                                        : CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  const int32_t input_scale_mode = CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F;
  set_desc_attribute(matmul_desc_, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, weight_scale_mode, "A_SCALE_MODE");
  set_desc_attribute(matmul_desc_, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, input_scale_mode, "B_SCALE_MODE");
  set_desc_attribute(matmul_desc_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                     static_cast<const void*>(sample.weight_scale), "A_SCALE_POINTER");
  set_desc_attribute(matmul_desc_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                     static_cast<const void*>(sample.input_scale), "B_SCALE_POINTER");

  BENCH_CHECK_CUBLAS(
      cublasLtMatrixLayoutCreate(&weight_layout_, CUDA_R_8F_E4M3, k, n, static_cast<int64_t>(k)));
  BENCH_CHECK_CUBLAS(
      cublasLtMatrixLayoutCreate(&input_layout_, CUDA_R_8F_E4M3, k, m, static_cast<int64_t>(k)));
  BENCH_CHECK_CUBLAS(
      cublasLtMatrixLayoutCreate(&out_layout_, problem.out_type, n, m, static_cast<int64_t>(n)));

  cublasLtMatmulPreference_t preference = nullptr;
  BENCH_CHECK_CUBLAS(cublasLtMatmulPreferenceCreate(&preference));
  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  cublasStatus_t status = cublasLtMatmulPreferenceSetAttribute(
      preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_, sizeof(workspace_bytes_));
  if (status == CUBLAS_STATUS_SUCCESS) {
    status = cublasLtMatmulAlgoGetHeuristic(handle_, matmul_desc_, weight_layout_, input_layout_, out_layout_,
                                            out_layout_, preference, 1, &result, &returned);
  }
  cublasLtMatmulPreferenceDestroy(preference);
  if (status != CUBLAS_STATUS_SUCCESS || returned == 0 || result.state != CUBLAS_STATUS_SUCCESS) {
    if (why_not != nullptr) {
      *why_not = status != CUBLAS_STATUS_SUCCESS
                     ? std::string("heuristic: ") + cublasLtGetStatusString(status)
                     : std::string("heuristic: no algorithm");
    }
    release_descriptors();
    return false;
  }
  algo_ = result.algo;
  std::ostringstream description;
  description << "id=" << algo_config<int32_t>(algo_, CUBLASLT_ALGO_CONFIG_ID)
              << " tile=" << algo_config<uint32_t>(algo_, CUBLASLT_ALGO_CONFIG_TILE_ID)
              << " stages=" << algo_config<uint32_t>(algo_, CUBLASLT_ALGO_CONFIG_STAGES_ID)
              << " splitk=" << algo_config<int32_t>(algo_, CUBLASLT_ALGO_CONFIG_SPLITK_NUM)
              << " cluster=" << algo_config<uint16_t>(algo_, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID)
              << " waves=" << result.wavesCount << " workspace=" << result.workspaceSize;
  algorithm_ = description.str();
  prepared_ = true;
  return true;
}

void CublasLtBlockScaledGemm::enqueue(const LtOperands& operands, cudaStream_t stream) {
  if (!prepared_) throw std::logic_error("CublasLtBlockScaledGemm::enqueue before a successful prepare");
  // Scale pointers live in the matmul descriptor, not in the call: re-point them at this operand
  // set. Host-side only; a captured launch keeps the values it was enqueued with.
  set_desc_attribute(matmul_desc_, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER,
                     static_cast<const void*>(operands.weight_scale), "A_SCALE_POINTER");
  set_desc_attribute(matmul_desc_, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER,
                     static_cast<const void*>(operands.input_scale), "B_SCALE_POINTER");
  const float alpha = 1.f;
  const float beta = 0.f;
  BENCH_CHECK_CUBLAS(cublasLtMatmul(handle_, matmul_desc_, &alpha, operands.weight_fp8, weight_layout_,
                                    operands.input_fp8, input_layout_, &beta, operands.out, out_layout_,
                                    operands.out, out_layout_, &algo_, workspace_, workspace_bytes_, stream));
}

CublasBf16Gemm::CublasBf16Gemm(cudaStream_t stream, std::size_t workspace_bytes) {
  BENCH_CHECK_CUBLAS(cublasCreate(&handle_));
  try {
    check_cuda(cudaMalloc(&workspace_, workspace_bytes), "cudaMalloc(cuBLAS workspace)");
    // cublasSetStream resets the workspace to cuBLAS's own pool, so the workspace comes second.
    BENCH_CHECK_CUBLAS(cublasSetStream(handle_, stream));
    BENCH_CHECK_CUBLAS(cublasSetWorkspace(handle_, workspace_, workspace_bytes));
  } catch (...) {
    if (workspace_ != nullptr) cudaFree(workspace_);
    cublasDestroy(handle_);
    throw;
  }
}

CublasBf16Gemm::~CublasBf16Gemm() {
  if (handle_ != nullptr) cublasDestroy(handle_);
  if (workspace_ != nullptr) cudaFree(workspace_);
}

void CublasBf16Gemm::enqueue(const void* input_bf16, const void* weight_bf16, void* out_bf16, int64_t m,
                             int64_t n, int64_t k) {
  const float alpha = 1.f;
  const float beta = 0.f;
  // Same column-major reading as the cuBLASLt baseline: D (N x M) = weight^T(N x K) . input(K x M).
  BENCH_CHECK_CUBLAS(cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                                  static_cast<int>(k), &alpha, weight_bf16, CUDA_R_16BF, static_cast<int>(k),
                                  input_bf16, CUDA_R_16BF, static_cast<int>(k), &beta, out_bf16, CUDA_R_16BF,
                                  static_cast<int>(n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

}  // namespace blockgemm_bench
