"""The fallback source when no NVML is reachable (a remote ComfyUI, a GPU in another container):
ComfyUI's own /system_stats, which reports VRAM only (total/free, and torch's reserved/free
share). Records say `"source": "system_stats"` so nobody mistakes them for NVML's."""

from __future__ import annotations

import time

import requests

MB = 1024 * 1024
TIMEOUT_S = 5.0


class NotComfyUI(ValueError):
    """The host answered /system_stats with JSON that is not ComfyUI's."""


class SystemStatsSampler:
    source = "system_stats"
    blocking = False  # plain HTTP: cooperative under gevent

    def __init__(self, host: str, session: requests.Session | None = None):
        self.url = host.rstrip("/") + "/system_stats"
        self.session = session or requests.Session()
        self.devices = self.fetch()  # raises when ComfyUI does not answer: no fallback then

    def fetch(self) -> list[dict]:
        response = self.session.get(self.url, timeout=TIMEOUT_S)
        response.raise_for_status()
        stats = response.json()
        if not isinstance(stats, dict) or not isinstance(stats.get("devices"), list) or "system" not in stats:
            raise NotComfyUI(f"{self.url} answered, but not as ComfyUI (no system/devices)")
        return [d for d in stats["devices"] if isinstance(d, dict)]

    def describe(self) -> str:
        names = ", ".join(str(d.get("name")) for d in self.devices) or "no devices"
        return f"ComfyUI {self.url} ({names})"

    def sample(self) -> list[dict]:
        now = time.time()
        return [self.record(i, d, now) for i, d in enumerate(self.fetch())]

    def record(self, position: int, device: dict, now: float) -> dict:
        def mb(key):
            value = device.get(key)
            return None if value is None else value / MB

        total, free = mb("vram_total"), mb("vram_free")
        torch_total, torch_free = mb("torch_vram_total"), mb("torch_vram_free")
        index = device.get("index")
        fields = {
            "name": device.get("name"),
            "device_type": device.get("type"),
            "mem_total_mb": total,
            "mem_used_mb": None if total is None or free is None else total - free,
            "torch_vram_total_mb": torch_total,
            "torch_vram_free_mb": torch_free,
        }
        record = {"kind": "gpu", "ts": now, "source": self.source, "gpu": position if index is None else index}
        record.update({k: v for k, v in fields.items() if v is not None})
        return record

    def close(self) -> None:
        self.session.close()
