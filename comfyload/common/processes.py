"""Stopping a child process by its pid: the one way the CLI, the tests and the benchmarks do it."""

from __future__ import annotations

import signal
import subprocess


def stop_process(proc: subprocess.Popen, grace: float = 10.0, first: int = signal.SIGTERM) -> None:
    """`first` (SIGTERM; SIGINT lets Locust stop its users and write its records), then SIGKILL
    after `grace` seconds. A process that already ended is left alone."""
    if proc.poll() is not None:
        return
    proc.send_signal(first)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def wait_or_stop(processes, grace: float = 15.0) -> None:
    """Waits up to `grace` in all for processes expected to end by themselves (workers leave when
    their master quits); any still running is stopped."""
    import time

    deadline = time.monotonic() + grace
    for proc in processes:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            stop_process(proc, grace=5)
