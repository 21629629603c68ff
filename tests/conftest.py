"""Shared fixtures. Integration tests run against one real local ComfyUI per pytest session
(the pinned 0.3.75 install, or COMFYUI_DIR), on a free port, stopped by its pid at the end."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from comfyload.orchestration.server import LocalComfyUI, free_port

REPO = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.addinivalue_line("markers", "integration: needs the real local ComfyUI")
    config.addinivalue_line("markers", "gpu: needs an NVIDIA GPU")
    config.addinivalue_line("markers", "compose: needs docker-compose (`make compose`; `make unit` leaves these out)")
    config.addinivalue_line(
        "markers", "browser: needs Debian's chromium (`make browser`; `make unit` leaves these out)"
    )


@pytest.fixture(scope="session")
def comfy(tmp_path_factory):
    """URL of a real ComfyUI with the drill pack (COMFY_TEST_HOST to reuse a running one)."""
    if os.environ.get("COMFY_TEST_HOST"):
        yield os.environ["COMFY_TEST_HOST"]
        return
    server = LocalComfyUI(port=free_port(), work_dir=tmp_path_factory.mktemp("comfyui"))
    server.start(ready_timeout=300)
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    path = tmp_path / "runs"
    path.mkdir()
    monkeypatch.setenv("COMFY_RUNS_DIR", str(path))
    return path


def run_cli(*args, env=None, timeout=240):
    """`python -m comfyload ...` in a subprocess (Locust's gevent patching stays out of pytest)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "comfyload", *args],
        cwd=str(REPO),
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_cli(*args, env=None, **popen):
    """`python -m comfyload ...` started and left running: the test stops it by its pid. Output is
    piped as text unless `popen` says otherwise (stdout=a log file, ...)."""
    piped = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    return subprocess.Popen(
        [sys.executable, "-m", "comfyload", *args], cwd=str(REPO), env={**os.environ, **(env or {})}, **(piped | popen)
    )


def only_run_dir(runs_dir: Path) -> Path:
    dirs = [p for p in runs_dir.iterdir() if p.is_dir()]
    assert len(dirs) == 1, dirs
    return dirs[0]


# Debian's chromium, headless, for the web UI and report tests (never `playwright install`).
CHROMIUM = "/usr/bin/chromium"


def browser_api():
    """Playwright's sync API over Debian's chromium. A test that needs it is marked `browser`: `make
    unit` leaves it out, and `make test` installs chromium first, so a missing one fails, never skips."""
    from playwright import sync_api

    assert os.path.exists(CHROMIUM), f"{CHROMIUM} not found: `make browser` installs Debian's chromium"
    return sync_api


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
