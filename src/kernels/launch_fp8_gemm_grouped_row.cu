// The grouped kernels with per-row weight scales (one translation unit per weight-scale kind, so the two
// families compile in parallel). bf16 output only: what mixture-of-experts layers consume.
#include "kernels/launch_fp8_gemm_grouped.cuh"

namespace blockgemm::kernels {

void launch_fp8_gemm_grouped_per_row(const heuristics::GemmPlan& plan, const GroupedGemmArgs& args,
                                     cudaStream_t stream) {
  detail::launch_fp8_gemm_grouped_for<__nv_bfloat16, WeightScaleKind::kPerRow>(plan, args, stream);
}

}  // namespace blockgemm::kernels
