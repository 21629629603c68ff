"""Locust users. PromptUser: one prompt per task, closed loop. BookUser: a user is a book of
pages with the app's retries. OpenLoopUser: work arrives on a schedule (open loop). Each takes
jobs from the process's ComfyHarness (harness.py) and hands it the work."""

from __future__ import annotations

import collections
import time

import gevent
import gevent.pool
from locust import User, constant, task
from locust.exception import StopUser

from comfyload.common.records import CUT_OFF, DROPPED, event
from comfyload.harness.harness import ComfyHarness
from comfyload.workloads.open_loop import ArrivalCounts
from comfyload.workloads.trace import open_loop_model, serve_arrival


class ComfyUser(User):
    """Shared set-up: the harness and a client (the process's shared one, or its own)."""

    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        self.harness: ComfyHarness = getattr(self.environment, "comfyload", None)
        # the preflight refused this run (its one line is printed, Locust is quitting): the first
        # task stops the user quietly (StopUser from on_start would print Locust's traceback)
        self.fleet = None if self.harness is None else self.harness.shared_fleet or self.harness.new_fleet()

    def on_stop(self) -> None:
        harness = getattr(self, "harness", None)
        if harness is not None and self.fleet is not harness.shared_fleet:
            self.fleet.close()

    def run_job(self, job) -> None:
        if self.harness is None or not self.harness.take_job():
            raise StopUser()
        try:
            job()
        finally:
            self.harness.finish_job()


class PromptUser(ComfyUser):
    """Submits one fresh prompt, waits for its result, and submits the next (closed loop)."""

    @task
    def render(self) -> None:
        self.run_job(lambda: self.harness.run_prompt(self.fleet))


class BookUser(ComfyUser):
    """A user is a book: N pages, each retried per the policy; the next book starts when the
    last one is done (closed loop: users = simultaneous books)."""

    @task
    def write_book(self) -> None:
        self.run_job(lambda: self.harness.run_book(self.fleet))


class OpenLoopUser(ComfyUser):
    """One per process: dispatches prompts or books on an arrival schedule, up to
    --max-in-flight at once; latency counts from each arrival's intended time."""

    fixed_count = 1

    def on_start(self) -> None:
        super().on_start()
        if self.harness is None:
            return
        opts = self.harness.opts
        self.model = open_loop_model(self.harness)  # --arrivals-trace, else arrival_model(...)
        self.pool = gevent.pool.Pool(opts.max_in_flight)
        self.backlog = collections.deque()
        self.arrivals = ArrivalCounts()

    @task
    def dispatch(self) -> None:
        if self.harness is None:
            raise StopUser()
        next_t = time.time()
        for gap, what in self.model.arrivals(self.harness.rng):
            next_t += gap
            gevent.sleep(max(0.0, next_t - time.time()))
            if not self.harness.take_job():
                self.pool.join()
                raise StopUser()
            self.arrivals.scheduled += 1
            if self.pool.free_count() > 0:
                self.arrivals.on_time += 1
                self.pool.spawn(self._serve, next_t, what)
            elif len(self.backlog) < self.harness.opts.max_backlog:
                self.arrivals.late += 1
                self.backlog.append((next_t, what))
            else:
                self.arrivals.dropped += 1
                self.unserved(next_t, DROPPED)
                self.harness.finish_job()
        self.pool.join()  # a trace ends
        raise StopUser()

    def unserved(self, intended: float, outcome: str) -> None:
        """An arrival that never got a slot: dropped (backlog full), or still waiting when load
        stopped (cut_off). Either is a unit the SLA counts (metrics' outcome policy)."""
        self.harness.emit(
            {
                "kind": "arrival",
                "unit": self.harness.opts.arrival_unit,
                "outcome": outcome,
                "intended_send_ts": intended,
                "done_ts": time.time(),
                "e2e_ms": None,
                "lateness_ms": (time.time() - intended) * 1000.0,
            }
        )

    def _serve(self, intended: float, what=None) -> None:
        """Runs one arrival, then whatever waits in the backlog, in this slot."""
        lateness_ms = None
        while intended is not None:
            try:
                serve_arrival(self.harness, self.fleet, intended, what, lateness_ms)
            finally:
                self.harness.finish_job()
            intended, what = self.backlog.popleft() if self.backlog else (None, None)
            lateness_ms = None if intended is None else (time.time() - intended) * 1000.0

    def on_stop(self) -> None:
        if hasattr(self, "pool"):
            self.pool.kill()
            backlog_left = len(self.backlog)
            while self.backlog:
                self.unserved(self.backlog.popleft()[0], CUT_OFF)
            self.harness.emit(
                event(
                    "arrivals.summary",
                    model=self.model.kind,
                    rate_per_s=self.model.rate,
                    **self.arrivals.as_dict(),
                    backlog_left=backlog_left,
                )
            )
        super().on_stop()


# The user classes by the name --user-class takes (workloads/options.py: USER_CLASSES).
USER_CLASSES_BY_NAME = {c.__name__: c for c in (PromptUser, BookUser, OpenLoopUser)}
