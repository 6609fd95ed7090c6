// The __half output kernels (one translation unit per output dtype so they compile in parallel).
#include "kernels/launch_fp8_gemm.cuh"

namespace blockgemm::kernels {

void launch_fp8_gemm_fp16(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream) {
  detail::launch_fp8_gemm_for<__half>(plan, args, stream);
}

}  // namespace blockgemm::kernels
