#include "nvml_monitor.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace blockgemm_bench {
namespace {

// The few NVML entry points used here, declared from the documented C API (nvml.h is not available
// at build time, see the header). nvmlReturn_t and the enums are C enums (int-sized); nvmlDevice_t is
// a pointer to an opaque struct.
using NvmlReturn = int;
using NvmlDevice = void*;
constexpr NvmlReturn kNvmlSuccess = 0;
constexpr int kNvmlClockSm = 1;         // NVML_CLOCK_SM
constexpr int kNvmlTemperatureGpu = 0;  // NVML_TEMPERATURE_GPU
constexpr auto kSamplePeriod = std::chrono::milliseconds(2);

struct Sample {
  bool has_clock = false, has_power = false, has_temperature = false, has_reasons = false;
  unsigned clock_mhz = 0, power_mw = 0, temperature_c = 0;
  unsigned long long reasons = 0;
};

template <typename Function>
Function symbol(void* library, const char* name) {
  return reinterpret_cast<Function>(dlsym(library, name));
}

}  // namespace

struct NvmlMonitor::Api {
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*shutdown)() = nullptr;
  const char* (*error_string)(NvmlReturn) = nullptr;
  NvmlReturn (*handle_by_pci_bus_id)(const char*, NvmlDevice*) = nullptr;
  NvmlReturn (*clock_info)(NvmlDevice, int, unsigned*) = nullptr;
  NvmlReturn (*power_usage)(NvmlDevice, unsigned*) = nullptr;
  NvmlReturn (*temperature)(NvmlDevice, int, unsigned*) = nullptr;
  NvmlReturn (*clock_event_reasons)(NvmlDevice, unsigned long long*) = nullptr;  // optional
  bool initialised = false;

  std::string describe(NvmlReturn status) const {
    const char* text = error_string != nullptr ? error_string(status) : nullptr;
    return text != nullptr ? text : "NVML error " + std::to_string(status);
  }
};

NvmlMonitor::NvmlMonitor(int cuda_device) : api_(std::make_unique<Api>()) {
  // NVML numbers devices its own way; the PCI bus id names the same card for both APIs.
  char bus_id[32] = {};
  const cudaError_t bus_status = cudaDeviceGetPCIBusId(bus_id, sizeof(bus_id), cuda_device);
  if (bus_status != cudaSuccess) {
    status_ = std::string("no PCI bus id for the CUDA device: ") + cudaGetErrorString(bus_status);
    return;
  }
  library_ = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library_ == nullptr) {
    const char* why = dlerror();
    status_ = std::string("libnvidia-ml.so.1 not loaded: ") + (why != nullptr ? why : "?");
    return;
  }
  Api& api = *api_;
  api.init = symbol<decltype(api.init)>(library_, "nvmlInit_v2");
  api.shutdown = symbol<decltype(api.shutdown)>(library_, "nvmlShutdown");
  api.error_string = symbol<decltype(api.error_string)>(library_, "nvmlErrorString");
  api.handle_by_pci_bus_id =
      symbol<decltype(api.handle_by_pci_bus_id)>(library_, "nvmlDeviceGetHandleByPciBusId_v2");
  api.clock_info = symbol<decltype(api.clock_info)>(library_, "nvmlDeviceGetClockInfo");
  api.power_usage = symbol<decltype(api.power_usage)>(library_, "nvmlDeviceGetPowerUsage");
  api.temperature = symbol<decltype(api.temperature)>(library_, "nvmlDeviceGetTemperature");
  // Renamed from "throttle" to "event" reasons in newer drivers; either serves.
  api.clock_event_reasons =
      symbol<decltype(api.clock_event_reasons)>(library_, "nvmlDeviceGetCurrentClocksEventReasons");
  if (api.clock_event_reasons == nullptr) {
    api.clock_event_reasons =
        symbol<decltype(api.clock_event_reasons)>(library_, "nvmlDeviceGetCurrentClocksThrottleReasons");
  }
  if (api.init == nullptr || api.shutdown == nullptr || api.handle_by_pci_bus_id == nullptr ||
      api.clock_info == nullptr || api.power_usage == nullptr || api.temperature == nullptr) {
    status_ = "libnvidia-ml.so.1 lacks an entry point this benchmark uses";
    return;
  }
  const NvmlReturn init_status = api.init();
  if (init_status != kNvmlSuccess) {
    status_ = "nvmlInit failed: " + api.describe(init_status);
    return;
  }
  api.initialised = true;
  NvmlDevice device = nullptr;
  const NvmlReturn handle_status = api.handle_by_pci_bus_id(bus_id, &device);
  if (handle_status != kNvmlSuccess || device == nullptr) {
    status_ = std::string("NVML has no device at PCI ") + bus_id + ": " + api.describe(handle_status);
    return;
  }
  device_ = device;
  status_ = std::string("ok (PCI ") + bus_id + ")";
}

NvmlMonitor::~NvmlMonitor() {
  if (api_ && api_->initialised) api_->shutdown();
  if (library_ != nullptr) dlclose(library_);
}

DeviceConditions NvmlMonitor::sample_during(const std::function<void()>& work) const {
  DeviceConditions conditions;
  if (!available()) {
    work();
    return conditions;
  }
  const Api& api = *api_;
  std::vector<Sample> samples;
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;
  std::thread sampler([&] {
    std::unique_lock<std::mutex> lock(mutex);
    do {
      lock.unlock();
      Sample sample;
      sample.has_clock = api.clock_info(device_, kNvmlClockSm, &sample.clock_mhz) == kNvmlSuccess;
      sample.has_power = api.power_usage(device_, &sample.power_mw) == kNvmlSuccess;
      sample.has_temperature =
          api.temperature(device_, kNvmlTemperatureGpu, &sample.temperature_c) == kNvmlSuccess;
      sample.has_reasons = api.clock_event_reasons != nullptr &&
                           api.clock_event_reasons(device_, &sample.reasons) == kNvmlSuccess;
      lock.lock();
      samples.push_back(sample);
    } while (!wake.wait_for(lock, kSamplePeriod, [&] { return stop; }));
  });
  auto stop_sampler = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    wake.notify_all();
    sampler.join();
  };
  try {
    work();
  } catch (...) {
    stop_sampler();
    throw;
  }
  stop_sampler();

  double clock_sum = 0.0, power_sum = 0.0;
  int clocks = 0, powers = 0;
  for (const Sample& sample : samples) {
    if (sample.has_clock) {
      clock_sum += sample.clock_mhz;
      ++clocks;
      const double mhz = sample.clock_mhz;
      conditions.sm_clock_min_mhz = clocks == 1 ? mhz : std::min(conditions.sm_clock_min_mhz, mhz);
      conditions.sm_clock_max_mhz = clocks == 1 ? mhz : std::max(conditions.sm_clock_max_mhz, mhz);
    }
    if (sample.has_power) {
      power_sum += 1e-3 * sample.power_mw;
      ++powers;
    }
    if (sample.has_temperature) {
      const double celsius = sample.temperature_c;
      conditions.temperature_c =
          std::isnan(conditions.temperature_c) ? celsius : std::max(conditions.temperature_c, celsius);
    }
    if (sample.has_reasons) {
      conditions.throttle_known = true;
      conditions.throttle_reasons |= sample.reasons;
    }
  }
  conditions.samples = clocks;
  if (clocks > 0) conditions.sm_clock_mhz = clock_sum / clocks;
  if (powers > 0) conditions.power_w = power_sum / powers;
  return conditions;
}

}  // namespace blockgemm_bench
