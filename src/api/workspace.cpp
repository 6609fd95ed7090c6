#include "api/workspace.h"

#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "blockgemm/tensor.h"
#include "kernels/launch.h"
#include "quantize/scale_transpose.h"

namespace blockgemm::api {
namespace {

std::size_t align_up(std::size_t x) {
  return (x + kWorkspaceAlignment - 1) / kWorkspaceAlignment * kWorkspaceAlignment;
}

}  // namespace

std::size_t QuantizedLayout::input_scales_offset() const {
  return input_values_offset() + (input ? align_up(static_cast<std::size_t>(m * k)) : 0);
}
std::size_t QuantizedLayout::weight_values_offset() const {
  return input_scales_offset() +
         (input ? align_up(static_cast<std::size_t>(input_scale_ld() * (k / 128)) * 4) : 0);
}
std::size_t QuantizedLayout::weight_scales_offset() const {
  return weight_values_offset() + (weight ? align_up(static_cast<std::size_t>(n * k)) : 0);
}
std::size_t QuantizedLayout::bytes() const {
  return weight_scales_offset() +
         (weight ? align_up(static_cast<std::size_t>((n + 127) / 128 * (k / 128)) * 4) : 0);
}

WorkspaceLease internal_workspace(int device, std::size_t bytes, cudaStream_t stream) {
  struct Buffer {
    void* data = nullptr;
    std::size_t bytes = 0;
  };
  static std::map<std::pair<int, cudaStream_t>, Buffer> buffers;
  static std::mutex mutex;
  WorkspaceLease lease;
  lease.lock = std::unique_lock<std::mutex>(mutex);
  Buffer& buffer = buffers[{device, stream}];
  if (buffer.bytes >= bytes) {
    lease.data = buffer.data;
    return lease;
  }

  // An error from the query (e.g. the legacy stream while another thread captures) counts as capturing:
  // allocating then would invalidate that capture.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(stream, &capture) != cudaSuccess) {
    cudaGetLastError();
    capture = cudaStreamCaptureStatusActive;
  }
  if (capture != cudaStreamCaptureStatusNone)
    throw Error(Error::Kind::kInvalidArgument,
                "fp8_blockscale_gemm_sm90: workspace: expected " + std::to_string(bytes) +
                    " bytes for the bf16 operands, got the library's " + std::to_string(buffer.bytes) +
                    " for this stream and it cannot grow during CUDA graph capture (run this shape once on "
                    "the stream before capturing, or pass a Workspace of "
                    "fp8_blockscale_gemm_sm90_workspace_bytes())");
  // The smaller buffer is retired, not freed: graphs captured earlier keep its address and write into it
  // on every replay. It lives until the process exits.
  static std::vector<void*> retired;
  if (buffer.data) retired.push_back(buffer.data);
  buffer = Buffer{};
  void* data = nullptr;
  const cudaError_t status = cudaMalloc(&data, bytes);
  if (status != cudaSuccess) cudaGetLastError();
  if (status != cudaSuccess)
    throw Error(Error::Kind::kDevice, "fp8_blockscale_gemm_sm90: workspace: cudaMalloc of " +
                                          std::to_string(bytes) +
                                          " bytes failed: " + cudaGetErrorString(status));
  buffer = Buffer{data, bytes};
  lease.data = data;
  return lease;
}

void copy_input_scales_m_contiguous(kernels::Fp8GemmArgs& args, float* dst, cudaStream_t stream) {
  const int64_t ld = (int64_t{args.m} + 3) / 4 * 4;
  quantize::transpose_scales(
      {args.scale_a, 1, args.m, args.k / 128, 0, args.scale_a_row_stride, args.scale_a_k_stride, dst, 0, ld},
      stream);
  args.scale_a = dst;
  args.scale_a_row_stride = 1;
  args.scale_a_k_stride = ld;
}

void copy_masked_input_scales_m_contiguous(kernels::GroupedGemmArgs& args, float* dst, cudaStream_t stream) {
  kernels::Fp8GemmArgs& gemm = args.gemm;
  const int64_t m_max = args.rows_per_group, ld = masked_input_scale_ld(m_max), k_groups = gemm.k / 128;
  quantize::transpose_scales(
      {gemm.scale_a, args.num_groups, m_max, k_groups, args.scale_a_group_stride, gemm.scale_a_row_stride,
       gemm.scale_a_k_stride, dst, k_groups * ld, ld, args.table},
      stream);
  gemm.scale_a = dst;
  gemm.scale_a_row_stride = 1;
  gemm.scale_a_k_stride = ld;
  args.scale_a_group_stride = k_groups * ld;
}

}  // namespace blockgemm::api
