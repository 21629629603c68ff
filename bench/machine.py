"""The machine a bench run measured on, for the head of bench/RESULTS.md: the figures are only
comparable on the same CPU, load and suite commit."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import psutil
import requests

from comfyload.common.paths import REPO


def machine(url: str) -> dict:
    stats = requests.get(url + "/system_stats", timeout=30).json()
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=str(REPO), capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "comfyload", "locustfile.py"],
        cwd=str(REPO),
        capture_output=True,
        text=True,
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "ram_gib": psutil.virtual_memory().total / 2**30,
        "cpu": model,
        "python": platform.python_version(),
        "comfyui": stats.get("system", {}).get("comfyui_version"),
        "locust": importlib.metadata.version("locust"),
        "os": platform.platform(),
        "commit": commit + (" (+ uncommitted harness changes)" if dirty else ""),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "load": os.getloadavg(),
    }
