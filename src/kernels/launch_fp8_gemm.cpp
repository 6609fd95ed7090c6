#include <string>

#include "kernels/launch.h"

namespace blockgemm::kernels {

void launch_fp8_gemm_bf16(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream);
void launch_fp8_gemm_fp16(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream);
void launch_fp8_gemm_fp32(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream);

void launch_fp8_gemm(const heuristics::GemmPlan& plan, const Fp8GemmArgs& args, cudaStream_t stream) {
  switch (args.out_dtype) {
    case DType::kBFloat16:
      return launch_fp8_gemm_bf16(plan, args, stream);
    case DType::kFloat16:
      return launch_fp8_gemm_fp16(plan, args, stream);
    case DType::kFloat32:
      return launch_fp8_gemm_fp32(plan, args, stream);
    default:
      throw Error(Error::Kind::kInvalidArgument,
                  std::string("out dtype ") + dtype_name(args.out_dtype) + " has no kernel");
  }
}

}  // namespace blockgemm::kernels
