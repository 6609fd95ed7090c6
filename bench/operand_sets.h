// Device operand sets for blockgemm-bench: enough independent copies of one problem's operands and
// outputs that calls rotating over them never find their operands in L2 (a model layer never finds its
// weight there either).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "blockgemm/tensor.h"
#include "host_data.h"
#include "options.h"

namespace blockgemm_bench {

constexpr std::size_t kRotationTargetBytes = std::size_t{256} << 20;  // 5x the H100's 50 MB L2
constexpr std::size_t kMaxDeviceBytes = std::size_t{8} << 30;
constexpr int kMaxRotationSets = 2000;
constexpr std::size_t kDeviceAlignment = 256;

inline std::size_t align_up(std::size_t value, std::size_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

// How many sets rotate `bytes_per_set` past kRotationTargetBytes, within kMaxDeviceBytes of `stride`
// each and kMaxRotationSets; at least 2.
int rotation_set_count(std::size_t bytes_per_set, std::size_t stride);

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  uint8_t* bytes() const { return static_cast<uint8_t*>(ptr_); }
  std::size_t size() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  std::size_t bytes_ = 0;
};

struct SetPointers {
  void* input_fp8;
  void* weight_fp8;
  // blockgemm's scales: its own row-major buffers, or the cuBLASLt ones under --scale-layout col.
  float* input_scale;
  float* weight_scale;
  float* input_scale_lt;  // null unless cuBLASLt runs or blockgemm reads its layout
  float* weight_scale_lt;
  void* out_ours;
  void* out_lt;  // null without baselines, likewise the bf16 ones
  void* input_bf16;
  void* weight_bf16;
  void* out_bf16;
  void* input_bf16_data;   // null unless a bf16 path runs
  void* weight_bf16_data;  // null unless the bf16-bf16 path runs
  void* out_bf16_fp8;
  void* out_bf16_bf16;
};

// Every set holds all operands and outputs of all backends at distinct addresses; the sets are
// copies of set 0 (same content, different addresses: all the cache needs).
// The set count is sized by the fp8 call's bytes, so adding the bf16 paths leaves the fp8 measurement
// as it was; the bf16 calls read more bytes per set (bf16 operands are twice as wide), so they too rotate
// over more than the target.
class OperandSets {
 public:
  OperandSets(const HostProblem& problem, const Options& options);

  SetPointers pointers(int set) const;
  int num_sets() const { return num_sets_; }
  std::size_t rotated_bytes_per_set() const { return rotated_bytes_per_set_; }

 private:
  struct Offsets {
    std::size_t input_fp8 = 0, weight_fp8 = 0, input_scale = 0, weight_scale = 0, input_scale_lt = 0,
                weight_scale_lt = 0, out_ours = 0, out_lt = 0, input_bf16 = 0, weight_bf16 = 0, out_bf16 = 0,
                input_bf16_data = 0, weight_bf16_data = 0, out_bf16_fp8 = 0, out_bf16_bf16 = 0;
  } offsets_;
  bool with_baselines_ = false;
  bool own_scales_ = false;  // blockgemm reads row-major scales of its own
  bool lt_scales_ = false;   // the cuBLASLt-layout scales exist
  Paths paths_;
  std::size_t set_stride_ = 0;
  std::size_t rotated_bytes_per_set_ = 0;
  int num_sets_ = 0;
  std::unique_ptr<DeviceBuffer> storage_;
};

}  // namespace blockgemm_bench
