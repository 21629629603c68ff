"""Locust master/worker runs. Workers stream every record to the master as it is made (Locust
custom messages), so the master's run folder holds the whole run and a worker that dies loses at
most what it had in flight; the master notices a worker that stops sending heartbeats and
records which one and when. --jobs is split between the workers."""

from __future__ import annotations

import logging
import time

import gevent
from locust.rpc import Message
from locust.runners import MasterRunner, WorkerRunner

from comfyload.common.records import event
from comfyload.harness.stopping import end_run

log = logging.getLogger(__name__)
RECORDS_MESSAGE = "comfyload_records"
JOBS_DONE_MESSAGE = "comfyload_jobs_done"
FINAL_STATS_WAIT_S = 1.0


def role_of(runner) -> str:
    if isinstance(runner, MasterRunner):
        return "master"
    if isinstance(runner, WorkerRunner):
        return "worker"
    return "local"


def jobs_share(total: int, index: int, workers: int) -> int:
    """This worker's part of --jobs (0 = no limit stays 0); every job is someone's."""
    if not total or workers <= 1:
        return total
    return total // workers + (1 if index < total % workers else 0)


class WorkerSink:
    """Sends each record to the master, with how many prompts this worker has submitted so far
    (so the master knows what a worker that dies had in flight)."""

    def __init__(self, runner, worker: str, audit: dict):
        self.runner, self.worker, self.audit = runner, worker, audit

    def write(self, record: dict) -> None:
        self.runner.send_message(
            RECORDS_MESSAGE, {"worker": self.worker, "submitted": self.audit["submitted"], "records": [record]}
        )

    def event(self, name: str, **fields) -> None:
        self.write(event(name, **fields))

    def close(self) -> None:
        pass


class MasterSide:
    """On the master: receives workers' records, watches for lost workers."""

    def __init__(self, environment):
        self.environment = environment
        self.submitted = {}  # worker -> last submitted count it reported
        self.reported_lost = set()
        self.jobs_done = set()
        self.audited = set()  # workers whose final audit arrived
        environment.runner.register_message(RECORDS_MESSAGE, self.on_records)
        environment.runner.register_message(JOBS_DONE_MESSAGE, self.on_jobs_done)

    def on_jobs_done(self, environment, msg, **_kwargs) -> None:
        """Every worker has done its share of --jobs: stop the run for all of them."""
        self.jobs_done.add(msg.data["worker"])
        if self.live_workers() <= self.jobs_done:
            end_run(environment, "job budget: every worker did its share of --jobs")

    def live_workers(self) -> set:
        return {node.id for node in self.environment.runner.clients.values() if node.state != "missing"}

    def drain(self, timeout: float, quit_workers: bool = True) -> None:
        """At the master's test stop: tells every worker to quit (it finishes what is in flight,
        sends its last records and audit, then its final Locust stats) and waits for each live
        worker's audit. Locust's own headless stop would end the master before workers report,
        and a worker only sends its final stats on quit (on `stop` the master forgets it).
        In the web UI the workers stay for the next test: Locust's `stop` already reached them."""
        runner = self.environment.runner
        expected = self.live_workers()
        for worker in expected if quit_workers else ():
            runner.server.send_to_client(Message("quit", None, worker))
        deadline = time.monotonic() + timeout
        while not expected <= self.audited and time.monotonic() < deadline:
            gevent.sleep(0.2)
        gevent.sleep(FINAL_STATS_WAIT_S)  # each worker's final stats follow its audit
        missing = expected - self.audited
        if missing:
            log.warning("no final records from worker(s) %s", ", ".join(sorted(missing)))

    def on_records(self, environment, msg, **_kwargs) -> None:
        harness = getattr(environment, "comfyload", None)
        self.submitted[msg.data["worker"]] = msg.data["submitted"]
        if any(r.get("name") == "audit" for r in msg.data["records"]):
            self.audited.add(msg.data["worker"])
        if harness is None:
            log.warning("records from %s arrived outside a test; dropped", msg.data["worker"])
            return
        for record in msg.data["records"]:
            harness.emit(record)

    def start_test(self, harness) -> None:
        """Tells the workers how many they are (for --jobs) and starts the lost-worker watch."""
        harness.opts.comfy_worker_count = max(1, self.environment.runner.worker_count)
        self.jobs_done, self.audited = set(), set()
        gevent.spawn(self._watch_workers, harness)

    def _watch_workers(self, harness) -> None:
        while harness is getattr(self.environment, "comfyload", None):
            for node in self.environment.runner.clients.missing:
                if node.id not in self.reported_lost:
                    self.reported_lost.add(node.id)
                    harness.emit(event("worker.lost", worker=node.id, submitted=self.submitted.get(node.id)))
                    log.warning("worker %s stopped sending heartbeats: recorded as lost", node.id)
            gevent.sleep(1.0)
