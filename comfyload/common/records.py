"""The record vocabulary of a run folder's comfyui_metrics.ndjson, in one place: the kinds of
record and the fields each always carries, the outcomes, every event with its fields (the shape of
Locust's `locust.event.Events`: one catalogue naming every hook and its arguments), the one event
builder and `by_kind`. Writers (recorder, harness, users, books, fleet, ramps) and readers
(metrics, audit, reports) take their names from here, so a new event or outcome is one entry
here plus the code that writes or reads it.

It sits in common, beside the run folder's writer (recorder.py), because that writer builds
events too and every layer writes or reads records; it imports nothing."""

from __future__ import annotations

import time
from collections import defaultdict

# ---- record kinds: each line's `kind`, and the fields every record of that kind carries ----
RECORD_KINDS = {
    "prompt": ("intended_send_ts", "outcome"),  # one submitted prompt (protocol/results.py: PromptResult)
    "page": ("intended_send_ts", "outcome"),  # a book's page after its retries (workloads/book.py)
    "book": ("start_ts", "outcome"),  # a book of pages (workloads/book.py)
    "arrival": ("intended_send_ts", "outcome"),  # an open-loop arrival that never got a slot
    "event": ("name", "ts"),  # something that happened at `ts`: EventNames below
    "gpu": ("ts",),  # one GPU sample (gpu_probe)
}

# ---- outcomes ---------------------------------------------------------------------------------
SUCCESS = "success"
CUT_OFF = "cut_off"  # still in flight, or waiting for a slot, when load stopped
DROPPED = "dropped"  # an open-loop arrival refused because the backlog was full
FAILED = "failed"  # a book with a page that failed
# a prompt's outcome; a page has its last prompt's
PROMPT_OUTCOMES = (
    SUCCESS,
    "validation_error",
    "execution_error",
    "oom",
    "interrupted",
    "timeout",
    "lost",
    "cached",
    CUT_OFF,
)
BOOK_OUTCOMES = (SUCCESS, FAILED, CUT_OFF)
ARRIVAL_OUTCOMES = (DROPPED, CUT_OFF)


# ---- events -----------------------------------------------------------------------------------
class EventNames:
    """Every event name, and below each the fields it carries beyond kind, name and ts."""

    TEST_START = "test.start"
    """A process began a test: host, workflow, role (local, master or worker), worker."""
    LOAD_END = "load.end"
    """Load stopped (the end of the load window): role, worker."""
    TEST_STOP = "test.stop"
    """A process finished its test: prompts_recorded ({ok, failed})."""
    AUDIT = "audit"
    """A process's own counts: submitted, recorded, pages_started, books_started."""
    RUN_STOP = "run.stop"
    """Why a web UI test stopped: reason."""
    WORKER_LOST = "worker.lost"
    """The master heard no heartbeat from a worker: worker, submitted (by its last record)."""
    OUTAGE_START = "outage.start"
    """A server stopped answering: server, cause."""
    OUTAGE_END = "outage.end"
    """A server answers again: server, down_s."""
    CONNECTION_LOST = "alert.connection_lost"
    """The websocket to a server dropped: server."""
    CONNECTION_RESTORED = "alert.connection_restored"
    """The websocket to a server is back: server, down_s."""
    FAULT_START = "fault.start"
    """A drill's fault began: fault, and the fault's own fields (toxic, attributes, seconds)."""
    FAULT_END = "fault.end"
    """A drill's fault ended: fault, and the fault's own fields."""
    FLEET_SERVER_OUT = "fleet.server_out"
    """A fleet took a server out of rotation: server, reason, failures."""
    FLEET_SERVER_IN = "fleet.server_in"
    """A fleet's probe found a server back: server."""
    BOOK_DONE = "book.done"
    """A book ended: book_id, profile, outcome, pages_failed."""
    PAGE_FAILED = "book.page.failed"
    """A page's attempt failed: book_id, page, attempt, outcome, error_type."""
    PAGE_NEEDS_REGENERATION = "book.page.needs_regeneration"
    """A page gave up its retries: book_id, page, outcome, retry_count."""
    PAGE_RETRY = "book.page.retry"
    """A page is retried: book_id, page, retry, delay_s, after (the failed attempt's outcome)."""
    ARRIVALS_SUMMARY = "arrivals.summary"
    """An open-loop process's arrivals: model, rate_per_s, scheduled, on_time, late, dropped,
    backlog_left."""
    RAMP_STEP = "ramp.step"
    """A ramp step judged: users, start_ts, settled_ts, end_ts, renders, images_per_min, p95_s,
    error_pct, passed, breached, and the ramp's own fields."""
    RAMP_KNEE = "ramp.knee"
    """The ramp's knee: users, unit, window, images_per_min, p95_s, first_breach, steps, ramp_max."""
    RAMP_PREDICTION = "ramp.prediction"
    """The adaptive ramp's predicted knee: knee, unit, servers, probe_users, probe_s, service,
    client_s, server_gap_s, p95_target_s, pause_s, pause_every_s."""
    SOAK_DRIFT = "soak.drift"
    """A soak's p95 rose past --soak-drift-pct: first_p95_s, p95_s, rise_pct."""
    PROFILE_START = "profile.start"
    """`comfyload profile` began measuring a workflow: workflow."""
    PROFILE_END = "profile.end"
    """`comfyload profile` finished a workflow: workflow, start_ts."""
    SERVER_DIED = "server.died"
    """The local ComfyUI process exited during a run: server, pid, exit_code, log."""
    SERVER_OOM_UNLOADS = "server.oom_unloads"
    """How many times the local ComfyUI unloaded models for memory during the run: count."""


EVENT_NAMES = frozenset(value for key, value in vars(EventNames).items() if key.isupper())


def event(name: str, ts: float | None = None, **fields) -> dict:
    """An `event` record, kind first (live views spot events by the line's start). A name outside
    EventNames (a typo in a writer) fails where it is written, not in a report that finds nothing."""
    if name not in EVENT_NAMES:
        raise ValueError(f"event {name!r} is not in the record vocabulary (comfyload/common/records.py: EventNames)")
    return {"kind": "event", "name": name, "ts": time.time() if ts is None else ts, **fields}


def by_kind(records) -> dict:
    """Records grouped by `kind` in one pass (a 24-hour soak holds a million of them); records
    already grouped (a dict, as reports.run_folder reads them) are returned as they are."""
    if isinstance(records, dict):
        return records
    kinds = defaultdict(list)
    for r in records:
        kinds[r.get("kind")].append(r)
    return kinds
