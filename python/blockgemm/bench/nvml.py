"""SM clock, power, temperature and throttle reasons through NVML (the `pynvml` module of nvidia-ml-py),
sampled while a timing's replays run. Tolerates NVML's absence: the sampler then records nothing and says
why. No torch here.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

FIELDS = ("sm_clock_mhz", "power_w", "temperature_c")


def summarize_samples(samples: Sequence[Dict]) -> Dict:
    """Per field: mean, min, max over the samples that have it; the union of throttle reasons; the count."""
    out: Dict = {"samples": len(samples)}
    for field in FIELDS:
        values = [s[field] for s in samples if isinstance(s.get(field), (int, float))]
        if values:
            out[field] = {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}
    reasons = sorted({r for s in samples for r in s.get("throttle", ())})
    if reasons:
        out["throttle"] = reasons
    return out


# NVML clock-event (throttle) reason bits, by name; looked up in pynvml so that a missing one is skipped.
_THROTTLE_NAMES = (
    ("GpuIdle", "idle"),
    ("ApplicationsClocksSetting", "app_clocks"),
    ("SwPowerCap", "sw_power_cap"),
    ("HwSlowdown", "hw_slowdown"),
    ("SyncBoost", "sync_boost"),
    ("SwThermalSlowdown", "sw_thermal"),
    ("HwThermalSlowdown", "hw_thermal"),
    ("HwPowerBrakeSlowdown", "hw_power_brake"),
)


class Sampler:
    """One NVML handle for the device the process runs on (matched by PCI bus id when given)."""

    def __init__(self, pci_bus_id: Optional[str] = None, index: int = 0):
        self.available = False
        self.reason = ""
        self._nvml = None
        self._handle = None
        self._reasons: List = []
        try:
            import pynvml  # nvidia-ml-py

            pynvml.nvmlInit()
            handle = None
            if pci_bus_id:
                try:
                    handle = pynvml.nvmlDeviceGetHandleByPciBusId(
                        pci_bus_id.encode() if isinstance(pci_bus_id, str) else pci_bus_id
                    )
                except Exception:  # noqa: BLE001 (format differences between drivers: fall back to the index)
                    handle = None
            if handle is None:
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            self._nvml, self._handle = pynvml, handle
            for suffix, name in _THROTTLE_NAMES:
                for prefix in ("nvmlClocksEventReason", "nvmlClocksThrottleReason"):
                    bit = getattr(pynvml, prefix + suffix, None)
                    if bit is not None:
                        self._reasons.append((bit, name))
                        break
            self.available = True
        except Exception as error:  # noqa: BLE001 (ImportError, NVMLError, ...)
            self.reason = f"NVML unavailable: {type(error).__name__}: {error}"

    def sample(self) -> Dict:
        if not self.available:
            return {}
        nvml, handle = self._nvml, self._handle
        out: Dict = {}
        try:
            out["sm_clock_mhz"] = float(nvml.nvmlDeviceGetClockInfo(handle, nvml.NVML_CLOCK_SM))
        except Exception:  # noqa: BLE001
            pass
        try:
            out["power_w"] = nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0
        except Exception:  # noqa: BLE001
            pass
        try:
            out["temperature_c"] = float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))
        except Exception:  # noqa: BLE001
            pass
        try:
            getter = (
                getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
                or nvml.nvmlDeviceGetCurrentClocksThrottleReasons
            )
            mask = getter(handle)
            out["throttle"] = [name for bit, name in self._reasons if mask & bit]
        except Exception:  # noqa: BLE001
            pass
        return out

    def static_info(self) -> Dict:
        """Driver version, power limit and the card's maximum SM clock, once per run."""
        if not self.available:
            return {"nvml": self.reason}
        nvml, handle = self._nvml, self._handle
        info: Dict = {}
        for key, call in (
            ("driver", lambda: nvml.nvmlSystemGetDriverVersion()),
            ("power_limit_w", lambda: nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0),
            ("max_sm_clock_mhz", lambda: nvml.nvmlDeviceGetMaxClockInfo(handle, nvml.NVML_CLOCK_SM)),
            ("name", lambda: nvml.nvmlDeviceGetName(handle)),
        ):
            try:
                value = call()
                info[key] = value.decode() if isinstance(value, bytes) else value
            except Exception:  # noqa: BLE001
                pass
        return info
