#include "operand_sets.h"

#include <algorithm>

#include "timing.h"

namespace blockgemm_bench {
namespace {

void upload(void* dst, const void* src, std::size_t bytes) {
  if (bytes > 0) BENCH_CHECK_CUDA(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}

}  // namespace

int rotation_set_count(std::size_t bytes_per_set, std::size_t stride) {
  const auto wanted = ceil_div(static_cast<int64_t>(kRotationTargetBytes),
                               static_cast<int64_t>(std::max<std::size_t>(bytes_per_set, 1)));
  const auto affordable = static_cast<int64_t>(kMaxDeviceBytes / std::max<std::size_t>(stride, 1));
  return static_cast<int>(std::max<int64_t>(2, std::min<int64_t>({wanted, affordable, kMaxRotationSets})));
}

DeviceBuffer::DeviceBuffer(std::size_t bytes) : bytes_(bytes) {
  BENCH_CHECK_CUDA(cudaMalloc(&ptr_, bytes));
}

DeviceBuffer::~DeviceBuffer() {
  if (ptr_ != nullptr) cudaFree(ptr_);
}

OperandSets::OperandSets(const HostProblem& problem, const Options& options) {
  const Shape& s = problem.shape;
  const HostWeight& weight = *problem.weight;
  with_baselines_ = options.run_baselines;
  paths_ = options.paths;
  own_scales_ = options.scale_layout == ScaleLayout::kRowMajor;
  lt_scales_ = with_baselines_ || !own_scales_;

  std::size_t cursor = 0;
  auto reserve = [&cursor](std::size_t bytes) {
    const std::size_t offset = cursor;
    cursor = align_up(cursor + bytes, kDeviceAlignment);
    return offset;
  };
  const std::size_t out_bytes = static_cast<std::size_t>(s.m * s.n) * dtype_size(options.out_dtype);
  const std::size_t input_scale_bytes = problem.input.scales.size() * sizeof(float);
  const std::size_t weight_scale_bytes = weight.quantized.scales.size() * sizeof(float);
  const std::size_t input_scale_lt_bytes = problem.input_scale_lt.size() * sizeof(float);
  const std::size_t weight_scale_lt_bytes = weight.scale_lt.size() * sizeof(float);
  offsets_.input_fp8 = reserve(problem.input.values.size());
  offsets_.weight_fp8 = reserve(weight.quantized.values.size());
  if (own_scales_) {
    offsets_.input_scale = reserve(input_scale_bytes);
    offsets_.weight_scale = reserve(weight_scale_bytes);
  }
  if (lt_scales_) {
    offsets_.input_scale_lt = reserve(input_scale_lt_bytes);
    offsets_.weight_scale_lt = reserve(weight_scale_lt_bytes);
  }
  offsets_.out_ours = reserve(out_bytes);
  if (with_baselines_) {
    offsets_.out_lt = reserve(out_bytes);
    offsets_.input_bf16 = reserve(problem.input_bf16.size() * sizeof(uint16_t));
    offsets_.weight_bf16 = reserve(weight.bf16.size() * sizeof(uint16_t));
    offsets_.out_bf16 = reserve(static_cast<std::size_t>(s.m * s.n) * sizeof(uint16_t));
  }
  if (paths_.any_bf16())
    offsets_.input_bf16_data = reserve(problem.input_bf16_data.size() * sizeof(uint16_t));
  if (paths_.bf16_fp8) offsets_.out_bf16_fp8 = reserve(out_bytes);
  if (paths_.bf16_bf16) {
    offsets_.weight_bf16_data = reserve(weight.bf16_data.size() * sizeof(uint16_t));
    offsets_.out_bf16_bf16 = reserve(out_bytes);
  }
  set_stride_ = align_up(cursor, kDeviceAlignment);
  // What one fp8 call of blockgemm reads and writes, with the scales in the layout it is given.
  rotated_bytes_per_set_ =
      problem.input.values.size() + weight.quantized.values.size() +
      (own_scales_ ? input_scale_bytes + weight_scale_bytes : input_scale_lt_bytes + weight_scale_lt_bytes) +
      out_bytes;
  num_sets_ = rotation_set_count(rotated_bytes_per_set_, set_stride_);
  storage_ = std::make_unique<DeviceBuffer>(set_stride_ * static_cast<std::size_t>(num_sets_));

  const SetPointers first = pointers(0);
  upload(first.input_fp8, problem.input.values.data(), problem.input.values.size());
  upload(first.weight_fp8, weight.quantized.values.data(), weight.quantized.values.size());
  if (own_scales_) {
    upload(first.input_scale, problem.input.scales.data(), input_scale_bytes);
    upload(first.weight_scale, weight.quantized.scales.data(), weight_scale_bytes);
  }
  if (lt_scales_) {
    upload(first.input_scale_lt, problem.input_scale_lt.data(), input_scale_lt_bytes);
    upload(first.weight_scale_lt, weight.scale_lt.data(), weight_scale_lt_bytes);
  }
  if (with_baselines_) {
    upload(first.input_bf16, problem.input_bf16.data(), problem.input_bf16.size() * sizeof(uint16_t));
    upload(first.weight_bf16, weight.bf16.data(), weight.bf16.size() * sizeof(uint16_t));
  }
  if (paths_.any_bf16()) {
    upload(first.input_bf16_data, problem.input_bf16_data.data(),
           problem.input_bf16_data.size() * sizeof(uint16_t));
  }
  if (paths_.bf16_bf16) {
    upload(first.weight_bf16_data, weight.bf16_data.data(), weight.bf16_data.size() * sizeof(uint16_t));
  }
  for (int set = 1; set < num_sets_; ++set) {
    BENCH_CHECK_CUDA(cudaMemcpy(storage_->bytes() + set_stride_ * static_cast<std::size_t>(set),
                                storage_->bytes(), set_stride_, cudaMemcpyDeviceToDevice));
  }
  // Pageable uploads and device-to-device copies may still be in flight when cudaMemcpy returns,
  // and the benchmark's stream does not synchronise with the legacy default stream.
  BENCH_CHECK_CUDA(cudaDeviceSynchronize());
}

SetPointers OperandSets::pointers(int set) const {
  uint8_t* base = storage_->bytes() + set_stride_ * static_cast<std::size_t>(set);
  SetPointers p{};
  p.input_fp8 = base + offsets_.input_fp8;
  p.weight_fp8 = base + offsets_.weight_fp8;
  if (lt_scales_) {
    p.input_scale_lt = reinterpret_cast<float*>(base + offsets_.input_scale_lt);
    p.weight_scale_lt = reinterpret_cast<float*>(base + offsets_.weight_scale_lt);
  }
  if (own_scales_) {
    p.input_scale = reinterpret_cast<float*>(base + offsets_.input_scale);
    p.weight_scale = reinterpret_cast<float*>(base + offsets_.weight_scale);
  } else {
    p.input_scale = p.input_scale_lt;
    p.weight_scale = p.weight_scale_lt;
  }
  p.out_ours = base + offsets_.out_ours;
  if (with_baselines_) {
    p.out_lt = base + offsets_.out_lt;
    p.input_bf16 = base + offsets_.input_bf16;
    p.weight_bf16 = base + offsets_.weight_bf16;
    p.out_bf16 = base + offsets_.out_bf16;
  }
  if (paths_.any_bf16()) p.input_bf16_data = base + offsets_.input_bf16_data;
  if (paths_.bf16_fp8) p.out_bf16_fp8 = base + offsets_.out_bf16_fp8;
  if (paths_.bf16_bf16) {
    p.weight_bf16_data = base + offsets_.weight_bf16_data;
    p.out_bf16_bf16 = base + offsets_.out_bf16_bf16;
  }
  return p;
}

}  // namespace blockgemm_bench
