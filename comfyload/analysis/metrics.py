"""The metrics model: every figure ComfyLoad prints, charts, judges or compares comes from
`calculate_metrics` over a run's records (the shape of vLLM's `calculate_metrics`). It reads
the records once, picks the judged population once (warm-up out, a ramp's knee window) and
names it; the console, summary.json, report.html, the run README, `compare` and the web UI only
read the result. Records are the only input and nothing here writes back into them.

The outcome policy (docs/judging.md):
- a unit is a page (after its retries) when the run had books, else a prompt; an open-loop
  arrival that was dropped is a unit too, and a failed one;
- work still in flight when load stopped has the outcome `cut_off`. It counts as a failure when
  it had already failed an attempt, had waited longer than the SLA's p95 target, or the server
  was in an outage when load stopped; otherwise the run ended, not the server, and it is left
  out of the judged population (and counted as "cut off on track");
- the window is the load window: from the first intended send of the judged units to the end of
  load (or the last completion, if later), so time a dead server spent answering nothing counts;
- an outage (the server stopped answering) is recovered at the first success after it began;
  one still open when load stopped is "not recovered" and fails `recovery`.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np

from comfyload.analysis.audit import audit_kinds
from comfyload.analysis.sla import MetricVerdict, SlaTargets
from comfyload.analysis.split_gaps import split_gaps
from comfyload.common.records import CUT_OFF, DROPPED, by_kind


# ---- statistics -------------------------------------------------------------------------------
def percentiles(values, qs) -> list | None:
    """Exact percentiles (linear interpolation between closest ranks, as numpy and pandas do)."""
    if len(values) == 0:
        return None
    return [float(x) for x in np.percentile(np.asarray(values, dtype=float), qs)]


def percentile(values, q: float) -> float | None:
    found = percentiles(values, [q])
    return None if found is None else found[0]


def stats(values) -> dict:
    values = [v for v in values if v is not None]
    if not values:
        return {"count": 0}
    p50, p90, p95, p99 = percentiles(values, [50, 90, 95, 99])
    return {
        "count": len(values),
        "mean": sum(values) / len(values),
        "p50": p50,
        "p90": p90,
        "p95": p95,
        "p99": p99,
        "max": max(values),
    }


# ---- populations ------------------------------------------------------------------------------
def units_of(kinds: dict) -> list[dict]:
    """The units the SLA counts: pages when the run had books (a page's final state after its
    retries), else prompts; plus dropped open-loop arrivals of the same unit."""
    unit = "page" if kinds.get("page") or any(a.get("unit") == "book" for a in kinds.get("arrival", ())) else "prompt"
    base = kinds.get(unit, [])
    return list(base) + [a for a in kinds.get("arrival", ()) if a.get("outcome") == DROPPED]


def unit_name(kinds: dict) -> str:
    return "pages" if kinds.get("page") or kinds.get("book") else "prompts"


def steady_state(units: list[dict], targets: SlaTargets) -> list[dict]:
    """Drops the warm-up: the first `warmup_prompts` by intended send time and anything sent in
    the first `warmup_seconds` of the run."""
    send = itemgetter("intended_send_ts")
    units = sorted(units, key=send)
    if not units:
        return []
    start = units[0]["intended_send_ts"] + targets.warmup_seconds
    after = units[targets.warmup_prompts :]
    return after[bisect_left(after, start, key=send) :]  # sorted: those sent at or after `start` are a tail


def load_end_of(events) -> float | None:
    ends = [e["ts"] for e in events if e.get("name") == "load.end" and e.get("ts") is not None]
    return max(ends) if ends else None


# ---- outages ----------------------------------------------------------------------------------
@dataclass
class Outage:
    """A time the server stopped answering, and how long until it rendered again."""

    server: str | None
    start_ts: float
    end_ts: float | None  # None: still down when load stopped
    recovered_ts: float | None  # the first success that finished after the outage began
    cause: str | None = None

    @property
    def recovery_s(self) -> float | None:
        return None if self.recovered_ts is None else self.recovered_ts - self.start_ts

    def covers(self, ts: float) -> bool:
        return self.start_ts <= ts and (self.end_ts is None or ts <= self.end_ts)

    def as_dict(self) -> dict:
        return {
            "server": self.server,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "cause": self.cause,
            "duration_s": None if self.end_ts is None else self.end_ts - self.start_ts,
            "recovered": self.recovered_ts is not None,
            "recovery_s": self.recovery_s,
        }


def outages_of(events: list[dict], prompts: list[dict]) -> list[Outage]:
    """Pairs `outage.start` / `outage.end` events per server; recovery is the first successful
    prompt (on that server, when known) that finished after the outage began."""
    marks = sorted((e for e in events if e.get("name") in ("outage.start", "outage.end")), key=lambda e: e["ts"])
    if not marks:
        return []
    successes = defaultdict(list)
    for p in prompts:
        if p.get("outcome") == "success" and p.get("done_ts") is not None:
            successes[p.get("server")].append(p["done_ts"])
            successes[None].append(p["done_ts"])
    for done in successes.values():
        done.sort()
    outages, open_by_server = [], {}
    for e in marks:
        server = e.get("server")
        if e["name"] == "outage.start" and server not in open_by_server:
            open_by_server[server] = Outage(server, e["ts"], None, None, e.get("cause"))
        elif e["name"] == "outage.end" and server in open_by_server:
            outage = open_by_server.pop(server)
            outage.end_ts = e["ts"]
            outages.append(outage)
    outages += open_by_server.values()
    for outage in outages:
        done = successes.get(outage.server) or successes[None]
        index = int(np.searchsorted(done, outage.start_ts, side="right")) if done else 0
        outage.recovered_ts = done[index] if index < len(done) else None
    return sorted(outages, key=lambda o: o.start_ts)


# ---- judging one population -------------------------------------------------------------------
def failed_before_cut_off(unit: dict) -> bool:
    if unit.get("kind") == "page":
        return bool(unit.get("image_error"))
    return (unit.get("attempt") or 1) > 1


def cut_off_is_failure(unit: dict, targets: SlaTargets, outages: list[Outage]) -> bool:
    """The policy for work in flight when load stopped (module docstring)."""
    waited = (unit.get("done_ts") or 0) - unit["intended_send_ts"]
    return (
        failed_before_cut_off(unit)
        or waited > targets.latency_p95_s
        or any(o.covers(unit.get("done_ts") or 0) for o in outages)
    )


@dataclass
class Population:
    """The judged units and the window they are judged over, with a name that says which."""

    label: str
    unit: str
    units: list = field(repr=False)  # judged: successes and failures
    excluded_cut_off: int  # cut off on track: not judged
    warmup_excluded: int
    start_ts: float | None
    end_ts: float | None

    @property
    def minutes(self) -> float | None:
        if self.start_ts is None or self.end_ts is None:
            return None
        return max(self.end_ts - self.start_ts, 1e-9) / 60.0

    def ok(self) -> list[dict]:
        return [u for u in self.units if u.get("outcome") == "success"]

    def describe(self) -> dict:
        return {
            "label": self.label,
            "unit": self.unit,
            "judged": len(self.units),
            "cut_off_on_track_excluded": self.excluded_cut_off,
            "warmup_excluded": self.warmup_excluded,
            "start_ts": self.start_ts,
            "end_ts": self.end_ts,
            "duration_s": None if self.minutes is None else self.minutes * 60.0,
        }


def population(
    units: list[dict],
    targets: SlaTargets,
    outages: list[Outage],
    label: str,
    unit: str,
    window_end: float | None = None,
    warmup_excluded: int = 0,
) -> Population:
    """Splits cut-off work by the policy and fixes the load window of `units`."""
    judged = [u for u in units if u.get("outcome") != CUT_OFF or cut_off_is_failure(u, targets, outages)]
    start = min(map(itemgetter("intended_send_ts"), units), default=None)
    # completions extend the window past the end of load (the stop grace); a cut-off does not
    done = [u.get("done_ts") for u in judged if u.get("outcome") not in (CUT_OFF, DROPPED)]
    last_done = max([t for t in done if t is not None], default=None)
    end = max([t for t in (window_end, last_done) if t is not None], default=None)
    return Population(label, unit, judged, len(units) - len(judged), warmup_excluded, start, end)


def judge(
    pop: Population, targets: SlaTargets, books: float | None = None, outages: list[Outage] | None = None
) -> list[MetricVerdict]:
    """The five SLA metrics over one population: the run's verdict, a ramp step's, a web UI
    window's and a drill phase's all come from here."""
    ok_e2e = [u["e2e_ms"] for u in pop.units if u.get("outcome") == "success"]  # the successes, in one pass
    minutes = pop.minutes
    throughput = len(ok_e2e) / minutes if minutes and pop.units else None
    p95 = percentile(ok_e2e, 95)
    error_pct = 100.0 * (len(pop.units) - len(ok_e2e)) / len(pop.units) if pop.units else None
    recovery, note = None, None
    if outages:
        open_ = [o for o in outages if o.recovery_s is None]
        if open_:
            end = pop.end_ts or max(o.start_ts for o in open_)
            recovery = max(end - o.start_ts for o in open_)
            note = f"not recovered (down >= {recovery:.0f} s at the end)"
        else:
            recovery = max(o.recovery_s for o in outages)

    def check(metric, comparison, target, measured, unit, note=None, force_fail=False):
        passed = None if measured is None else (measured >= target if comparison == ">=" else measured <= target)
        return MetricVerdict(metric, comparison, target, measured, unit, False if force_fail else passed, note)

    return [
        check("throughput", ">=", targets.throughput_images_per_min, throughput, "images/min"),
        check("concurrency", ">=", targets.concurrency_books, books, "books"),
        check("latency_p95", "<=", targets.latency_p95_s, None if p95 is None else p95 / 1000.0, "s"),
        check("error_rate", "<=", targets.error_budget_pct, error_pct, "%"),
        check("recovery", "<=", targets.recovery_s, recovery, "s", note, force_fail=note is not None),
    ]


def judge_units(
    units: list[dict], targets: SlaTargets, start: float | None = None, end: float | None = None, label: str = "window"
) -> dict:
    """{metric: MetricVerdict} over a plain window of units (ramp steps, web UI, drill phases)."""
    pop = population(units, targets, [], label, "units", window_end=end)
    if start is not None and pop.units:
        pop.start_ts = start
    return {v.metric: v for v in judge(pop, targets)}


def peak_concurrent_books(books) -> int | None:
    spans = [(r["start_ts"], r["done_ts"]) for r in books if r.get("done_ts")]
    if not spans:
        return None
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans], key=lambda x: (x[0], x[1]))
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def knee_of(events) -> dict | None:
    knees = [r for r in events if r.get("name") == "ramp.knee"]
    return knees[-1] if knees else None


# ---- the run ----------------------------------------------------------------------------------
@dataclass
class RunMetrics:
    """Everything the suite says about one run. `as_dict()` is summary.json's core."""

    population: Population
    sla: list[MetricVerdict]
    audit: dict
    outages: list[Outage]
    figures: dict  # counts, rates, latency splits, books, arrivals
    drill: dict | None = None  # a drill's verdict (fault_verdict.json), when the run is a drill
    servers: dict | None = None  # a fleet's figures per server (server_figures); None with one server

    @property
    def breached(self) -> list[str]:
        return [v.metric for v in self.sla if v.passed is False] + (["audit"] if self.audit.get("ok") is False else [])

    @property
    def sla_pass(self) -> bool:
        return not self.breached

    @property
    def verdict(self) -> dict:
        """The headline: a drill is judged on its expected behaviour, any other run on the SLA."""
        if self.drill is not None:
            passed = bool(self.drill.get("passed"))
            return {
                "judged_by": "drill",
                "passed": passed,
                "text": f"Drill verdict: {'PASS' if passed else 'FAIL'} ({self.drill.get('scenario')}: "
                f"{self.drill.get('expected')})",
            }
        return {
            "judged_by": "sla",
            "passed": self.sla_pass,
            "text": "SLA verdict: " + ("PASS" if self.sla_pass else "FAIL (" + ", ".join(self.breached) + ")"),
        }

    def as_dict(self) -> dict:
        return {
            **self.figures,
            "population": self.population.describe(),
            "sla": [v.as_dict() for v in self.sla],
            "audit": self.audit,
            "outages": [o.as_dict() for o in self.outages],
            "sla_pass": self.sla_pass,
            "breached": self.breached,
            "fault_verdict": self.drill,
            "verdict": self.verdict,
            "servers": self.servers,
        }


def calculate_metrics(records, targets: SlaTargets, drill: dict | None = None) -> RunMetrics:
    """The one function every figure comes from (module docstring)."""
    kinds = records if isinstance(records, dict) else by_kind(records)
    prompts, events = kinds.get("prompt", []), kinds.get("event", [])
    outages = outages_of(events, prompts)
    knee = knee_of(events)
    unit = unit_name(kinds)
    all_units = units_of(kinds)
    load_end = load_end_of(events)
    if knee and knee.get("window"):
        start, end = knee["window"]
        chosen = [u for u in all_units if start <= u["intended_send_ts"] < end and (u.get("done_ts") or end + 1) <= end]
        pop = population(
            chosen,
            targets,
            outages,
            f"{unit} of the ramp's knee step ({knee.get('users')} "
            f"{knee.get('unit', 'users')}), sent and finished in its window",
            unit,
            window_end=end,
        )
        pop.start_ts = start if pop.units else pop.start_ts
        books = knee["users"] if knee.get("unit") == "books" else None
    else:
        steady = steady_state(all_units, targets)
        warm = len(all_units) - len(steady)
        label = (
            f"all {unit}"
            if not warm
            else (
                f"{unit} after the warm-up ({warm} excluded: first "
                f"{targets.warmup_prompts} and the first {targets.warmup_seconds:g} s)"
            )
        )
        pop = population(
            steady, targets, outages, label + ", over the load window", unit, window_end=load_end, warmup_excluded=warm
        )
        books = peak_concurrent_books(kinds.get("book", []))
    verdicts = judge(pop, targets, books, outages)
    run_audit = audit_kinds(kinds)
    servers = server_figures(prompts, targets, outages, pop.end_ts)
    return RunMetrics(pop, verdicts, run_audit, outages, figures_of(kinds, pop, all_units, knee), drill, servers)


def figures_of(kinds: dict, pop: Population, all_units: list[dict], knee: dict | None) -> dict:
    """Counts, rates and latency splits, each over the population it names. A 24-hour soak has
    a million units and each pass over them costs ~0.15 s, so each list is read in one pass."""
    prompts, events = kinds.get("prompt", []), kinds.get("event", [])
    ok_e2e = [u.get("e2e_ms") for u in pop.units if u.get("outcome") == "success"]
    start, end = pop.start_ts, pop.end_ts
    window_ok = (
        []
        if start is None
        else [  # the latency split covers the successful prompts in the window
            p
            for p in prompts
            if p.get("outcome") == "success" and start <= p["intended_send_ts"] and (end is None or p["done_ts"] <= end)
        ]
    )
    window_splits = [(p.get("queue_wait_ms"), p.get("execution_ms"), p.get("download_ms")) for p in window_ok]
    queue, execution, download = zip(*window_splits) if window_splits else ((), (), ())
    minutes = pop.minutes
    arrivals = [e for e in events if e.get("name") == "arrivals.summary"]
    outcomes = Counter([p.get("outcome") for p in prompts])
    unit_outcomes = [u.get("outcome") for u in all_units]
    cut_off = unit_outcomes.count(CUT_OFF)
    return {
        "prompts_submitted": len(prompts),
        "prompts_ok": outcomes["success"],
        "prompts_failed": len(prompts) - outcomes["success"] - outcomes[CUT_OFF],
        "prompts_cut_off": outcomes[CUT_OFF],
        "outcomes": dict(outcomes),
        "units": {
            "name": pop.unit,
            "total": len(all_units),
            "judged": len(pop.units),
            "ok": len(ok_e2e),
            "failed": len(pop.units) - len(ok_e2e),
            "cut_off": cut_off,
            "cut_off_counted_failed": cut_off - pop.excluded_cut_off if not knee else None,
            "dropped": unit_outcomes.count(DROPPED),
        },
        "images_per_minute": len(ok_e2e) / minutes if minutes and pop.units else None,
        "error_rate_pct": 100.0 * (len(pop.units) - len(ok_e2e)) / len(pop.units) if pop.units else None,
        "e2e_ms": stats(ok_e2e),
        "queue_wait_ms": stats(queue),
        "execution_ms": stats(execution),
        "download_ms": stats(download),
        "split_gaps": split_gaps(window_ok),  # why queue wait / execution lack some or all prompts
        "books": books_figures(kinds),
        "arrivals": arrival_figures(arrivals, kinds.get("prompt", []) + kinds.get("book", [])),
        "ramp_knee": knee,
    }


def server_figures(
    prompts: list[dict], targets: SlaTargets, outages: list[Outage], load_end: float | None
) -> dict | None:
    """A fleet's figures per server, each over that server's prompts with the run's targets, that
    server's outages and the run's load window (a server that died early is not judged over its
    short life alone); None when the run had one server."""
    names = sorted({r.get("server") for r in prompts})
    if len(names) < 2:
        return None
    servers = {}
    for server in names:
        mine = [r for r in prompts if r.get("server") == server]
        down = [o for o in outages if o.server in (server, None)]
        pop = population(mine, targets, down, f"prompts on {server}", "prompts", window_end=load_end)
        ok = pop.ok()
        servers[server] = {
            "prompts": len(mine),
            "ok": len(ok),
            "failed": len(pop.units) - len(ok),
            "images_per_minute": len(ok) / pop.minutes if pop.minutes and pop.units else None,
            "p95_ms": percentile([r["e2e_ms"] for r in ok], 95),
            "queue_wait_p50_ms": percentile([r["queue_wait_ms"] for r in ok if r.get("queue_wait_ms") is not None], 50),
        }
    total_ok = sum(v["ok"] for v in servers.values())
    imbalance = max(v["ok"] for v in servers.values()) / (total_ok / len(servers)) if total_ok else None
    return {"by_server": servers, "imbalance": imbalance}


def books_figures(kinds: dict) -> dict | None:
    books, pages = kinds.get("book", []), kinds.get("page", [])
    if not books and not pages:
        return None
    book_outcomes = Counter(b.get("outcome") for b in books)
    page_outcomes = Counter(p.get("outcome") for p in pages)
    return {
        "total": len(books),
        "ok": book_outcomes["success"],
        "cut_off": book_outcomes[CUT_OFF],
        "failed": len(books) - book_outcomes["success"] - book_outcomes[CUT_OFF],
        "e2e_ms": stats([b.get("e2e_ms") for b in books if b.get("outcome") == "success"]),
        "pages": len(pages),
        "pages_ok": page_outcomes["success"],
        "pages_cut_off": page_outcomes[CUT_OFF],
        "pages_retried": sum((p.get("retry_count") or 0) > 0 for p in pages),
        "retries": sum(p.get("retry_count") or 0 for p in pages),
        "pages_needs_regeneration": sum(bool(p.get("needs_regeneration")) for p in pages),
    }


def arrival_figures(arrival_events: list[dict], units: list[dict]) -> dict | None:
    """Open-loop arrivals: scheduled / on time / late / dropped, and how late the late ones were
    sent (sent - intended, from the unit records)."""
    if not arrival_events:
        return None
    counts = {
        k: sum(e.get(k, 0) for e in arrival_events) for k in ("scheduled", "on_time", "late", "dropped", "backlog_left")
    }
    lateness = [u["lateness_ms"] for u in units if u.get("lateness_ms")]
    return {**counts, "lateness_ms": stats(lateness)}
