// The card's SM clock, power and temperature while a timing runs, read through NVML.
//
// Under steady large-M load an H100 sits at its power cap and clocks down (bench/NOTES.md #26), so a
// time means little without the clock it ran at. NVML is loaded at run time (dlopen of the driver's
// libnvidia-ml.so.1) rather than linked: this CUDA toolkit ships neither nvml.h nor the NVML stub
// library (CMake's CUDA::nvml target does not exist here), and a benchmark that cannot read clocks
// should still time. Without NVML every reading is recorded as unknown (JSON null) and the run goes on.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>

namespace blockgemm_bench {

// What NVML saw during one timed window; NaN (and samples == 0) where nothing could be read.
struct DeviceConditions {
  static constexpr double kUnknown = std::numeric_limits<double>::quiet_NaN();
  int samples = 0;
  double sm_clock_mhz = kUnknown;  // mean over the samples
  double sm_clock_min_mhz = kUnknown;
  double sm_clock_max_mhz = kUnknown;
  double power_w = kUnknown;        // mean board power (NVML's own averaging window applies)
  double temperature_c = kUnknown;  // highest GPU temperature
  bool throttle_known = false;
  uint64_t throttle_reasons = 0;  // NVML clock-event (throttle) reason bits seen in any sample, OR-ed
};

class NvmlMonitor {
 public:
  // Never throws: when NVML cannot be loaded or initialised, or the CUDA device not found in it,
  // available() is false and status() says why.
  explicit NvmlMonitor(int cuda_device);
  ~NvmlMonitor();
  NvmlMonitor(const NvmlMonitor&) = delete;
  NvmlMonitor& operator=(const NvmlMonitor&) = delete;

  bool available() const { return device_ != nullptr; }
  const std::string& status() const { return status_; }

  // Runs `work` on the calling thread while a second thread samples the device every ~2 ms (the
  // first sample as `work` starts); returns the summary. Without NVML it only runs `work`.
  DeviceConditions sample_during(const std::function<void()>& work) const;

 private:
  struct Api;
  std::unique_ptr<Api> api_;
  void* library_ = nullptr;
  void* device_ = nullptr;  // nvmlDevice_t
  std::string status_;
};

}  // namespace blockgemm_bench
