"""Integration: the Prometheus endpoint read by a real Prometheus (Debian's, `make prometheus`)
scraping every second while `comfyload run` loads the real local ComfyUI. What Prometheus stored
must equal the run folder: counters = the records, the final p95 = summary.json's."""

import collections
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from conftest import REPO, only_run_dir, run_cli, start_cli
from prometheus_server import BINARY, RealPrometheus

from comfyload.orchestration.server import free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not BINARY.exists(), reason="needs Debian's prometheus (`make prometheus`)"),
]
TEST_WORKFLOWS = REPO / "tests" / "workflows"
LAST = "last_over_time({}[10m])"  # the run's process has exited: its series are stale, their last values stay


@pytest.fixture
def scraped(tmp_path):
    """(metrics port, Prometheus scraping it every second)."""
    port = free_port()
    prometheus = RealPrometheus(tmp_path / "prometheus", f"127.0.0.1:{port}").start()
    yield port, prometheus
    prometheus.stop()


def records_of(runs_dir):
    path = only_run_dir(runs_dir) / "comfyui_metrics.ndjson"
    return [json.loads(line) for line in path.read_text().splitlines()]


def by_labels(found: list[dict], *labels) -> dict:
    return {tuple(r["metric"][k] for k in labels): r["value"] for r in found}


def book_run(comfy, port, *extra):
    return run_cli(
        "run",
        "--host",
        comfy,
        "--user-class",
        "BookUser",
        "--book-profiles",
        str(TEST_WORKFLOWS / "books.yaml"),
        "--book-profile",
        "fault_once_book",
        "--retry-backoff-sec",
        "0.2",
        "--concurrency",
        "2",
        "--jobs",
        "4",
        "--metrics-port",
        str(port),
        "--metrics-linger",
        "30",
        *extra,
    )


def test_a_headless_run_reaches_prometheus_equal_to_its_records(comfy, runs_dir, scraped):
    port, prometheus = scraped
    proc = book_run(comfy, port)
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    assert f"Prometheus metrics on http://127.0.0.1:{port}/metrics" in proc.stderr
    records = records_of(runs_dir)
    summary = json.loads((only_run_dir(runs_dir) / "summary.json").read_text())["summary"]

    prompts = collections.Counter((r["workflow"], r["outcome"]) for r in records if r["kind"] == "prompt")
    assert len({w for w, _ in prompts}) == 2 and len(prompts) >= 2, prompts
    stored = by_labels(prometheus.query(LAST.format("comfyload_prompts_total")), "workflow", "outcome")
    assert stored == {k: float(v) for k, v in prompts.items()}, "prompts by workflow and outcome = the records"

    pages = collections.Counter(r["outcome"] for r in records if r["kind"] == "page")
    assert by_labels(prometheus.query(LAST.format("comfyload_pages_total")), "outcome") == {
        (k,): float(v) for k, v in pages.items()
    }
    books = collections.Counter((r["profile"], r["outcome"]) for r in records if r["kind"] == "book")
    assert by_labels(prometheus.query(LAST.format("comfyload_books_total")), "profile", "outcome") == {
        k: float(v) for k, v in books.items()
    }
    retries = sum(r["retry_count"] for r in records if r["kind"] == "page")
    assert prometheus.value(LAST.format("comfyload_page_retries_total")) == retries
    ok = collections.Counter(r["workflow"] for r in records if r["kind"] == "prompt" and r["outcome"] == "success")
    histogram = by_labels(prometheus.query(LAST.format("comfyload_prompt_e2e_seconds_count")), "workflow")
    assert histogram == {(k,): float(v) for k, v in ok.items()}, "the e2e histogram holds every success"

    # the last scrape came after the run's last record: the final p95 is summary.json's
    assert summary["e2e_ms"]["p95"] is not None
    p95 = prometheus.value(LAST.format("comfyload_run_latency_p95_seconds"))
    assert p95 == pytest.approx(summary["e2e_ms"]["p95"] / 1000.0, rel=1e-12)
    assert prometheus.value(LAST.format("comfyload_run_error_ratio")) == pytest.approx(
        summary["error_rate_pct"] / 100.0, rel=1e-12
    )
    verdicts = by_labels(prometheus.query(LAST.format("comfyload_sla_pass")), "metric")
    judged = {(v["metric"],): float(v["passed"]) for v in summary["sla"] if v["passed"] is not None}
    assert verdicts == judged, "each measured SLA metric's verdict, as the report gives it"


def test_port_zero_serves_nothing(comfy, runs_dir, scraped):
    port, prometheus = scraped
    proc = run_cli("run", "--host", comfy, "--jobs", "2", "--metrics-port", "0")
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # the SLA verdict is not what is tested here
    assert "Prometheus metrics on" not in proc.stderr
    assert prometheus.query(LAST.format("comfyload_prompts_total")) == []
    assert prometheus.value('max_over_time(up{job="comfyload"}[10m])') == 0, "nothing ever answered"


def test_two_workers_give_master_counters_equal_to_the_sum_of_their_records(comfy, runs_dir, scraped):
    port, prometheus = scraped
    proc = run_cli(
        "run",
        "--host",
        comfy,
        "--workers",
        "2",
        "--jobs",
        "12",
        "--concurrency",
        "4",
        "--metrics-port",
        str(port),
        "--metrics-linger",
        "30",
    )
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # the SLA verdict is not what is tested here
    assert proc.stderr.count("Prometheus metrics on") == 1, "the master serves; workers do not"
    prompts = [r for r in records_of(runs_dir) if r["kind"] == "prompt"]
    per_worker = {
        worker: collections.Counter((r["workflow"], r["outcome"]) for r in prompts if r["worker"] == worker)
        for worker in {r["worker"] for r in prompts}
    }
    assert len(per_worker) == 2, "both workers sent load"
    stored = by_labels(prometheus.query(LAST.format("comfyload_prompts_total")), "workflow", "outcome")
    assert stored == {k: float(v) for k, v in sum(per_worker.values(), collections.Counter()).items()}


def test_the_web_ui_exports_while_a_test_runs(comfy, runs_dir, scraped, tmp_path):
    """`comfyload ui`: a test started from the UI's API is exported while it runs (the endpoint
    lives as long as the UI process, across tests)."""
    port, prometheus = scraped
    web_port = free_port()
    env = {**os.environ, "COMFY_RUNS_DIR": str(runs_dir)}
    log = open(tmp_path / "ui.log", "w")
    ui = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "comfyload",
            "ui",
            "--host",
            comfy,
            "--web-port",
            str(web_port),
            "--metrics-port",
            str(port),
            "--workflow",
            str(TEST_WORKFLOWS / "sleep_short.json"),
        ],
        cwd=str(REPO),
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{web_port}"
        form = {"user_count": 2, "spawn_rate": 2, "host": comfy, "user_class": "PromptUser"}
        deadline = time.monotonic() + 90
        while True:
            try:
                answer = requests.post(f"{base}/swarm", data=form, timeout=5).json()
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and ui.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
                time.sleep(0.3)
        assert answer["success"], answer
        found = prometheus.wait_for('comfyload_prompts_total{outcome="success"} > 3', timeout=90)
        assert prometheus.value("comfyload_run_active") == 1, "the test is still running"
        assert found[0]["metric"]["workflow"] == "sleep_short"
        assert ui.poll() is None
    finally:
        ui.send_signal(signal.SIGTERM)  # the wrapper finishes the running test, then stops
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            ui.kill()
            ui.wait(timeout=10)
        log.close()


def test_an_outage_shows_as_the_down_gauge_at_one_for_its_duration(comfy, runs_dir, scraped, tmp_path):
    """A fleet of two; one is killed mid-run and never comes back: from its outage.start record
    to the end of the run, every scrape says it is down."""
    from comfyload.orchestration.server import LocalComfyUI

    port, prometheus = scraped
    doomed = LocalComfyUI(port=free_port(), work_dir=tmp_path / "doomed").start()
    sleep_wf = tmp_path / "sleep.json"
    sleep_wf.write_text(json.dumps({"1": {"class_type": "Sleep", "inputs": {"seconds": 0.2}}}))
    proc = start_cli(
        *["run", "--host", comfy, "--comfy-hosts", f"{comfy},{doomed.url}"],
        *["--workflow", str(sleep_wf), "--concurrency", "2", "--run-time", "45s", "--per-prompt-timeout", "8"],
        *["--metrics-port", str(port), "--metrics-linger", "30"],
    )
    try:
        prometheus.wait_for('comfyload_prompts_total{outcome="success"} > 2', timeout=240)  # a loaded machine
        assert proc.poll() is None, "the run ended before the server could be killed"
        doomed.kill()
        _out, err = proc.communicate(timeout=180)
    finally:
        doomed.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert proc.returncode in (0, 1), err[-3000:]
    records = records_of(runs_dir)
    starts = [r for r in records if r.get("name") == "outage.start" and r["server"] == doomed.url]
    assert len(starts) == 1 and not [r for r in records if r.get("name") == "outage.end"], "down to the end"
    [stop] = [r for r in records if r.get("name") == "test.stop"]
    label = f'{{server="{doomed.url}"}}'
    assert prometheus.value(LAST.format("comfyload_outages_total" + label)) == 1
    down = prometheus.series("comfyload_server_down" + label, starts[0]["ts"] + 2, stop["ts"])
    assert down and set(down) == {1.0}, down
    assert prometheus.query(LAST.format(f'comfyload_server_down{{server="{comfy}"}}')) == [], (
        "the live one never went down"
    )
