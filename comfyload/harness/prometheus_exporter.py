"""The Prometheus endpoint inside Locust: `/metrics` on the master or a local run (a worker's
records reach the master, so the master's counters are the whole run's), headless and web UI
alike, from Locust's init until the process exits. The metrics are defined in
prometheus_metrics.py; this module only wires them to the run's hooks:

  - the harness's `record_written` (every record as it goes to the run folder) -> counters, histograms;
  - the harness's `status_broadcast` (ComfyUI's `status` messages, relayed from its clients) -> queue depth;
  - Locust's `gpu_sample` (the GPU probe) -> the GPU gauges;
  - the current (else last) harness's recent records -> the live figures, at scrape time.

A short run ends before Prometheus' next scrape would read its final figures. So a headless run
that has been scraped at least once keeps serving after load ends until one more scrape arrives
(its figures are then the final ones), at most --metrics-linger seconds; a run nobody scraped
exits at once. Served by gevent's WSGI server, the same loop as the users."""

from __future__ import annotations

import sys
import time

import gevent
from gevent.pywsgi import WSGIServer
from locust.runners import WorkerRunner
from prometheus_client import make_wsgi_app

from comfyload.common.hooks import call_plugin
from comfyload.common.records import event
from comfyload.harness.prometheus_metrics import ExporterMetrics

LINGER_POLL_S = 0.2


def say(line: str) -> None:
    print(f"[comfyload] {line}", file=sys.stderr, flush=True)


class Exporter:
    """Per process, on `environment.comfyload_exporter`; also the LiveCollector's view of the run."""

    def __init__(self, environment, host: str, port: int, linger_s: float):
        self.environment = environment
        self.host, self.port, self.linger_s = host, port, linger_s
        self.metrics = ExporterMetrics(run=self)
        self.wsgi = make_wsgi_app(self.metrics.registry)
        self.harness = None  # the current test's, else the last one's (its final figures stay served)
        self.load_end = None
        self.stopped_at = None
        self.scrapes = 0
        self.last_scrape = 0.0
        self.server = None

    # ---- what the live figures read ------------------------------------------------------------
    def records(self) -> list[dict]:
        extra = [] if self.load_end is None else [event("load.end", self.load_end)]
        return list(self.harness.recent) + extra

    def users(self) -> int:
        runner = self.environment.runner
        return runner.user_count if runner is not None else 0

    def active(self) -> bool:
        return self.harness is not None and self.stopped_at is None

    # ---- serving -------------------------------------------------------------------------------
    def app(self, environ, start_response):
        self.scrapes += 1
        self.last_scrape = time.time()
        return self.wsgi(environ, start_response)

    def start(self) -> bool:
        self.server = WSGIServer((self.host, self.port), self.app, log=None)
        try:
            self.server.start()
        except OSError as exc:
            say(f"metrics: cannot serve on {self.host}:{self.port} ({exc.strerror}); no Prometheus endpoint this run")
            self.server = None
            return False
        say(f"Prometheus metrics on http://{self.host}:{self.server.server_port}/metrics")
        return True

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(timeout=1)
            self.server = None

    # ---- the run's hooks -----------------------------------------------------------------------
    def attach(self, harness) -> None:
        if harness is None:  # preflight refused the test: keep serving the last run's figures
            return
        self.harness, self.load_end, self.stopped_at = harness, None, None
        harness.events.record_written.add_listener(self.metrics.observe_record)
        harness.events.status_broadcast.add_listener(self.metrics.observe_queue)

    def on_gpu_sample(self, sample: dict, **_kwargs) -> None:
        self.metrics.observe_gpu(sample)

    def load_ended(self) -> None:
        if self.harness is not None and self.load_end is None:
            self.load_end = time.time()

    def test_stopped(self) -> None:
        if self.harness is not None:
            self.stopped_at = time.time()

    def linger(self) -> None:
        """Serves the final figures until one scrape after the test stopped (or --metrics-linger)."""
        if self.server is None or not self.scrapes or not self.linger_s or self.stopped_at is None:
            return
        say(f"metrics: serving the final figures until the next scrape (at most {self.linger_s:g} s)")
        deadline = time.monotonic() + self.linger_s
        while self.last_scrape <= self.stopped_at and time.monotonic() < deadline:
            gevent.sleep(LINGER_POLL_S)


def install(events) -> None:
    """Called from the locustfile with `locust.events`, after the harness's own listeners (so a
    test's harness exists when the exporter attaches, and its last records are in when it stops)."""

    @events.init.add_listener
    def start_exporter(environment, runner=None, **_kwargs):
        opts = environment.parsed_options
        environment.comfyload_exporter = None
        if isinstance(runner, WorkerRunner) or opts is None or not 0 < getattr(opts, "metrics_port", 0) <= 65535:
            return  # workers send records to the master, which serves it; 0: off; out of range: preflight says so
        exporter = Exporter(environment, opts.metrics_host, opts.metrics_port, opts.metrics_linger)
        if exporter.start():
            environment.comfyload_exporter = exporter
            events.gpu_sample.add_listener(exporter.on_gpu_sample)

    @events.test_start.add_listener
    def attach(environment, **_kwargs):
        exporter = getattr(environment, "comfyload_exporter", None)
        if exporter is not None:
            exporter.attach(getattr(environment, "comfyload", None))

    call_plugin(events.test_stopping, "comfyload_exporter", "load_ended")
    call_plugin(events.test_stop, "comfyload_exporter", "test_stopped")

    @events.quitting.add_listener
    def last_scrape(environment, **_kwargs):
        exporter = getattr(environment, "comfyload_exporter", None)
        if exporter is not None:
            if environment.parsed_options.headless:
                exporter.linger()
            exporter.stop()
