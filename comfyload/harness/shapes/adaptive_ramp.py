"""AdaptiveRamp: finds the knee in minutes by measuring where the model says it is.

1. Probe: `--ramp-start` users for 20 completions and 22 s at least (two of ComfyUI's gc pauses);
   their service times, warm-up out (comfyload.analysis.capacity.measure)
   go into the capacity model (comfyload.analysis.queueing), which predicts the knee for this SLA.
2. Steps around the prediction (comfyload.analysis.adaptive.next_level): the predicted knee, then one up
   while steps pass, one down while they fail. Each step's window opens once the previous level's
   work has drained plus one predicted page cycle, and closes as soon as its verdict is decided
   (the exceedance interval excludes 5 %), or once it holds the completions a p95 interval of
   `--ramp-ci-width` needs, or after `--ramp-hold` seconds.
3. The knee event carries its interval (decided pass .. decided failure - 1) and the prediction.

The linear StepRamp (scenarios/shapes/step_ramp.py) stays the option that assumes nothing."""

from __future__ import annotations

import sys
import time
from dataclasses import replace

from comfyload.analysis.adaptive import completions_needed, knee_interval, next_level, quantile_interval, step_verdict
from comfyload.analysis.capacity import measure
from comfyload.analysis.metrics import judge_units, units_of
from comfyload.analysis.queueing import simulate_closed
from comfyload.analysis.ramp import knee_event, knee_text, step_event
from comfyload.common.errors import UserError
from comfyload.common.records import EventNames, by_kind, event
from comfyload.harness.shapes.base import Ramp

PROBE_COMPLETIONS = 20
PROBE_MIN_S = 22.0  # ComfyUI pauses for gc.collect() at most every 10 s: see two, to model them
PROBE_WARMUP = 0.1  # the probe's first completions (at least 3) are a fresh server's warm-up
MIN_STEP_COMPLETIONS = 3
PREDICTION_PAGES = 1500


def predict_knee(harness, p95_target_s: float, maximum: int):
    """(knee, {users: predicted p50 page latency}, measured) from the probe's records, warm-up out."""
    return predict_knee_from(list(harness.recent), harness, p95_target_s, maximum)


def predict_knee_from(records: list, harness, p95_target_s: float, maximum: int, service_since: float | None = None):
    done = sorted((r for r in records if r.get("kind") == "prompt" and r.get("done_ts")), key=lambda r: r["done_ts"])
    warm = {id(r) for r in done[: max(3, int(len(done) * PROBE_WARMUP))]} if len(done) > 6 else set()
    measured = measure([r for r in records if id(r) not in warm], policy=harness.policy, service_since=service_since)
    servers = len(harness.hosts)
    knee, cycles = 0, {}
    for n in range(1, maximum + 2):
        point = simulate_closed(measured.workload, n, servers, seed=1, pages=PREDICTION_PAGES)
        cycles[n] = point.p50_s
        if point.p95_s > p95_target_s:
            break
        knee = n
    return min(knee, maximum), cycles, measured


def say(text: str) -> None:
    print(f"[comfyload] ramp: {text}", file=sys.stderr, flush=True)


class AdaptiveRamp(Ramp):
    """--ramp-start (probe level), --ramp-hold (longest step), --ramp-max, --ramp-ci-width, --ramp-confidence."""

    def reset(self) -> None:
        super().reset()
        self.predicted = None
        self.cycles = {}

    def climb(self, opts, harness, now):
        if self.predicted is None:
            return self._probe(harness, opts, now)
        return self._step(harness, opts, now)

    def _probe(self, harness, opts, now):
        done = [r for r in harness.recent if r.get("kind") == "prompt" and r.get("outcome") == "success"]
        probing = len(done) < PROBE_COMPLETIONS or now - self.level_started < PROBE_MIN_S
        if probing and now - self.level_started < max(opts.ramp_hold, PROBE_MIN_S):
            return self.hold()
        try:
            self.predicted, self.cycles, measured = predict_knee(harness, harness.sla.latency_p95_s, opts.ramp_max)
        except UserError as exc:  # nothing to measure (every probe prompt failed): climb from the probe level
            say(f"no prediction ({exc}); measuring from {self.level} {self.unit}")
            self.predicted = self.level
            return self.move_to(self.level)
        harness.emit(
            event(
                EventNames.RAMP_PREDICTION,
                time.time(),
                knee=self.predicted,
                unit=self.unit,
                servers=len(harness.hosts),
                probe_users=self.level,
                probe_s=now - self.level_started,
                service=measured.service,
                client_s=measured.client_s,
                server_gap_s=measured.server_gap_s,
                p95_target_s=harness.sla.latency_p95_s,
                pause_s=measured.workload.pause_s,
                pause_every_s=measured.workload.pause_every_s,
            )
        )
        service = ", ".join(f"{k} p50 {v['p50_s']:.3f} s" for k, v in measured.service.items())
        say(
            f"probe at {self.level} {self.unit}: {service}; predicted knee {self.predicted} {self.unit} "
            f"(SLA p95 {harness.sla.latency_p95_s:g} s)"
        )
        return self.move_to(next_level({}, self.predicted, opts.ramp_max))

    def _cycle(self, level: int) -> float:
        """One predicted page cycle at `level` (beyond the levels simulated: scaled from the last)."""
        if level in self.cycles or not self.cycles:
            return self.cycles.get(level, 0.0)
        top = max(self.cycles)
        return self.cycles[top] * level / top

    def _step(self, harness, opts, now):
        records = list(harness.recent)
        units_all = units_of(by_kind(records))
        carried = [r["done_ts"] for r in units_all if r["intended_send_ts"] < self.level_started and r.get("done_ts")]
        settled = max(max(carried, default=self.level_started), self.level_started) + self._cycle(self.level)
        units = [
            r
            for r in units_all
            if r["intended_send_ts"] >= settled and r.get("done_ts") is not None and r["done_ts"] <= now
        ]
        target = harness.sla.latency_p95_s
        latencies = [r["e2e_ms"] / 1000.0 if r.get("outcome") == "success" else float("inf") for r in units]
        confidence = opts.ramp_confidence
        needed = completions_needed(opts.ramp_ci_width, confidence)
        verdict = step_verdict(latencies, target, confidence) if len(latencies) >= MIN_STEP_COMPLETIONS else None
        timed_out = now - self.level_started >= opts.ramp_hold
        if verdict is None and len(latencies) < needed and not timed_out:
            return self.hold()
        step = self._judge(harness, units, settled, now, verdict, needed, confidence)
        harness.emit(step)
        self.results[self.level] = step
        ci = step["p95_ci_s"]
        say(
            f"{self.level} {self.unit}: {'PASS' if step['passed'] else 'FAIL'} "
            f"({'decided' if step['decided'] else 'undecided'}) p95 "
            + ("-" if step["p95_s"] is None else f"{step['p95_s']:.2f} s")
            + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
            + f" on {step['renders']} pages, {now - self.level_started:.0f} s"
        )
        hint = self._predict_again(harness, opts)
        level = next_level({u: s["passed"] for u, s in self.results.items()}, self.predicted, opts.ramp_max, hint)
        if level is not None:
            say(f"knee predicted again from this step: {hint}; next {level} {self.unit}")
        if level is None:
            knee = knee_event(self.results, self.unit, opts.ramp_max)
            low, high = knee_interval(self.results)
            knee.update(
                shape="adaptive",
                knee_low=low,
                knee_high=high,
                predicted=self.predicted,
                time_to_knee_s=time.time() - self.began,
            )
            harness.emit(knee)
            say(f"{knee_text(knee)} (interval {low}..{high}), found in {knee['time_to_knee_s']:.0f} s")
            return None
        return self.move_to(level)

    def _predict_again(self, harness, opts):
        """The knee predicted from this step's service times and the pauses seen since the probe
        (None when the step has too few completions to say)."""
        started = self.level_started
        records = [r for r in harness.recent if r.get("kind") != "prompt" or r.get("intended_send_ts", 0) >= self.began]
        if (
            sum(
                1
                for r in records
                if r.get("kind") == "prompt" and r.get("outcome") == "success" and r["intended_send_ts"] >= started
            )
            < MIN_STEP_COMPLETIONS
        ):
            return None
        try:
            knee, cycles, _ = predict_knee_from(
                records, harness, harness.sla.latency_p95_s, opts.ramp_max, service_since=started
            )
        except UserError:
            return None
        self.cycles = {**self.cycles, **cycles}
        return knee

    def _judge(self, harness, units, settled, now, verdict, needed, confidence) -> dict:
        targets = replace(harness.sla, warmup_seconds=0, warmup_prompts=0)
        verdicts = judge_units(units, targets, settled, now, label="adaptive ramp step")
        ok_latencies = [r["e2e_ms"] / 1000.0 for r in units if r.get("outcome") == "success"]
        ci = quantile_interval(ok_latencies, confidence)
        target = harness.sla.latency_p95_s
        # decided: by the exceedance test, or the p95's own interval lies on one side of the target
        decided = verdict is not None or (ci is not None and (ci[1] <= target or ci[0] > target))
        passed = verdict if verdict is not None else bool(verdicts["latency_p95"].passed)
        breached = [] if passed else ["latency_p95"]
        if verdicts["error_rate"].passed is False:
            passed, breached = False, breached + ["error_rate"]
        if not units:
            passed, decided, breached = False, False, breached + ["no_completions"]
        return step_event(
            self.level,
            self.level_started,
            settled,
            now,
            units,
            verdicts,
            passed,
            breached,
            gpu_util_mean=None,
            decided=decided,
            completions_needed=needed,
            p95_ci_s=list(ci) if ci else None,
            confidence=confidence,
        )
