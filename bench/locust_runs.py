"""ComfyLoad's side of a measurement: one bounded headless Locust run of PromptUser, and its
prompt records."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from comfyload.common.paths import REPO
from comfyload.common.processes import stop_process
from comfyload.common.recorder import METRICS_FILE, read_records


def locust_env(runs_dir: Path) -> dict:
    """The bench's own settings only: a COMFY_* variable from the caller's shell must not change
    what is measured."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMFY_")}
    env["COMFY_RUNS_DIR"] = str(runs_dir)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def locust_command(
    url: str, workflow: Path, users: int, jobs: int, run_dir: Path, run_time_s: int, timeout_s: float
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(REPO / "locustfile.py"),
        "--headless",
        "--only-summary",
        "--host",
        url,
        "-u",
        str(users),
        "-r",
        str(users),
        "--run-time",
        f"{run_time_s}s",
        "--workflow",
        str(workflow),
        "--jobs",
        str(jobs),
        "--per-prompt-timeout",
        str(timeout_s),
        "--run-dir",
        str(run_dir),
        "--scenario-name",
        "bench",
        "PromptUser",
    ]


def read_prompt_records(run_dir: Path) -> list[dict]:
    if not (run_dir / METRICS_FILE).exists():
        return []
    return [r for r in read_records(run_dir) if r.get("kind") == "prompt"]


def run_comfyload(
    url: str, workflow: Path, users: int, jobs: int, work: Path, label: str, max_seconds: int = 120
) -> list[dict]:
    """One bounded headless Locust run of PromptUser; returns its prompt records."""
    run_dir = work / f"{label}-{time.monotonic_ns()}"
    cmd = locust_command(url, workflow, users, jobs, run_dir, max_seconds, timeout_s=60)
    with open(work / f"{label}.log", "ab") as out:
        proc = subprocess.Popen(cmd, cwd=str(REPO), env=locust_env(work), stdout=out, stderr=subprocess.STDOUT)
        try:
            proc.wait(max_seconds + 60)
        except subprocess.TimeoutExpired:
            stop_process(proc, grace=30, first=signal.SIGINT)
    records = read_prompt_records(run_dir)
    if not records:
        tail = (work / f"{label}.log").read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(f"the Locust run {label} recorded nothing; its log ends:\n" + "\n".join(tail))
    return records
