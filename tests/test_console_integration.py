"""Headless consoles against the real ComfyUI: a ramp prints a line per judged step, the output
fits 100 columns, and SIGTERM (what `timeout` and a CI cancel send) or Ctrl-C to the wrapper ends
the run cleanly with its summary and report written, for `run` and for `ui`."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
from conftest import REPO

from comfyload.common.processes import stop_process
from comfyload.orchestration.server import free_port

pytestmark = pytest.mark.integration
# Locust's own log lines (timestamped) and Python's warnings are not ours to wrap
NOT_OURS = re.compile(
    r"^\[\d{4}-\d\d-\d\d |MonkeyPatchWarning|monkey\.patch_all|^\s+super\(|^\[comfyload\] run folder "
)


def start(args, runs, log_path, new_session=False):
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "comfyload", *args],
        cwd=str(REPO),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COMFY_RUNS_DIR": str(runs)},
        start_new_session=new_session,
        preexec_fn=default_ctrl_c,
    )
    log.close()
    return proc


def default_ctrl_c():
    """A terminal's foreground command gets Ctrl-C; a job a script put in the background (`make test &`)
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt: the Ctrl-C test would
    wait out its timeout on a run that cannot see it (seen on a fresh clone started that way)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(log_path, text, proc, timeout=90):
    deadline = time.time() + timeout
    while text not in log_path.read_text():
        assert proc.poll() is None, log_path.read_text()[-3000:]
        assert time.time() < deadline, f"no {text!r} in:\n" + log_path.read_text()[-3000:]
        time.sleep(0.3)


def the_run_folder(runs):
    (run_dir,) = [p for p in runs.iterdir() if p.is_dir() and not p.name.endswith("-ui-session")]
    return run_dir


def test_ramp_step_lines_100_columns_and_sigterm_writes_summary_and_report(comfy, tmp_path):
    runs, log_path = tmp_path / "runs", tmp_path / "out.log"
    proc = start(
        [
            "run",
            "--scenario",
            "ramp_step",
            "--host",
            comfy,
            "--ramp-start",
            "1",
            "--ramp-hold",
            "5",
            "--ramp-max",
            "30",
            "--book-profile",
            "cpu_small",
            "--run-time",
            "5m",
        ],
        runs,
        log_path,
    )
    try:
        wait_for(log_path, "[ramp] step 1:", proc)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=120) in (0, 1)
    finally:
        stop_process(proc)
    out = log_path.read_text()
    step = next(line for line in out.splitlines() if line.startswith("[ramp] step 1:"))
    assert re.search(
        r"step 1: 1 users (PASS|FAIL) \| \d+ s, \d+ done, p95 [\d.]+ s, \d+/min \| next \d+, ETA ≤ ", step
    ), step
    assert "stopping the run" in out and "== ComfyLoad summary" in out and "SLA verdict:" in out
    run_dir = the_run_folder(runs)
    assert (run_dir / "summary.json").is_file() and (run_dir / "report.html").is_file()
    wide = [
        line for line in out.splitlines() if len(line) > 100 and not NOT_OURS.search(line) and str(runs) not in line
    ]  # a run folder's path is as long as it is
    assert not wide, "\n".join(wide)
    assert "Response time percentiles, ms" in out, "Locust's tables are printed, narrow"


def test_ctrl_c_to_the_wrapper_writes_summary_and_report(comfy, tmp_path):
    runs, log_path = tmp_path / "runs", tmp_path / "out.log"
    proc = start(
        ["run", "--host", comfy, "--workflow", "sleep", "--concurrency", "2", "--jobs", "0", "--run-time", "5m"],
        runs,
        log_path,
        new_session=True,
    )
    try:
        wait_for(log_path, "prompts ok", proc)
        os.killpg(proc.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole process group
        assert proc.wait(timeout=120) in (0, 1)
    finally:
        stop_process(proc)
    out = log_path.read_text()
    assert "== ComfyLoad summary" in out and "report:" in out
    run_dir = the_run_folder(runs)
    assert (run_dir / "summary.json").is_file() and (run_dir / "report.html").is_file()


def test_sigterm_to_the_ui_wrapper_finishes_the_running_test(comfy, tmp_path):
    runs, log_path = tmp_path / "runs", tmp_path / "out.log"
    port = free_port()
    proc = start(["ui", "--host", comfy, "--web-port", str(port), "--workflow", "sleep"], runs, log_path)
    try:
        wait_for(log_path, "Starting web interface", proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:
            try:
                reply = requests.post(
                    url + "/swarm",
                    data={"user_count": 2, "spawn_rate": 2, "host": comfy, "user_class": "PromptUser"},
                    timeout=5,
                ).json()
                break
            except requests.RequestException:
                assert time.time() < deadline
                time.sleep(0.3)
        assert reply["success"], reply
        deadline = time.time() + 60
        while (
            requests.get(url + "/comfyload/live.json", timeout=5).json()["windows"].get("run so far", {}).get("ok", 0)
            < 2
        ):
            assert time.time() < deadline
            time.sleep(0.5)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=120) in (0, 1)
    finally:
        stop_process(proc)
    out = log_path.read_text()
    run_dir = the_run_folder(runs)
    assert (run_dir / "summary.json").is_file() and (run_dir / "report.html").is_file()
    assert "== ComfyLoad summary" in out
    stops = [line for line in (run_dir / "comfyui_metrics.ndjson").read_text().splitlines() if '"run.stop"' in line]
    assert len(stops) == 1 and ("Locust quit" in stops[0] or "session ended" in stops[0]), stops
