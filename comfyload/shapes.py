"""Load shapes. Each lives in its own module under scenarios/shapes/ (Locust uses the first shape
class a locustfile holds), and `python -m comfyload` adds the one a scenario names.

StepRamp finds the knee: it adds users (books, or prompts in flight) step by step, judges each
step on its own window with sla.evaluate, stops at the first breach (or a GPU held >= 90 %),
bisects between the last good and the first bad level, and reports the most users that met the
SLA. A step is judged on latency p95 and error rate: throughput and concurrency are what the
ramp measures, so they cannot be its stop rule."""
from __future__ import annotations

import time
from dataclasses import replace

from locust import LoadTestShape

from comfyload.sla import evaluate, renders

STEP_METRICS = ("latency_p95", "error_rate")
SETTLE_FRACTION = 0.2     # the first 20 % of each step is its warm-up
GPU_SATURATED_PCT = 90.0


def window(records, start: float, end: float) -> list[dict]:
    """Renders sent in [start, end) and finished by `end`."""
    return [r for r in renders(records) if start <= r["intended_send_ts"] < end
            and r.get("done_ts") is not None and r["done_ts"] <= end]


def mean_gpu_utilisation(records, start: float, end: float):
    values = [r["util_gpu"] for r in records if r.get("kind") == "gpu" and start <= r.get("ts", 0) < end
              and r.get("util_gpu") is not None]
    return sum(values) / len(values) if values else None


def judge_step(harness, users: int, start: float, end: float) -> dict:
    """The verdict of one step, as an event record."""
    records = list(harness.recent)
    units = window(records, start + (end - start) * SETTLE_FRACTION, end)
    targets = replace(harness.sla, warmup_seconds=0, warmup_prompts=0)
    verdicts = {v.metric: v for v in evaluate(units, targets)}
    gpu = mean_gpu_utilisation(records, start, end)
    breached = [m for m in STEP_METRICS if verdicts[m].passed is False]
    if gpu is not None and gpu >= GPU_SATURATED_PCT:
        breached.append("gpu_saturated")
    if not units:
        breached.append("no_completions")
    return {"kind": "event", "name": "ramp.step", "ts": time.time(), "users": users, "start_ts": start, "end_ts": end,
            "renders": len(units), "images_per_min": verdicts["throughput"].measured,
            "p95_s": verdicts["latency_p95"].measured, "error_pct": verdicts["error_rate"].measured,
            "gpu_util_mean": gpu, "passed": not breached, "breached": breached}


class StepRamp(LoadTestShape):
    """--ramp-start, --ramp-step, --ramp-hold, --ramp-max."""

    def __init__(self):
        super().__init__()
        self.reset_time()

    def reset_time(self):
        super().reset_time()
        self.level = None
        self.level_started = None
        self.results = {}   # users -> step event

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
        next_level = self.next_level(opts)
        if next_level is None:
            harness.emit(self.knee_event())
            return None
        self.level, self.level_started = next_level, time.time()
        return self.level, max(self.level, 1)

    def next_level(self, opts):
        """Up by --ramp-step while steps pass; after the first failure, bisect."""
        good = [u for u, s in self.results.items() if s["passed"]]
        bad = [u for u, s in self.results.items() if not s["passed"]]
        best, worst = max(good, default=None), min(bad, default=None)
        if worst is None:
            return None if self.level >= opts.ramp_max else min(self.level + opts.ramp_step, opts.ramp_max)
        if best is None or worst - best <= 1:
            return None
        return (best + worst) // 2

    def knee_event(self) -> dict:
        good = [s for s in self.results.values() if s["passed"]]
        knee = max(good, key=lambda s: s["users"]) if good else None
        return {"kind": "event", "name": "ramp.knee", "ts": time.time(),
                "users": knee["users"] if knee else 0, "unit": self.unit,
                "window": [knee["start_ts"], knee["end_ts"]] if knee else None,
                "images_per_min": knee["images_per_min"] if knee else None,
                "p95_s": knee["p95_s"] if knee else None,
                "first_breach": min((s["users"] for s in self.results.values() if not s["passed"]), default=None),
                "steps": sorted(self.results)}


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
                harness.emit({"kind": "event", "name": "soak.drift", "ts": now, "first_p95_s": self.first_p95,
                              "p95_s": p95, "rise_pct": (p95 / self.first_p95 - 1) * 100})
            self.window_start = now
        return opts.num_users, max(opts.num_users, 1)
