"""Unit: the exporter's metrics over records with known answers. Counters follow the records; the
live gauges are the metrics model's figures (the report's p95, the web UI's windows), nothing
computed beside it; the outage gauge goes back to 0 when the outage ends."""

import os
import subprocess
import sys
import time

import pytest
from conftest import REPO
from nvml_double.pynvml import FakeNvml
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from synthetic import prompt_record

from comfyload.analysis.live_figures import completed_between, units
from comfyload.analysis.metrics import calculate_metrics
from comfyload.analysis.sla import SlaTargets
from comfyload.harness.prometheus_metrics import ExporterMetrics
from gpu_probe.nvml import THROTTLE_REASONS, NvmlSampler


class Harness:
    """What the live collector reads of a ComfyHarness."""

    def __init__(self, records, started):
        self.recent, self.sla, self.started = records, SlaTargets(latency_p95_s=2.0, warmup_prompts=2), started

    def in_flight(self):
        return 1


class Run:
    def __init__(self, harness, active=True):
        self.harness, self._active = harness, active

    def records(self):
        return list(self.harness.recent)

    def users(self):
        return 4

    def active(self):
        return self._active


def scrape(metrics: ExporterMetrics) -> dict:
    """{(name, sorted labels): value} of one exposition, read back by the client's own parser."""
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@pytest.fixture
def records():
    now = time.time()
    rows = [prompt_record(now - 200 + i * 10, now - 199 + i * 10 + i * 0.3) for i in range(19)]
    rows += [prompt_record(now - 30, now - 25, outcome="execution_error", workflow="other")]
    return rows


def test_counters_and_histograms_follow_the_records(records):
    metrics = ExporterMetrics()
    for r in records:
        metrics.observe_record(r)
    got = scrape(metrics)
    assert got[("comfyload_prompts_total", (("outcome", "success"), ("workflow", "cpu_smoke")))] == 19
    assert got[("comfyload_prompts_total", (("outcome", "execution_error"), ("workflow", "other")))] == 1
    assert got[("comfyload_prompt_e2e_seconds_count", (("workflow", "cpu_smoke"),))] == 19
    assert ("comfyload_prompt_e2e_seconds_count", (("workflow", "other"),)) not in got, "successes only"
    assert got[("comfyload_prompt_e2e_seconds_sum", (("workflow", "cpu_smoke"),))] == pytest.approx(
        sum(r["e2e_ms"] for r in records if r["outcome"] == "success") / 1000.0
    )


def test_the_outage_gauge_is_one_while_down_and_zero_after():
    metrics = ExporterMetrics()
    metrics.observe_record({"kind": "event", "name": "outage.start", "server": "a", "ts": 1.0})
    assert scrape(metrics)[("comfyload_server_down", (("server", "a"),))] == 1
    metrics.observe_record({"kind": "event", "name": "outage.end", "server": "a", "ts": 2.0})
    got = scrape(metrics)
    assert got[("comfyload_server_down", (("server", "a"),))] == 0
    assert got[("comfyload_outages_total", (("server", "a"),))] == 1


def test_live_gauges_are_the_metrics_models_figures(records):
    started = min(r["intended_send_ts"] for r in records)
    harness = Harness(records, started)
    got = scrape(ExporterMetrics(run=Run(harness)))
    run = calculate_metrics(records, harness.sla)
    assert run.population.warmup_excluded == 2, "the run's figures leave the warm-up out, as the report does"
    assert got[("comfyload_run_latency_p95_seconds", ())] == run.figures["e2e_ms"]["p95"] / 1000.0
    assert got[("comfyload_run_error_ratio", ())] == run.figures["error_rate_pct"] / 100.0
    assert got[("comfyload_run_images_per_minute", ())] == run.figures["images_per_minute"]
    for verdict in run.sla:
        key = ("comfyload_sla_pass", (("metric", verdict.metric),))
        assert got.get(key) == (None if verdict.passed is None else int(verdict.passed))
    assert got[("comfyload_sla_pass", (("metric", "latency_p95"),))] == 0, "p95 > 2 s: the report's FAIL"
    window = got[("comfyload_window_latency_p95_seconds", (("window", "1m"),))]
    now = time.time()
    assert window == pytest.approx(completed_between(units(records), now - 60, now)["p95_s"], rel=1e-9)
    assert got[("comfyload_sla_latency_p95_target_seconds", ())] == 2.0
    assert got[("comfyload_sla_error_budget_ratio", ())] == SlaTargets().error_budget_pct / 100.0
    assert got[("comfyload_in_flight_prompts", ())] == 1 and got[("comfyload_users", ())] == 4
    assert got[("comfyload_run_active", ())] == 1


def test_a_stopped_run_is_recomputed_at_once_and_still_served(records):
    started = min(r["intended_send_ts"] for r in records)
    run = Run(Harness(records[:10], started))
    metrics = ExporterMetrics(run=run)
    before = scrape(metrics)[("comfyload_run_latency_p95_seconds", ())]
    run.harness.recent = records  # the last records arrive, then the test stops
    run._active = False
    after = scrape(metrics)
    assert after[("comfyload_run_active", ())] == 0
    assert after[("comfyload_run_latency_p95_seconds", ())] != before, "not the cached figure"
    assert after[("comfyload_run_latency_p95_seconds", ())] == (
        calculate_metrics(records, run.harness.sla).figures["e2e_ms"]["p95"] / 1000.0
    )


@pytest.mark.parametrize(
    "args,said",
    [
        (["--metrics-port", "70000"], "--metrics-port must be a port, 0 to 65535, not 70000"),
        (["--metrics-port", "-1"], "--metrics-port must be a port, 0 to 65535, not -1"),
        (["--metrics-linger", "-3"], "--metrics-linger must be >= 0, not -3.0"),
    ],
)
def test_bad_metrics_options_are_one_line_before_any_load(args, said, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "comfyload", "run", "--host", "http://127.0.0.1:9", *args],
        capture_output=True,
        text=True,
        cwd=str(REPO),
        env={**os.environ, "COMFY_RUNS_DIR": str(tmp_path)},
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.strip() == f"error: {said}", done.stderr
    assert list(tmp_path.iterdir()) == [], "nothing created"


def test_gpu_gauges_are_nvmls_figures_in_si_units():
    """The probe's NVML sampler (over the binding's test double) into the exporter: every figure
    NVML gave, in the unit its name says; a field NVML refuses is left out, not 0."""
    mb = 1024 * 1024
    device = {"name": "NVIDIA L4", "util": (87, 41), "mem": (6144 * mb, 23034 * mb), "power_mw": 61_250}
    device |= {"limit_mw": 72_000, "temp": 71, "sm_mhz": 2040, "mem_mhz": 6250, "reasons": 0x4 | 0x40}
    sparse = {"name": "NVIDIA H100", "util": (3, 0), "mem": (512 * mb, 81559 * mb), "temp": 33}
    metrics = ExporterMetrics()
    for sample in NvmlSampler(FakeNvml([device, sparse]), find_comfy_pids=set).sample():
        metrics.observe_gpu(sample)
    got = scrape(metrics)
    l4 = (("gpu", "0"), ("name", "NVIDIA L4"), ("source", "nvml"))
    assert got[("comfyload_gpu_utilization_ratio", l4)] == 0.87
    assert got[("comfyload_gpu_memory_used_bytes", l4)] == 6144 * mb
    assert got[("comfyload_gpu_memory_total_bytes", l4)] == 23034 * mb
    assert got[("comfyload_gpu_power_watts", l4)] == 61.25 and got[("comfyload_gpu_power_limit_watts", l4)] == 72.0
    assert got[("comfyload_gpu_temperature_celsius", l4)] == 71
    assert (
        got[("comfyload_gpu_sm_clock_hertz", l4)] == 2040e6 and got[("comfyload_gpu_memory_clock_hertz", l4)] == 6250e6
    )
    throttled = {dict(k[1])["reason"]: v for k, v in got.items() if k[0] == "comfyload_gpu_throttle_reason"}
    assert {r for r, v in throttled.items() if v == 1} == {"sw_power_cap", "hw_thermal_slowdown"}
    assert len(throttled) == len(THROTTLE_REASONS), "every known reason, 0 when not active"
    h100 = (("gpu", "1"), ("name", "NVIDIA H100"), ("source", "nvml"))
    assert got[("comfyload_gpu_memory_used_bytes", h100)] == 512 * mb
    assert ("comfyload_gpu_power_watts", h100) not in got, "NVML refused it: no series, not a 0"
