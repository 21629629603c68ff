"""The probe against the real local ComfyUI and inside real Locust runs (subprocesses; Locust is
never imported here): the /system_stats fallback, samples into the run's records and through the
`gpu_sample` hook, and a distributed run where only the master takes samples (from a sidecar)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_gpu_probe_sidecar import probe_env, start_sidecar, stop

from comfyload.orchestration.server import free_port
from gpu_probe.sources import open_source
from gpu_probe.system_stats import SystemStatsSampler

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent
# A second locustfile: any code can listen to the probe's samples.
LISTENER = """
import json, os
from locust import events

@events.init.add_listener
def listen(environment, **_kwargs):
    def on_sample(sample, **_kw):
        with open(os.environ["GPU_HOOK_FILE"], "a") as f:
            f.write(json.dumps(sample) + "\\n")
    environment.events.gpu_sample.add_listener(on_sample)
"""


def test_system_stats_fallback_against_the_real_comfyui(comfy):
    sampler, line = open_source(comfy, try_nvml=lambda: (None, "NVML: not here (test)"))
    assert sampler.source == "system_stats" and "fallback: VRAM only" in line and comfy in line
    first, second = sampler.sample(), sampler.sample()
    assert len(first) >= 1 and [r["gpu"] for r in first] == [r["gpu"] for r in second]
    for record in first:
        assert record["kind"] == "gpu" and record["source"] == "system_stats" and record["name"]
        assert 0 < record["mem_used_mb"] <= record["mem_total_mb"]
        assert 0 <= record["torch_vram_free_mb"] <= record["torch_vram_total_mb"]
        assert "util_gpu" not in record, "/system_stats has no utilisation: absent, not zero"
    assert second[0]["ts"] > first[0]["ts"]
    sampler.close()


def test_unreachable_comfyui_is_no_fallback():
    port = free_port()
    none, line = open_source(f"http://127.0.0.1:{port}", try_nvml=lambda: (None, "NVML: not here (test)"))
    assert none is None and "does not answer" in line
    with pytest.raises(OSError):  # requests' ConnectionError
        SystemStatsSampler(f"http://127.0.0.1:{port}")


def locust(*args, env=None, timeout=120):
    return subprocess.Popen(
        [sys.executable, "-m", "locust", *args],
        cwd=str(REPO),
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(proc, timeout=120):
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate(timeout=10)
        raise AssertionError(f"locust pid {proc.pid} did not finish:\n{out[-3000:]}") from None
    return out


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_local_run_records_samples_and_fires_the_hook(comfy, tmp_path):
    (tmp_path / "listener.py").write_text(LISTENER)
    run_dir, hook = tmp_path / "run", tmp_path / "hook.ndjson"
    proc = locust(
        "-f",
        f"locustfile.py,{tmp_path / 'listener.py'}",
        "--headless",
        "-u",
        "2",
        "-r",
        "2",
        "--run-time",
        "5s",
        "--host",
        comfy,
        "--run-dir",
        str(run_dir),
        "--gpu-interval",
        "0.2",
        "PromptUser",
        env={"GPU_HOOK_FILE": str(hook), "COMFY_RUNS_DIR": str(tmp_path)},
    )
    out = finish(proc)
    assert proc.returncode == 0, out[-3000:]
    assert out.count("GPU probe:") == 1, "one line says where samples come from"
    recorded = [r for r in read(run_dir / "comfyui_metrics.ndjson") if r["kind"] == "gpu"]
    heard = read(hook)
    assert len(recorded) >= 10, "5 s at 5 Hz"
    assert {(r["gpu"], r["ts"]) for r in recorded} <= {(r["gpu"], r["ts"]) for r in heard}, (
        "every recorded sample went through the hook"
    )
    assert {r["source"] for r in recorded} <= {"nvml", "system_stats"}
    gaps = [b["ts"] - a["ts"] for a, b in zip(recorded, recorded[1:]) if a["gpu"] == b["gpu"] == recorded[0]["gpu"]]
    # at --gpu-interval 0.2, not the 1-s default: never faster than the interval (the schedule is
    # fixed), and at least one tick on time (a busy machine stalls some ticks, never all of them)
    assert sorted(gaps)[len(gaps) // 2] > 0.1 and min(gaps) < 1.0, gaps  # not timed: 5x the interval


def test_distributed_run_samples_once_on_the_master_from_a_sidecar(comfy, tmp_path):
    """Master subscribes to the sidecar (NVML answered by the double); the worker takes no samples."""
    (tmp_path / "listener.py").write_text(LISTENER)
    sidecar_port, master_port = free_port(), free_port()
    sidecar = start_sidecar(sidecar_port)
    run_dir = tmp_path / "run"
    files = f"locustfile.py,{tmp_path / 'listener.py'}"
    master = worker = None
    try:
        master = locust(
            "-f",
            files,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--expect-workers",
            "1",
            "--headless",
            "-u",
            "2",
            "-r",
            "2",
            "--run-time",
            "5s",
            "--host",
            comfy,
            "--run-dir",
            str(run_dir),
            "--gpu-probe",
            f"http://127.0.0.1:{sidecar_port}",
            "--gpu-interval",
            "0.2",
            "PromptUser",
            env={"GPU_HOOK_FILE": str(tmp_path / "hook_master.ndjson")},
        )
        worker = locust(
            "-f",
            files,
            "--worker",
            "--master-port",
            str(master_port),
            "--run-dir",
            str(run_dir),
            "PromptUser",
            env={"GPU_HOOK_FILE": str(tmp_path / "hook_worker.ndjson")},
        )
        out = finish(master)
        finish(worker)
    finally:
        for proc in (master, worker):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        stop(sidecar)
    assert master.returncode == 0, out[-3000:]
    assert "streaming from" in out
    recorded = [r for r in read(run_dir / "comfyui_metrics.ndjson") if r["kind"] == "gpu"]
    assert len(recorded) >= 10 and all(
        r["source"] == "nvml" and r["name"] in ("Double A", "Double B") for r in recorded
    )
    keys = [(r["gpu"], r["ts"]) for r in recorded]
    assert len(keys) == len(set(keys)), "each sample recorded once"
    assert not (tmp_path / "hook_worker.ndjson").exists(), "the worker never samples nor fires the hook"
    assert read(tmp_path / "hook_master.ndjson")


def test_record_with_the_fallback(comfy, tmp_path):
    out = tmp_path / "gpu.ndjson"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpu_probe",
            "record",
            str(out),
            "--interval",
            "0.25",
            "--duration",
            "1",
            "--comfy",
            comfy,
        ],
        cwd=str(REPO),
        env=probe_env([]),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "fallback" in done.stderr
    records = read(out)
    assert len(records) >= 3 and all(r["source"] == "system_stats" for r in records)
