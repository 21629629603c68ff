"""Load shapes. Each lives in its own module under scenarios/shapes/ (Locust uses the first shape
class a locustfile holds), and `python -m comfyload` adds the one a scenario names.

StepRamp finds the knee: it adds users (books, or prompts in flight) step by step, judges each
step on its own window with sla.evaluate, stops at the first breach (or a GPU held >= 90 %),
bisects between the last good and the first bad level, and reports the most users that met the
SLA. A step is judged on latency p95 and error rate: throughput and concurrency are what the
ramp measures, so they cannot be its stop rule."""

from __future__ import annotations

import sys
import time

from locust import LoadTestShape

from comfyload.analysis.ramp import judge_step, knee_event, next_level
from comfyload.harness.console import ramp_step_line


class StepRamp(LoadTestShape):
    """--ramp-start, --ramp-step, --ramp-hold, --ramp-max."""

    def __init__(self):
        super().__init__()
        self.reset_time()

    def reset_time(self):
        super().reset_time()
        self.level = None
        self.level_started = None
        self.results = {}  # users -> step event

    def tick(self):
        env = self.runner.environment
        opts = env.parsed_options
        now = time.time()
        if self.level is None:
            self.level, self.level_started = opts.ramp_start, now
        harness = getattr(env, "comfyload", None)
        if harness is None or now - self.level_started < opts.ramp_hold:
            return self.level, max(self.level, 1)
        self.unit = "books" if harness.book_mix is not None else "prompts in flight"
        step = judge_step(harness, self.level, self.level_started, now)
        harness.emit(step)
        self.results[self.level] = step
        level = next_level(
            {u: st["passed"] for u, st in self.results.items()}, self.level, opts.ramp_step, opts.ramp_max
        )
        print(ramp_step_line(step, len(self.results), level, opts, now), file=sys.stderr, flush=True)
        if level is None:
            harness.emit(knee_event(self.results, self.unit, opts.ramp_max))
            return None
        self.level, self.level_started = level, time.time()
        return self.level, max(self.level, 1)


class Spike(LoadTestShape):
    """--spike-base users, then --spike-users from --spike-at for --spike-duration, then back."""

    def tick(self):
        opts = self.runner.environment.parsed_options
        t = self.get_run_time()
        users = opts.spike_users if opts.spike_at <= t < opts.spike_at + opts.spike_duration else opts.spike_base
        return users, max(users, 1)


class Soak(LoadTestShape):
    """Constant -u users for hours; every --soak-window seconds compares that window's p95 with
    the first window's and emits `soak.drift` when it rose more than --soak-drift-pct."""

    def __init__(self):
        super().__init__()
        self.reset_time()

    def reset_time(self):
        super().reset_time()
        self.window_start = None
        self.first_p95 = None

    def tick(self):
        env = self.runner.environment
        opts = env.parsed_options
        now = time.time()
        self.window_start = self.window_start or now
        harness = getattr(env, "comfyload", None)
        if harness is not None and now - self.window_start >= opts.soak_window:
            step = judge_step(harness, opts.num_users, self.window_start, now)
            step["name"] = "soak.window"
            harness.emit(step)
            p95 = step["p95_s"]
            if self.first_p95 is None:
                self.first_p95 = p95
            elif p95 is not None and self.first_p95 and (p95 / self.first_p95 - 1) * 100 > opts.soak_drift_pct:
                harness.emit(
                    {
                        "kind": "event",
                        "name": "soak.drift",
                        "ts": now,
                        "first_p95_s": self.first_p95,
                        "p95_s": p95,
                        "rise_pct": (p95 / self.first_p95 - 1) * 100,
                    }
                )
            self.window_start = now
        return opts.num_users, max(opts.num_users, 1)
