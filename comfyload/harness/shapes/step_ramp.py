"""StepRamp finds the knee: it adds users (books, or prompts in flight) step by step, judges each
step on its own window with sla.evaluate, stops at the first breach (or a GPU held >= 90 %),
bisects between the last good and the first bad level, and reports the most users that met the
SLA. A step is judged on latency p95 and error rate: throughput and concurrency are what the
ramp measures, so they cannot be its stop rule."""

from __future__ import annotations

import sys

from comfyload.analysis.ramp import judge_step, knee_event, next_level
from comfyload.harness.console import ramp_step_line
from comfyload.harness.shapes.base import Ramp


class StepRamp(Ramp):
    """--ramp-start, --ramp-step, --ramp-hold, --ramp-max."""

    def climb(self, opts, harness, now):
        if now - self.level_started < opts.ramp_hold:
            return self.hold()
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
        return self.move_to(level)
