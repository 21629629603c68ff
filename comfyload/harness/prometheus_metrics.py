"""Every metric the Prometheus endpoint serves, defined in this one file (docs/prometheus.md says
what each means; the Grafana board's expressions are checked against
`METRIC_NAMES`). Names follow Prometheus' conventions: the `comfyload_` prefix, the unit in the
name (seconds, bytes, watts, hertz, celsius, ratio), `_total` on counters.

Counters and histograms move with the records as they are written (`observe_record`), so they
equal what comfyui_metrics.ndjson holds; the live figures are read at scrape time from the
metrics model (`comfyload.analysis.live_figures.exported_figures`), nothing computed here.
A registry of its own, not prometheus_client's global one: nothing else in the process (or a
second exporter in a test) leaks into it."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

from comfyload.analysis.live_figures import SLIDING_WINDOWS_S, exported_figures
from gpu_probe.nvml import THROTTLE_REASONS

# image generation: tens of milliseconds (a cached or tiny graph) to minutes (SD1.5 on a CPU, a long queue)
SECONDS_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600, float("inf"))
MB = 1024 * 1024
disable_created_metrics()  # no `_created` series beside each counter: dashboards use rate() and increase()
LIVE_CACHE_S = 1.0  # the live figures are recomputed at most once a second, however many scrapers ask
LIVE_LOOP_SHARE = 0.1  # ... and at most this share of the time: a soak's 200,000 records cost ~0.2 s a pass

# names the scrape-time collector serves (the gauges below are declared with the library)
LIVE_GAUGES = {
    "comfyload_window_images_per_minute": "successful renders per minute completed in the window (metrics model)",
    "comfyload_window_latency_p95_seconds": "exact p95 of end-to-end seconds of the window's successes",
    "comfyload_window_error_ratio": "failed / completed renders in the window (0..1)",
    "comfyload_run_images_per_minute": "the run so far: images/min as the report computes it (warm-up out)",
    "comfyload_run_latency_p95_seconds": "the run so far: exact p95 end-to-end seconds, summary.json's e2e p95",
    "comfyload_run_error_ratio": "the run so far: failed / judged units (0..1)",
    "comfyload_sla_pass": "each SLA metric's current verdict for the run so far: 1 pass, 0 fail (absent: not measured)",
    "comfyload_sla_throughput_target_images_per_minute": "sla.yaml's throughput target (the line a panel draws)",
    "comfyload_sla_latency_p95_target_seconds": "sla.yaml's p95 target",
    "comfyload_sla_error_budget_ratio": "sla.yaml's error budget (0..1)",
    "comfyload_sla_concurrency_target_books": "sla.yaml's concurrent books target",
    "comfyload_sla_recovery_target_seconds": "sla.yaml's recovery target",
    "comfyload_in_flight_prompts": "prompts submitted and not yet recorded (on a master: as its workers report)",
    "comfyload_users": "Locust users running now (BookUser: books being rendered)",
    "comfyload_run_active": "1 while a test runs, 0 between tests and during the last scrape window",
}


class ExporterMetrics:
    """The registry and its metrics. `run` (see LiveCollector) says what the live figures read;
    None serves the record-driven metrics alone."""

    def __init__(self, run=None):
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.prompts = Counter(
            "comfyload_prompts", "prompt records by outcome and workflow", ["workflow", "outcome"], registry=r
        )
        self.pages = Counter("comfyload_pages", "page records (after retries) by outcome", ["outcome"], registry=r)
        self.books = Counter(
            "comfyload_books", "book records by profile and outcome", ["profile", "outcome"], registry=r
        )
        self.retries = Counter("comfyload_page_retries", "page retries, summed over page records", registry=r)
        self.dropped = Counter(
            "comfyload_dropped_arrivals", "open-loop arrivals dropped (backlog full)", ["unit"], registry=r
        )
        self.outages = Counter(
            "comfyload_outages", "outages begun (a server stopped answering)", ["server"], registry=r
        )
        self.server_down = Gauge("comfyload_server_down", "1 while a server is in an outage", ["server"], registry=r)
        self.queue = Gauge(
            "comfyload_comfyui_queue_remaining",
            "ComfyUI's queue_remaining from its latest `status` broadcast",
            ["server"],
            registry=r,
        )
        self.e2e = Histogram(
            "comfyload_prompt_e2e_seconds",
            "intended send to done, successful prompts",
            ["workflow"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.queue_wait = Histogram(
            "comfyload_prompt_queue_wait_seconds",
            "ComfyUI accepted to execution start (server clock), successful prompts",
            ["workflow"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        self.execution = Histogram(
            "comfyload_prompt_execution_seconds",
            "execution start to end (server clock), successful prompts",
            ["workflow"],
            buckets=SECONDS_BUCKETS,
            registry=r,
        )
        gpu = ["gpu", "name", "source"]
        self.gpu_util = Gauge("comfyload_gpu_utilization_ratio", "GPU busy share (0..1)", gpu, registry=r)
        self.gpu_mem_used = Gauge("comfyload_gpu_memory_used_bytes", "GPU memory in use", gpu, registry=r)
        self.gpu_mem_total = Gauge("comfyload_gpu_memory_total_bytes", "GPU memory in all", gpu, registry=r)
        self.gpu_power = Gauge("comfyload_gpu_power_watts", "GPU power draw", gpu, registry=r)
        self.gpu_power_limit = Gauge("comfyload_gpu_power_limit_watts", "GPU enforced power limit", gpu, registry=r)
        self.gpu_temp = Gauge("comfyload_gpu_temperature_celsius", "GPU temperature", gpu, registry=r)
        self.gpu_sm_clock = Gauge("comfyload_gpu_sm_clock_hertz", "GPU SM clock", gpu, registry=r)
        self.gpu_mem_clock = Gauge("comfyload_gpu_memory_clock_hertz", "GPU memory clock", gpu, registry=r)
        self.gpu_throttle = Gauge(
            "comfyload_gpu_throttle_reason",
            "1 while NVML reports this clock event reason",
            gpu + ["reason"],
            registry=r,
        )
        if run is not None:
            r.register(LiveCollector(run))

    # ---- records as they are written ---------------------------------------------------------
    def observe_record(self, record: dict) -> None:
        kind = record.get("kind")
        if kind == "prompt":
            workflow, outcome = str(record.get("workflow")), str(record.get("outcome"))
            self.prompts.labels(workflow, outcome).inc()
            if outcome == "success":
                for histogram, field in (
                    (self.e2e, "e2e_ms"),
                    (self.queue_wait, "queue_wait_ms"),
                    (self.execution, "execution_ms"),
                ):
                    if record.get(field) is not None:
                        histogram.labels(workflow).observe(record[field] / 1000.0)
        elif kind == "page":
            self.pages.labels(str(record.get("outcome"))).inc()
            self.retries.inc(record.get("retry_count") or 0)
        elif kind == "book":
            self.books.labels(str(record.get("profile")), str(record.get("outcome"))).inc()
        elif kind == "arrival" and record.get("outcome") == "dropped":
            self.dropped.labels(str(record.get("unit"))).inc()
        elif kind == "event" and record.get("name") == "outage.start":
            self.outages.labels(str(record.get("server"))).inc()
            self.server_down.labels(str(record.get("server"))).set(1)
        elif kind == "event" and record.get("name") == "outage.end":
            self.server_down.labels(str(record.get("server"))).set(0)

    def observe_queue(self, server: str, queue_remaining) -> None:
        self.queue.labels(server).set(queue_remaining)

    def observe_gpu(self, sample: dict) -> None:
        """A probe sample: the figures it measured (NVML has them all; /system_stats only memory)."""
        labels = (str(sample.get("gpu")), str(sample.get("name") or ""), str(sample.get("source") or ""))
        scaled = (
            (self.gpu_util, "util_gpu", 0.01),
            (self.gpu_mem_used, "mem_used_mb", MB),
            (self.gpu_mem_total, "mem_total_mb", MB),
            (self.gpu_power, "power_w", 1.0),
            (self.gpu_power_limit, "power_limit_w", 1.0),
            (self.gpu_temp, "temp_c", 1.0),
            (self.gpu_sm_clock, "sm_clock_mhz", 1e6),
            (self.gpu_mem_clock, "mem_clock_mhz", 1e6),
        )
        for gauge, field, scale in scaled:
            if sample.get(field) is not None:
                gauge.labels(*labels).set(sample[field] * scale)
        reasons = sample.get("throttle_reasons")
        if reasons is not None:
            for reason in THROTTLE_REASONS.values():
                self.gpu_throttle.labels(*labels, reason).set(1 if reason in reasons else 0)


class LiveCollector:
    """The live figures at scrape time, from the metrics model over the harness's recent records
    (the same records the web UI's live tab judges). Kept after a test stops, so the last scrape
    window still serves the run's final figures. `run` has: harness (the current test's, else
    the last one's, or None), records() (what the metrics model judges), users(), active()."""

    def __init__(self, run):
        self.run = run
        self._cached = (0.0, None, [])
        self._cost = 0.0  # seconds the last computation took (it runs on the users' event loop)

    def describe(self):
        return [GaugeMetricFamily(name, doc) for name, doc in LIVE_GAUGES.items()]

    def collect(self):
        now = time.time()
        state = (self.run.harness, self.run.active())  # a test that started or stopped: fresh figures
        at, seen, families = self._cached
        if seen != state or now - at >= max(LIVE_CACHE_S, self._cost / LIVE_LOOP_SHARE):
            families = self.families(state[0], now)
            self._cost = time.time() - now
            self._cached = (now, state, families)
        return families

    def families(self, harness, now: float) -> list:
        gauges = {name: GaugeMetricFamily(name, doc, labels=self.labels_of(name)) for name, doc in LIVE_GAUGES.items()}
        gauges["comfyload_users"].add_metric([], self.run.users() or 0)
        gauges["comfyload_run_active"].add_metric([], 1 if self.run.active() else 0)
        if harness is not None:
            gauges["comfyload_in_flight_prompts"].add_metric([], harness.in_flight())
            figures = exported_figures(self.run.records(), harness.sla, harness.started, now)
            for seconds, window in zip(SLIDING_WINDOWS_S, figures["windows"]):
                label = [f"{seconds / 60:g}m"]
                add(gauges["comfyload_window_images_per_minute"], label, window["images_per_min"])
                add(gauges["comfyload_window_latency_p95_seconds"], label, window["p95_s"])
                add(gauges["comfyload_window_error_ratio"], label, ratio(window["error_pct"]))
            targets = harness.sla
            add(gauges["comfyload_sla_throughput_target_images_per_minute"], [], targets.throughput_images_per_min)
            add(gauges["comfyload_sla_latency_p95_target_seconds"], [], targets.latency_p95_s)
            add(gauges["comfyload_sla_error_budget_ratio"], [], ratio(targets.error_budget_pct))
            add(gauges["comfyload_sla_concurrency_target_books"], [], targets.concurrency_books)
            add(gauges["comfyload_sla_recovery_target_seconds"], [], targets.recovery_s)
            run = figures["run"]
            add(gauges["comfyload_run_images_per_minute"], [], run.figures["images_per_minute"])
            p95_ms = run.figures["e2e_ms"].get("p95")
            add(gauges["comfyload_run_latency_p95_seconds"], [], None if p95_ms is None else p95_ms / 1000.0)
            add(gauges["comfyload_run_error_ratio"], [], ratio(run.figures["error_rate_pct"]))
            for verdict in run.sla:
                add(
                    gauges["comfyload_sla_pass"],
                    [verdict.metric],
                    None if verdict.passed is None else int(verdict.passed),
                )
        return list(gauges.values())

    @staticmethod
    def labels_of(name: str) -> list[str]:
        if name.startswith("comfyload_window_"):
            return ["window"]
        if name == "comfyload_sla_pass":
            return ["metric"]
        return []


def add(family, labels: list, value) -> None:
    if value is not None:
        family.add_metric(labels, value)


def ratio(pct):
    return None if pct is None else pct / 100.0


def metric_names() -> set[str]:
    """Every series name a scrape can show (a counter's `_total`, a histogram's `_bucket`,
    `_sum`, `_count`, the live gauges), whether or not a label set has been seen yet."""
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    declared = {
        family.name + suffix
        for family in ExporterMetrics().registry.collect()
        for suffix in suffixes.get(family.type, ("",))
    }
    return declared | set(LIVE_GAUGES)
