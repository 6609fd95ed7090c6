#include <string>

#include "kernels/launch.h"

namespace blockgemm::kernels {

void launch_fp8_gemm_grouped_per_block(const heuristics::GemmPlan& plan, const GroupedGemmArgs& args,
                                       cudaStream_t stream);
void launch_fp8_gemm_grouped_per_row(const heuristics::GemmPlan& plan, const GroupedGemmArgs& args,
                                     cudaStream_t stream);

void launch_fp8_gemm_grouped(const heuristics::GemmPlan& plan, const GroupedGemmArgs& args,
                             cudaStream_t stream) {
  if (args.gemm.out_dtype != DType::kBFloat16)
    throw Error(Error::Kind::kNotImplemented, std::string("grouped GEMM: out dtype ") +
                                                  dtype_name(args.gemm.out_dtype) +
                                                  " has no kernel (bfloat16 only)");
  if (args.gemm.per_row_weight_scale)
    launch_fp8_gemm_grouped_per_row(plan, args, stream);
  else
    launch_fp8_gemm_grouped_per_block(plan, args, stream);
}

}  // namespace blockgemm::kernels
