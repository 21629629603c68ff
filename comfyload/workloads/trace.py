"""Trace replay: arrivals at the times, and of the kinds, that a real day (or an earlier run) saw.

`--arrivals-trace FILE` is read by OpenLoopUser in place of a synthetic arrival process, so late
and dropped arrivals are counted exactly as for open loop. FILE is either
- a run's comfyui_metrics.ndjson: its books (`book` records: start_ts, profile) when it ran books,
  else its prompts (first attempts: intended_send_ts, workflow); or
- an NDJSON log, one line per arrival: {"ts": <seconds>, "workflow": NAME} or {"ts": ..., "profile": NAME}
  (neither: the run's --workflow, or a book of --book-profile with --arrival-unit book).
Times are relative to the first arrival and divided by `--trace-speed` (2 = twice as fast)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from comfyload.common.errors import UserError


@dataclass(frozen=True)
class Arrival:
    offset_s: float
    workflow: str | None = None
    profile: str | None = None


@dataclass(frozen=True)
class TraceModel:
    """The same face as arrivals.ArrivalModel (`kind`, `rate`, `arrivals()`), but finite."""

    arrivals_list: tuple[Arrival, ...]
    speed: float = 1.0
    kind: str = "trace"

    @property
    def rate(self) -> float:
        span = self.arrivals_list[-1].offset_s / self.speed if len(self.arrivals_list) > 1 else 0.0
        return len(self.arrivals_list) / span if span > 0 else 0.0

    def arrivals(self, rng=None):
        """(gap in seconds since the previous arrival, Arrival) for each arrival of the trace."""
        previous = 0.0
        for a in self.arrivals_list:
            at = a.offset_s / self.speed
            yield at - previous, a
            previous = at

    @property
    def workflows(self) -> list[str]:
        return sorted({a.workflow for a in self.arrivals_list if a.workflow})

    @property
    def profiles(self) -> list[str]:
        return sorted({a.profile for a in self.arrivals_list if a.profile})


def read_lines(path: Path) -> list[dict]:
    rows = []
    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"--arrivals-trace {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as exc:
            raise UserError(
                f"--arrivals-trace {path}: line {number} is not JSON ({exc.msg} at column {exc.colno})"
            ) from None
        if not isinstance(row, dict):
            raise UserError(f"--arrivals-trace {path}: line {number} is not a JSON object")
        rows.append((number, row))
    return rows


def arrivals_from_rows(rows: list, path: Path) -> list[tuple[float, str | None, str | None]]:
    """(ts, workflow, profile) per arrival: a run's records or a plain log."""
    if any("kind" in row for _, row in rows):
        books = [r for _, r in rows if r.get("kind") == "book" and r.get("start_ts") is not None]
        if books:
            return [(r["start_ts"], None, r.get("profile")) for r in books]
        return [
            (r["intended_send_ts"], r.get("workflow"), None)
            for _, r in rows
            if r.get("kind") == "prompt"
            and r.get("attempt", 1) == 1
            and not r.get("book_id")
            and r.get("intended_send_ts") is not None
        ]
    out = []
    for number, r in rows:
        ts = r.get("ts")
        if isinstance(ts, bool) or not isinstance(ts, (int, float)):
            raise UserError(f"--arrivals-trace {path}: line {number} needs a numeric `ts` (seconds)")
        if r.get("workflow") is not None and r.get("profile") is not None:
            raise UserError(f"--arrivals-trace {path}: line {number} names both a workflow and a profile")
        out.append((float(ts), r.get("workflow"), r.get("profile")))
    return out


def load_trace(path_text: str, speed: float = 1.0) -> TraceModel:
    if speed <= 0:
        raise UserError(f"--trace-speed must be > 0, not {speed!r}")
    path = Path(path_text)
    found = arrivals_from_rows(read_lines(path), path)
    if not found:
        raise UserError(f"--arrivals-trace {path}: no arrivals in it (prompt or book records, or lines with `ts`)")
    found.sort(key=lambda a: a[0])
    first = found[0][0]
    return TraceModel(tuple(Arrival(ts - first, wf, profile) for ts, wf, profile in found), speed)


# ---- in a run (OpenLoopUser) -------------------------------------------------------------------
def open_loop_model(harness):
    """The OpenLoopUser's arrivals: the trace when --arrivals-trace names one (the run ends with
    it: its length caps the job budget), else the synthetic process."""
    from comfyload.workloads.open_loop import arrival_model

    opts = harness.opts
    if not getattr(opts, "arrivals_trace", ""):
        return arrival_model(opts.arrival, opts.arrival_rate, opts.gamma_cv)
    model = load_trace(opts.arrivals_trace, opts.trace_speed)
    harness.jobs_limit = min(harness.jobs_limit or len(model.arrivals_list), len(model.arrivals_list))
    return model


_loaded: dict = {}


def serve_arrival(harness, fleet, intended: float, what: Arrival | None, lateness_ms: float | None = None) -> None:
    """Runs one arrival: its workflow or its book profile, else the run's own (--arrival-unit)."""
    from comfyload.protocol.workload import load_workflow
    from comfyload.workloads.book import load_book_mix

    if what is not None and what.profile:
        key = ("profile", what.profile, harness.opts.book_profiles)
        if key not in _loaded:
            _loaded[key] = load_book_mix(what.profile, harness.opts.book_profiles).profiles[0]
        harness.run_book(fleet, intended_start=intended, profile=_loaded[key], lateness_ms=lateness_ms)
    elif what is not None and what.workflow:
        key = ("workflow", what.workflow)
        if key not in _loaded:
            own = harness.workflow
            _loaded[key] = own if what.workflow == own.name else load_workflow(what.workflow)
        harness.run_prompt(fleet, intended_send_ts=intended, workflow=_loaded[key], lateness_ms=lateness_ms)
    elif harness.opts.arrival_unit == "book":
        harness.run_book(fleet, intended_start=intended, lateness_ms=lateness_ms)
    else:
        harness.run_prompt(fleet, intended_send_ts=intended, lateness_ms=lateness_ms)


def trace_workflow_names(model: TraceModel, profiles_file: str, own_workflow: str) -> list[str]:
    """Every workflow a trace will submit (its own and its profiles'), for the preflight. A name
    equal to the run's --workflow's (a replayed run names its workflow by file stem) is that one."""
    from comfyload.workloads.book import load_book_mix

    names = [n for n in model.workflows if n != Path(own_workflow).stem]
    for profile in model.profiles:
        names += [wf.path for wf in load_book_mix(profile, profiles_file).all_workflows]
    return names
