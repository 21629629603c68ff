"""ComfyHarness: the per-process state of one test run, kept on the Locust environment and built
when the test starts (so options set in the web UI apply): the run plan, the clients and their
fleet, the recorder (the run folder, or on a worker the master), the audit counts, the job budget,
the outage monitor, and the recent records the live views judge. Users (users.py) only take jobs
and call run_prompt / run_book.
"""

from __future__ import annotations

import collections
import os
import random
import socket
import time

import gevent
import gevent.lock
import gevent.pool

from comfyload.common.hooks import Events
from comfyload.common.recorder import RunRecorder, new_run_dir
from comfyload.common.records import event
from comfyload.harness.distributed import JOBS_DONE_MESSAGE, WorkerSink, jobs_share, role_of
from comfyload.harness.meta import build_meta
from comfyload.harness.stopping import end_run
from comfyload.protocol.client import ComfyClient
from comfyload.protocol.fleet import Fleet, parse_hosts
from comfyload.protocol.outages import OutageMonitor
from comfyload.protocol.results import PromptResult
from comfyload.protocol.workload import parse_inject_sleep, upload_inputs, with_injected_sleep
from comfyload.workloads.book import BookRun
from comfyload.workloads.options import OPTIONS
from comfyload.workloads.preflight import check_server, plan_run

RECENT_RECORDS = 200_000  # kept in memory for live SLA windows (shapes, web UI)
FLEET_SUBMIT_RETRY_S = 2.0  # in a fleet, a POST that keeps failing gives up quickly: the next goes elsewhere


class ComfyFailure(Exception):
    """A Locust failure. Its text is what Locust groups failures by, so it holds no ids."""


def failure_text(result: PromptResult) -> str:
    first_line = ((result.error_message or "").strip().splitlines() or [""])[0][:200]
    return f"{result.outcome}: {result.error_type}: {first_line}".rstrip(": ")


def fire_request(
    environment,
    request_type: str,
    name: str,
    response_time: float,
    failure: str | None,
    response_length: int = 0,
    context: dict | None = None,
) -> None:
    """One Locust entry; `events.request.measure` is not used (it swallows exceptions and
    records killed users as successes)."""
    environment.events.request.fire(
        request_type=request_type,
        name=name,
        response_time=response_time,
        response_length=response_length,
        response=None,
        context=context or {},
        exception=None if failure is None else ComfyFailure(failure),
    )


class ComfyHarness:
    """Everything one process shares across its users for one test run."""

    def __init__(self, environment):
        self.environment = environment
        opts = environment.parsed_options
        self.opts = opts
        self.options = {k: v for k, v in vars(opts).items() if not k.startswith("_")}
        self.host = environment.host or opts.host
        self.plan = plan_run({o.name: getattr(opts, o.name) for o in OPTIONS}, self.user_class_names())
        self.workflow, self.sla, self.policy, self.book_mix = (
            self.plan.workflow,
            self.plan.sla,
            self.plan.policy,
            self.plan.book_mix,
        )
        self.rng = random.Random(opts.seed or None)
        runner = environment.runner
        self.role = role_of(runner)
        self.worker = runner.client_id if self.role == "worker" else f"{socket.gethostname()}:{os.getpid()}"
        self.audit = {"worker": self.worker, "submitted": 0, "recorded": 0, "pages_started": 0, "books_started": 0}
        self._stop_lock = gevent.lock.Semaphore()
        self._stopped = False
        self.down_since = {}  # server -> when its websocket dropped
        # where records go: the run folder, or (on a worker) the master
        self.recorder = (
            WorkerSink(runner, self.worker, self.audit)
            if self.role == "worker"
            else RunRecorder(opts.run_dir or new_run_dir(opts.scenario_name))
        )
        self.recent = collections.deque(maxlen=RECENT_RECORDS)
        # record_written(record): each record as it goes to the run folder (on a master, every
        #   worker's too); status_broadcast(server, queue_remaining): relayed from every client.
        #   The Prometheus exporter listens to both.
        self.events = Events("record_written", "status_broadcast")
        self.uploaded = {}
        self.injection = parse_inject_sleep(opts.inject_sleep)
        self.hosts = parse_hosts(opts.comfy_hosts) or [self.host]
        self.jobs_limit = (
            opts.jobs
            if self.role != "worker"
            else jobs_share(opts.jobs, runner.worker_index, getattr(opts, "comfy_worker_count", 1))
        )
        self.jobs_taken = 0
        self.jobs_finished = 0
        self.counts = {"ok": 0, "failed": 0}
        self.started = time.time()
        self.outages = OutageMonitor() if self.role != "master" else None
        if self.outages is not None:
            self.outages.events.outage_started.add_listener(self.record_outage_start)
            self.outages.events.outage_ended.add_listener(self.record_outage_end)
        # the master only records; local runs and workers send load
        self.shared_fleet = None if opts.ws_per_user or self.role == "master" else self.new_fleet()
        if self.injection and self.role != "master":
            self._schedule_injection_events()

    # ---- what this run uses ---------------------------------------------------------------
    def user_class_names(self) -> set:
        return {c.__name__ for c in (self.environment.user_classes or [])}

    def preflight(self) -> None:
        """Refuses to start against servers that cannot run the workflows (raises UserError);
        uploads the input files shared by all requests; writes meta.json. A worker only uploads:
        its master checked the servers already."""
        stats = mode = None
        for host in self.hosts:
            client = ComfyClient(host, completion="poll:1")
            try:
                if self.role != "worker":
                    stats, object_info = check_server(client, self.plan)
                    mode = mode or client.contract.mode()  # the first server's (a fleet records one mode)
                for wf in self.plan.workflows:
                    self.uploaded[wf.path] = upload_inputs(wf, client.upload_image, per_request=False, rng=self.rng)
            finally:
                client.close()
        if self.role != "worker":
            meta = build_meta(
                self.options, self.host, stats, object_info, self.plan.workflows, self.sla.as_dict(), mode
            )
            meta["fleet"] = self.hosts
            self.recorder.write_meta(meta)

    # ---- per request ------------------------------------------------------------------------
    def new_fleet(self) -> Fleet:
        """A client (one websocket) per server; with one server, a fleet of one."""
        clients = [ComfyClient(host, completion=self.opts.completion, worker=self.worker) for host in self.hosts]
        fleet = Fleet(clients, self.opts.route, self.opts.fleet_max_failures, self.opts.fleet_probe_s, emit=self.emit)
        for client in clients:
            client.events.prompt_submitted.add_listener(self.count_submit)
            client.events.prompt_done.add_listener(self.record)
            client.events.connection_changed.add_listener(self.connection_alert)
            client.events.status_broadcast.add_listener(self.events.status_broadcast.fire)
            # a server that is down: one alone is waited for; in a fleet it fails fast to the next
            client.submit_retry_s = FLEET_SUBMIT_RETRY_S if len(clients) > 1 else self.opts.submit_retry_s
            client.start()
        return fleet

    def request_name(self, name: str, client: ComfyClient) -> str:
        """Locust entry names carry the server in a fleet, so its UI and CSVs show each one."""
        return name if len(self.hosts) == 1 else f"{name} @ {client.server.split('://')[-1]}"

    def count_submit(self, result) -> None:
        self.audit["submitted"] += 1

    def record_outage_start(self, server: str, ts: float, cause: str) -> None:
        self.emit(event("outage.start", ts, server=server, cause=cause))

    def record_outage_end(self, server: str, ts: float, down_s: float) -> None:
        self.emit(event("outage.end", ts, server=server, down_s=down_s))

    def count_started(self, kind: str) -> None:
        self.audit[f"{kind}s_started"] += 1

    def connection_alert(self, state: str, server: str) -> None:
        """An alert event when the websocket to a server drops, and when it is back; either a
        drop or a refused request makes the outage monitor ask whether the server is down."""
        now = time.time()
        if state in ("down", "unreachable") and self.outages is not None:
            self.outages.suspect(server, now)
        if state == "unreachable":
            return
        if state == "down":
            self.down_since[server] = now
            self.emit(event("alert.connection_lost", now, server=server))
        else:
            down = now - self.down_since.pop(server, now)
            self.emit(event("alert.connection_restored", now, server=server, down_s=down))

    def graph_for(self, workflow, context: dict | None, client: ComfyClient) -> tuple[dict, list]:
        """Fresh parameters, and the names of input files uploaded for this request alone."""
        per_request = upload_inputs(workflow, client.upload_image, per_request=True, rng=self.rng)
        uploaded = {**self.uploaded.get(workflow.path, {}), **per_request}
        graph = workflow.parameterise(self.rng, {**(context or {}), "uploaded": uploaded})
        if self.injection and self.injection[0] <= time.time() - self.started < self.injection[1]:
            graph = with_injected_sleep(graph, self.injection[2])
        return graph, sorted(per_request.values())

    def _schedule_injection_events(self) -> None:
        start, end, seconds = self.injection
        for at, name in ((start, "fault.start"), (end, "fault.end")):
            gevent.spawn_later(
                at,
                lambda name=name: self.emit(event(name, fault="inject_sleep", seconds=seconds)),
            )

    def emit(self, record: dict) -> None:
        self.recorder.write(record)
        self.events.record_written.fire(record=record)
        if record.get("kind") == "prompt":  # progress; on a master, of every worker
            self.counts["ok" if record.get("outcome") == "success" else "failed"] += 1
        if record.get("kind") in ("prompt", "page", "book", "gpu", "arrival") or str(record.get("name", "")).startswith(
            "outage."
        ):
            self.recent.append(record)  # the live views judge these with the metrics model

    def record(self, result: PromptResult) -> None:
        self.audit["recorded"] += 1
        self.emit(result.to_record())

    def run_prompt(
        self, fleet: Fleet, intended_send_ts: float | None = None, workflow=None, lateness_ms: float | None = None
    ) -> PromptResult:
        client, workflow = fleet.pick(), workflow or self.workflow
        graph, uploads = self.graph_for(workflow, None, client)
        extra = {**({"uploads": uploads} if uploads else {}), **({"lateness_ms": lateness_ms} if lateness_ms else {})}
        result = client.run_prompt(
            graph,
            workflow.name,
            timeout=self.opts.per_prompt_timeout,
            intended_send_ts=intended_send_ts,
            download=self.opts.download,
            extra=extra,
        )
        fire_request(
            self.environment,
            "COMFY",
            self.request_name(workflow.name, client),
            result.e2e_ms,
            None if result.ok else failure_text(result),
            len(result.outputs),
            {"prompt_id": result.prompt_id},
        )
        return result

    def run_book(
        self, fleet: Fleet, intended_start: float | None = None, profile=None, lateness_ms: float | None = None
    ) -> dict:
        profile = profile or self.book_mix.pick(self.rng)

        def page_done(page):
            failure = None if page.outcome == "success" else f"{page.outcome} after {page.retry_count} retries"
            fire_request(
                self.environment,
                "PAGE",
                profile.name,
                (page.done_ts - page.intended_send_ts) * 1000.0,
                failure,
                context={"book_id": page.book_id, "page": page.page},
            )

        book = BookRun(
            fleet.pick,
            profile,
            self.policy,
            self.rng,
            self.opts.per_prompt_timeout,
            emit=self.emit,
            on_page=page_done,
            parallel=self.opts.allow_parallel_pages,
            download=self.opts.download,
            intended_start=intended_start,
            graph_for=self.graph_for,
            started=self.count_started,
            lateness_ms=lateness_ms,
        ).run()
        failure = None if book["outcome"] == "success" else f"failed pages: {len(book['pages_failed'])}"
        fire_request(
            self.environment, "BOOK", profile.name, book["e2e_ms"], failure, book["pages"], {"book_id": book["book_id"]}
        )
        return book

    # ---- job budget -------------------------------------------------------------------------
    def take_job(self) -> bool:
        if self.jobs_limit and self.jobs_taken >= self.jobs_limit:
            return False
        self.jobs_taken += 1
        return True

    def finish_job(self) -> None:
        """After the last job of a --jobs run, stop the whole run (not just this user). A worker
        tells its master, which stops everyone once all have finished, so Locust's final stats
        from every worker still arrive."""
        self.jobs_finished += 1
        if self.jobs_limit and self.jobs_finished == self.jobs_limit and self.environment.runner is not None:
            if self.role == "worker":
                self.environment.runner.send_message(JOBS_DONE_MESSAGE, {"worker": self.worker})
            else:
                end_run(self.environment, f"job budget: {self.jobs_limit} jobs done")

    def in_flight(self) -> int:
        """Prompts submitted and not yet recorded (on a master: as its workers last reported)."""
        master = getattr(self.environment, "comfyload_master", None)
        submitted = (
            sum(master.submitted.values()) if master is not None and self.role == "master" else self.audit["submitted"]
        )
        return max(0, submitted - self.counts["ok"] - self.counts["failed"])

    def progress_line(self) -> str:
        in_flight = self.jobs_taken - self.jobs_finished
        return (
            f"[comfyload] {time.time() - self.started:6.0f} s: {self.counts['ok']} prompts ok, "
            f"{self.counts['failed']} failed, {in_flight} jobs in flight"
        )

    def stop_once(self, stop) -> None:
        """Runs `stop` (drain, close, the closing events) once, however often Locust fires test_stop:
        it fires again when the run time ends while a stop is under way. A second caller waits for the
        first, so the process never exits with records unwritten, and the audit is written once."""
        with self._stop_lock:
            if not self._stopped:
                stop()
                self._stopped = True

    def close(self) -> None:
        if self.shared_fleet is not None:
            self.shared_fleet.close()
        if self.outages is not None:
            self.outages.close()
        self.recorder.close()
