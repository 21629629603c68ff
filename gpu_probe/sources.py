"""Which source samples: NVML when a driver and a GPU answer here, else ComfyUI's /system_stats
when a server is given, else none (one line says so; a run goes on without GPU data)."""

from __future__ import annotations

from gpu_probe.nvml import NvmlSampler
from gpu_probe.system_stats import NotComfyUI, SystemStatsSampler


def nvml_sampler(nvml=None):
    """(sampler, None) or (None, why not)."""
    try:
        return NvmlSampler(nvml), None
    except ImportError as exc:
        return None, f"pynvml not installed ({exc})"
    except Exception as exc:  # the binding's NVMLError: no driver, no GPU, no permission
        return None, f"NVML: {exc}"


def open_source(comfy_host: str | None = None, try_nvml=nvml_sampler):
    """(sampler, line): the sampler is None when there is nothing to sample; the line says what
    samples (or why nothing does), for the one line a probe prints at start. `try_nvml` lets
    Locust run the driver calls in a native thread."""
    sampler, why = try_nvml()
    if sampler is not None:
        return sampler, f"GPU probe: {sampler.describe()}"
    if not comfy_host:
        return None, f"GPU probe: no NVIDIA GPU here ({why}) and no ComfyUI to ask; no GPU data"
    try:
        fallback = SystemStatsSampler(comfy_host)
    except NotComfyUI:
        return None, (
            f"GPU probe: no NVIDIA GPU here ({why}) and {comfy_host} answered but is not ComfyUI "
            "(its /system_stats has no system/devices); no GPU data"
        )
    except Exception as exc:  # requests' errors, bad JSON
        return None, (
            f"GPU probe: no NVIDIA GPU here ({why}) and {comfy_host}/system_stats does not answer "
            f"({type(exc).__name__}); no GPU data"
        )
    return (
        fallback,
        f"GPU probe: no NVIDIA GPU here ({why});\n  fallback: VRAM only, from {fallback.describe()}",
    )  # two lines: 100 columns
