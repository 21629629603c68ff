"""How much of each measurement `make bench` runs, and the prompts it sends (bench/workflows/)."""

from __future__ import annotations

import json
import sys

from comfyload.common.paths import REPO

WORKFLOWS = REPO / "bench" / "workflows"
SLEEP0 = json.loads((WORKFLOWS / "sleep0.json").read_text())
SLEEP_KNOWN = json.loads((WORKFLOWS / "sleep1p3.json").read_text())
KNOWN_MS = SLEEP_KNOWN["1"]["inputs"]["seconds"] * 1000.0
WAIT_WORKFLOW = WORKFLOWS / "sleep_wait.json"
NO_SOCKET = "comfyload-bench-no-socket"  # a client id no websocket uses


class Plan:
    """How much of each measurement to run (--quick: about a third of the time)."""

    def __init__(self, quick: bool):
        self.quick = quick
        self.rounds = 1 if quick else 2  # A B (B A) pairs per comparison
        self.jobs_many = 1000 if quick else 3000  # prompts per run at 50 users
        self.jobs_one = 150 if quick else 400  # prompts per run at 1 user
        self.many_users = 50
        self.waiters = 2000
        self.idle_window_s = 10 if quick else 20
        self.server_jobs = 800 if quick else 2000  # the fixed workload of the slowdown measurement
        self.slowdown_repeats = 1 if quick else 2  # phases with waiters (one more without)
        self.known_prompts = 5 if quick else 10
        self.poll_interval_s = 2.0
        self.report_args = ["--prompts", "100000", "--seconds", "8640"] if quick else []


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
