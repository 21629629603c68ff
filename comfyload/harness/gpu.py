"""The probe inside Locust. Only the master (or a local runner) samples: in a distributed run
the workers do not, so every GPU sample is recorded once.

Each sample:
  - fires `environment.events.gpu_sample(sample=..., environment=...)`, a hook any code can listen to;
  - goes into comfyui_metrics.ndjson through the run's harness (kind `gpu`, also kept in the
    harness's recent records, which the ramp's 90 % utilisation rule reads);
  - updates `environment.gpu_probe.latest` (newest sample per GPU) and a bounded history that
    the web UI's GPU tab and chart page read.

Sources: `--gpu-probe http://HOST:PORT` subscribes to a sidecar (`python -m gpu_probe serve`);
otherwise NVML on this host, in a native thread (gevent's threadpool) so a slow driver call never
stalls the users' greenlets; otherwise the target's /system_stats."""

from __future__ import annotations

import collections
import sys

import gevent
from locust.event import EventHook
from locust.runners import WorkerRunner

from comfyload.common.errors import UserError
from comfyload.common.hooks import call_plugin
from gpu_probe import ProbeError, check_interval, ticks
from gpu_probe.sources import nvml_sampler, open_source
from gpu_probe.subscribe import follow

HISTORY = 36_000  # samples kept for the chart page: 10 h of one GPU at 1 s


def say(line: str) -> None:
    print(f"[comfyload] {line}", file=sys.stderr, flush=True)


class GpuProbe:
    """The per-process probe state, kept on the environment as `environment.gpu_probe`."""

    def __init__(self, environment):
        self.environment = environment
        self.latest: dict = {}
        self.history = collections.deque(maxlen=HISTORY)
        self.status = "GPU probe: not started"
        self.config = None
        self.greenlet = None

    # ---- what shapes and pages read --------------------------------------------------------
    def max_utilisation(self) -> float | None:
        """The busiest GPU's latest utilisation (%); None without NVML-grade data."""
        values = [s["util_gpu"] for s in self.latest.values() if s.get("util_gpu") is not None]
        return max(values) if values else None

    def saturated(self, threshold_pct: float = 90.0) -> bool:
        value = self.max_utilisation()
        return value is not None and value >= threshold_pct

    # ---- lifecycle ---------------------------------------------------------------------------
    def configure(self) -> None:
        """(Re)starts sampling when what to sample changed: at init, and at each test start,
        where the web UI may have set another host, probe URL or interval."""
        opts = self.environment.parsed_options
        config = (
            getattr(opts, "gpu_probe", "") or "",
            getattr(opts, "gpu_interval", 1.0),
            self.environment.host or getattr(opts, "host", None),
        )
        if config == self.config and self.greenlet is not None and not self.greenlet.dead:
            return
        self.stop()
        self.config = config
        url, interval, host = config
        try:
            interval = check_interval(interval)
        except (UserError, ProbeError) as exc:
            self.status = f"GPU probe: {exc}"
            say(self.status)
            return
        self.greenlet = gevent.spawn(self.subscribe, url) if url else gevent.spawn(self.sample_here, host, interval)

    def stop(self) -> None:
        if self.greenlet is not None:
            self.greenlet.kill(block=True)
            self.greenlet = None

    # ---- sources -----------------------------------------------------------------------------
    def subscribe(self, url: str) -> None:
        self.status = f"GPU probe: subscribing to {url}"

        def tell(line):
            self.status = line
            say(line)

        follow(url, self.publish, say=tell, sleep=gevent.sleep)

    def sample_here(self, host: str | None, interval: float) -> None:
        threadpool = gevent.get_hub().threadpool
        sampler, self.status = open_source(host, try_nvml=lambda: threadpool.apply(nvml_sampler))
        say(self.status)
        if sampler is None:
            return
        run = (lambda: threadpool.apply(sampler.sample)) if sampler.blocking else sampler.sample
        failing = False
        try:
            for _ in ticks(interval, gevent.sleep):
                try:
                    samples = run()
                except Exception as exc:  # the fallback server went away (a fault drill): skip the tick
                    if not failing:
                        say(f"GPU probe: sampling failed ({type(exc).__name__}); retrying every tick")
                    failing = True
                    continue
                failing = False
                for sample in samples:
                    self.publish(sample)
        finally:
            if sampler.blocking:
                threadpool.spawn(sampler.close)
            else:
                sampler.close()

    def publish(self, sample: dict) -> None:
        self.latest[sample.get("gpu")] = sample
        self.history.append(sample)
        self.environment.events.gpu_sample.fire(sample=sample, environment=self.environment)


def record_sample(sample: dict, environment, **_kwargs) -> None:
    """Into the run's records while a run is on (the harness exists from test start to stop)."""
    harness = getattr(environment, "comfyload", None)
    if harness is not None:
        harness.emit(dict(sample))


def install(events) -> None:
    """Called once from the locustfile with `locust.events`."""
    if not hasattr(events, "gpu_sample"):
        events.gpu_sample = EventHook()
    events.gpu_sample.add_listener(record_sample)

    @events.init.add_listener
    def start_probe(environment, runner=None, **_kwargs):
        if isinstance(runner, WorkerRunner):
            return  # workers never sample: the master (or a sidecar) does, once
        environment.gpu_probe = GpuProbe(environment)
        environment.gpu_probe.configure()

    call_plugin(events.test_start, "gpu_probe", "configure")
    call_plugin(events.quitting, "gpu_probe", "stop")
