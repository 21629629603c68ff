"""Soak: a constant load for hours, watched for drift (a p95 that creeps up: a leak, a cache, a
queue that never drains)."""

from __future__ import annotations

from comfyload.analysis.ramp import judge_step
from comfyload.common.records import EventNames, event
from comfyload.harness.shapes.base import Shape, spawn_at_once


class Soak(Shape):
    """Constant -u users for hours; every --soak-window seconds compares that window's p95 with
    the first window's and emits `soak.drift` when it rose more than --soak-drift-pct."""

    def reset(self) -> None:
        self.window_start = None
        self.first_p95 = None

    def users_now(self, opts, harness, now):
        self.window_start = self.window_start or now
        if harness is not None and now - self.window_start >= opts.soak_window:
            step = judge_step(harness, opts.num_users, self.window_start, now)
            step["name"] = "soak.window"
            harness.emit(step)
            p95 = step["p95_s"]
            if self.first_p95 is None:
                self.first_p95 = p95
            elif p95 is not None and self.first_p95 and (p95 / self.first_p95 - 1) * 100 > opts.soak_drift_pct:
                harness.emit(
                    event(
                        EventNames.SOAK_DRIFT,
                        now,
                        first_p95_s=self.first_p95,
                        p95_s=p95,
                        rise_pct=(p95 / self.first_p95 - 1) * 100,
                    )
                )
            self.window_start = now
        return spawn_at_once(opts.num_users)
