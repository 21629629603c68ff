"""The sidecar protocol end to end over loopback: `python -m gpu_probe serve` (NVML answered by the
test double, through PYTHONPATH) streams NDJSON; a subscriber reads it, sees it drop when the
sidecar dies, and reconnects when it is back. Every process started here is stopped by its pid."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from comfyload.common.processes import stop_process
from comfyload.orchestration.server import free_port
from gpu_probe.subscribe import follow, stream

REPO = Path(__file__).resolve().parent.parent
DOUBLE_DIR = Path(__file__).resolve().parent / "nvml_double"
MB = 1024 * 1024
DEVICES = [
    {
        "name": "Double A",
        "util": [64, 20],
        "mem": [1000 * MB, 8000 * MB],
        "power_mw": 50_000,
        "limit_mw": 100_000,
        "temp": 60,
        "sm_mhz": 1500,
        "mem_mhz": 5000,
        "reasons": 1,
        "pcie": [4, 4, 16, 16],
        "tx_kb_s": 1024,
        "rx_kb_s": 4096,
        "fan": 30,
        "procs": [],
    },
    {"name": "Double B", "util": [5, 1], "mem": [10 * MB, 8000 * MB]},
]


def probe_env(devices=DEVICES):
    return {**os.environ, "PYTHONPATH": f"{DOUBLE_DIR}{os.pathsep}{REPO}", "NVML_DOUBLE": json.dumps(devices)}


def start_sidecar(port, *extra):
    proc = subprocess.Popen(
        [sys.executable, "-m", "gpu_probe", "serve", "--port", str(port), "--interval", "0.2", *extra],
        cwd=str(REPO),
        env=probe_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.time() + 20
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sidecar exited {proc.returncode}: {proc.stdout.read()}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/health", timeout=1).ok:
                return proc
        except requests.RequestException:
            time.sleep(0.1)
    stop(proc)
    raise AssertionError("sidecar did not come up")


def stop(proc):
    stop_process(proc)


@pytest.fixture
def sidecar():
    port = free_port()
    proc = start_sidecar(port)
    yield port, proc
    stop(proc)


def test_stream_carries_nvml_samples_of_every_gpu(sidecar):
    port, _ = sidecar
    seen = []
    for sample in stream(f"http://127.0.0.1:{port}"):
        seen.append(sample)
        if len(seen) >= 6:
            break
    assert {s["gpu"] for s in seen} == {0, 1}
    a = next(s for s in seen if s["gpu"] == 0)
    assert a["source"] == "nvml" and a["name"] == "Double A" and a["util_gpu"] == 64 and a["mem_used_mb"] == 1000
    assert a["throttle_reasons"] == ["gpu_idle"] and a["pcie_rx_mb_s"] == 4.0
    b = next(s for s in seen if s["gpu"] == 1)
    assert "fan_pct" not in b and "power_w" not in b, "refused fields stay absent across the wire"
    ts_a = [s["ts"] for s in seen if s["gpu"] == 0]
    assert ts_a == sorted(ts_a) and len(set(ts_a)) == len(ts_a)
    latest = requests.get(f"http://127.0.0.1:{port}/latest", timeout=5).json()
    assert latest["source"] == "nvml" and {s["gpu"] for s in latest["samples"]} == {0, 1}


def test_subscriber_reconnects_after_the_sidecar_drops():
    port = free_port()
    first = start_sidecar(port)
    second = None
    samples, lines, done = [], [], threading.Event()
    reader = threading.Thread(
        target=follow,
        args=(f"http://127.0.0.1:{port}", samples.append),
        kwargs={"say": lines.append, "stopped": done.is_set},
        daemon=True,
    )
    try:
        reader.start()
        wait_for(lambda: len(samples) >= 4, "samples from the first sidecar")
        stop(first)
        wait_for(lambda: any("unavailable" in line for line in lines), "the drop to be noticed")
        restarted = time.time()
        second = start_sidecar(port)
        wait_for(lambda: any(s["ts"] > restarted for s in samples), "samples after the restart")
        assert any("reconnected" in line for line in lines), lines
        assert sum("unavailable" in line for line in lines) == 1, "one line per drop, not one per retry"
    finally:
        done.set()
        stop(first)
        if second is not None:
            stop(second)
    reader.join(timeout=15)
    assert not reader.is_alive()


def wait_for(condition, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_serve_binds_loopback_by_default_and_refuses_a_taken_port(sidecar):
    port, proc = sidecar
    out = subprocess.run(
        [sys.executable, "-m", "gpu_probe", "serve", "--port", str(port)],
        cwd=str(REPO),
        env=probe_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith(f"error: cannot listen on 127.0.0.1:{port}")
    assert "Traceback" not in out.stderr


def test_no_gpu_and_no_fallback_is_one_line_exit_2():
    out = subprocess.run(
        [sys.executable, "-m", "gpu_probe", "serve", "--port", "0"],
        cwd=str(REPO),
        env=probe_env([]),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no GPU data" in out.stderr and out.stderr.strip().splitlines()[-1].startswith("error: nothing to sample")


def test_record_writes_ndjson_a_run_folder_can_hold(tmp_path):
    out = tmp_path / "comfyui_metrics.ndjson"
    done = subprocess.run(
        [sys.executable, "-m", "gpu_probe", "record", str(out), "--interval", "0.2", "--duration", "1"],
        cwd=str(REPO),
        env=probe_env(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    per_gpu = {g: [r for r in records if r["gpu"] == g] for g in (0, 1)}
    assert 4 <= len(per_gpu[0]) <= 7 and len(per_gpu[1]) == len(per_gpu[0])
    assert all(r["kind"] == "gpu" and r["source"] == "nvml" for r in records)
    from reports.figures import gpu_figures

    figures = gpu_figures(records)
    assert figures[0]["util_peak_pct"] == 64 and figures[0]["vram_peak_mb"] == 1000
