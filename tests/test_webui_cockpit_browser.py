"""The web UI as the tester's cockpit, in a real headless browser (Debian's chromium) against the
real ComfyUI, through `python -m comfyload ui` as a tester starts it:

- every ComfyLoad option is on Locust's start form, and what the form sets reaches the users,
  locally and on two workers (found in the run's records);
- the end of a test is visible: why it stopped, its verdict stays on screen, with a link to that
  test's own report; each test started from the UI gets its own run folder;
- the ComfyLoad tab shows images/min, latency and the error rate against the SLA lines, the queue
  depth and prompts in flight.

Screenshots are kept in tests/artifacts/<test>/ (git-ignored) and in the test's tmp folder."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import CHROMIUM, CHROMIUM_ARGS, REPO, browser_api

from comfyload.common.processes import stop_process
from comfyload.orchestration.server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser]
ARGS = CHROMIUM_ARGS
ARTIFACTS = REPO / "tests" / "artifacts"


class Shots:
    """Screenshots kept as the test's artefacts."""

    def __init__(self, name, tmp_path):
        self.dir = ARTIFACTS / name
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        self.tmp = tmp_path

    def take(self, page, name, full_page=True):
        path = self.dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        shutil.copy(path, self.tmp / path.name)
        assert path.stat().st_size > 5_000
        return path


def start_ui(comfy, tmp_path, workers=0, extra=()):
    """`python -m comfyload ui` on a free loopback port; (process, url, runs folder, log path)."""
    port, runs = free_port(), tmp_path / "runs"
    runs.mkdir()
    log_path = tmp_path / "ui.log"
    log = open(log_path, "w")
    cmd = [
        sys.executable,
        "-m",
        "comfyload",
        "ui",
        "--host",
        comfy,
        "--web-port",
        str(port),
        "--gpu-interval",
        "0.5",
        *(["--workers", str(workers)] if workers else []),
        *extra,
    ]
    proc = subprocess.Popen(
        cmd, cwd=str(REPO), env={**os.environ, "COMFY_RUNS_DIR": str(runs)}, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        assert proc.poll() is None, log_path.read_text()[-3000:]
        try:
            stats = requests.get(url + "/stats/requests", timeout=1).json()
            if not workers or len(stats.get("workers") or []) >= workers:
                break
        except (requests.RequestException, ValueError):
            pass
        assert time.time() < deadline, "the web UI (and its workers) did not come up:\n" + log_path.read_text()[-3000:]
        time.sleep(0.3)
    return proc, url, runs, log_path


def test_runs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.endswith("-ui-session"))


test_runs.__test__ = False  # a helper, not a test


def records(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "comfyui_metrics.ndjson").read_text().splitlines()]


def live_frame(page):
    page.get_by_role("tab", name="ComfyLoad").click()
    page.wait_for_selector("#comfyload-live", state="visible")
    deadline = time.time() + 20
    while time.time() < deadline:
        frame = page.frame(url=lambda u: u.endswith("/comfyload/live"))
        if frame is not None:
            frame.wait_for_selector("#status")
            return frame
        time.sleep(0.2)
    raise AssertionError("the ComfyLoad tab shows no live page")


def fill_custom(page, values: dict, user_class: str | None = None):
    """Locust puts options added by a locustfile under "Custom parameters"."""
    page.get_by_text("Custom parameters").click()
    for name, value in values.items():
        if name == "workflow":  # a list of the workflows the web UI may read (issue 15)
            page.select_option("select[name=workflow]", str(value))
        else:
            page.fill(f"input[name={name}]", str(value))
    if user_class:
        page.select_option("select[name=userClass]", user_class)


def start_test(page, users, values, user_class=None):
    page.fill("input[name=userCount]", str(users))
    page.fill("input[name=spawnRate]", str(users))
    fill_custom(page, values, user_class)


def wait_for_last_run(page, contains, timeout=120):
    """The last run's banner with its stop reason and verdict; the live frame is looked up afresh
    each time (the index page reloads itself once Locust's own view is stuck in "cleanup")."""
    from playwright.sync_api import Error

    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            frame = live_frame(page)
            if frame.evaluate(
                "s => (document.getElementById('last-reason') || {}).textContent?.includes(s) && "
                "!!document.querySelector('#last .verdict-PASS, #last .verdict-FAIL')",
                contains,
            ):
                return frame
        except (Error, AssertionError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"no last run stopped by {contains!r} on screen")


@pytest.mark.parametrize("workers", [0, 2], ids=["local", "two_workers"])
def test_form_sets_workflow_user_class_and_book_profile(comfy, tmp_path, workers):
    """Fails on a form without ComfyLoad fields, and on values that do not reach the users."""
    sync_api = browser_api()
    shots = Shots(f"form_{'two_workers' if workers else 'local'}", tmp_path)
    proc, url, runs, log_path = start_ui(comfy, tmp_path, workers)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(url + "/")
                start_test(page, 2, {"workflow": "sleep", "bookProfile": "cpu_small", "jobs": 2}, "BookUser")
                fields = page.evaluate("() => Array.from(document.querySelectorAll('[name]')).map(e => e.name)")
                first = ["workflow", "userClass", "bookProfile", "jobs", "maxBacklog"]
                assert sorted(first, key=fields.index) == first, f"the form opens on what a tester sets first: {fields}"
                shots.take(page, "1_start_form_with_comfyload_fields")
                page.click("button[type=submit]")
                page.wait_for_selector("text=Custom parameters", state="detached")
                frame = wait_for_last_run(page, "job budget")
                report = frame.get_attribute("#last-report", "href")
                shots.take(page, "2_live_tab_after_the_job_budget", full_page=False)
                page.goto(url + "/comfyload/" + report)
                assert "ComfyLoad" in page.title() or page.locator("table").count() > 0
                shots.take(page, "3_this_runs_report")
            finally:
                browser.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
        stop_process(proc)
    (run_dir,) = test_runs(runs)
    assert ("distributed" in run_dir.name) == bool(workers), run_dir.name
    rec = records(run_dir)
    books = [r for r in rec if r["kind"] == "book"]
    assert len(books) == 2 and {b["profile"] for b in books} == {"cpu_small"}, "BookUser ran the form's book profile"
    pages = [r for r in rec if r["kind"] == "page"]
    assert len(pages) == 8
    if workers:
        assert len({r["worker"] for r in rec if r["kind"] == "prompt"}) == 2, "both workers got the form's values"
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["parameters"]["book_profile"] == "cpu_small" and meta["parameters"]["user_class"] == "BookUser"
    assert meta["parameters"]["workflow"] == "sleep", (
        "the form's workflow reached the harness (books use their profile's)"
    )
    stop = [r for r in rec if r.get("name") == "run.stop"]
    assert stop and stop[0]["reason"].startswith("job budget")
    assert (run_dir / "report.html").is_file() and (run_dir / "summary.json").is_file()
    assert (run_dir / "locust_stats.csv").is_file(), "this test's Locust CSVs are in its own folder"


def test_live_tab_run_time_stop_and_a_second_test_in_its_own_folder(comfy, tmp_path):
    """Fails when the ComfyLoad tab lacks images/min, queue depth or the SLA lines, when the
    verdict is gone after the stop, or when two tests share a run folder."""
    sync_api = browser_api()
    shots = Shots("live_tab", tmp_path)
    proc, url, runs, log_path = start_ui(comfy, tmp_path)
    try:
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1150})
                page.goto(url + "/")
                start_test(page, 3, {"workflow": "sleep"})
                page.get_by_text("Advanced options").click()
                page.fill("input[name=runTime]", "16s")
                page.click("button[type=submit]")
                frame = live_frame(page)
                frame.wait_for_function(
                    "() => document.querySelectorAll('#figures tr').length >= 5 && "
                    "!document.querySelector('#figures').textContent.includes('–')",
                    timeout=60_000,
                )
                figures = frame.inner_text("#figures")
                assert "images/min" in figures and ">= 20" in figures and "<= 45 s" in figures and "<= 2 %" in figures
                assert "p95 end-to-end" in figures
                live = requests.get(url + "/comfyload/live.json", timeout=5).json()
                assert live["targets"] == {"images_per_min": 20, "p95_s": 45, "error_pct": 2}, (
                    "SLA lines drawn from sla.yaml"
                )
                time.sleep(4)  # a few queue samples
                live = requests.get(url + "/comfyload/live.json", timeout=5).json()
                assert any(q["queue_remaining"] is not None for q in live["queue"]), "ComfyUI's queue depth is sampled"
                assert any(q["in_flight"] > 0 for q in live["queue"]), "our prompts in flight are shown"
                assert any(b["images_per_min"] > 0 for b in live["series"])
                assert "queue depth" in frame.inner_text("#h-queue")
                shots.take(page, "1_live_tab_while_running", full_page=False)
                page.get_by_role("tab", name="SLA").click()
                page.wait_for_function(
                    "() => Array.from(document.querySelectorAll('td')).some(td => "
                    "td.textContent.trim() === 'throughput')"
                )
                page.wait_for_selector("#comfyload-live", state="hidden", timeout=5000)  # it covers only its own tab
                shots.take(page, "3_sla_tab_while_running", full_page=False)

                page.get_by_role("tab", name="ComfyLoad").click()
                frame = wait_for_last_run(page, "run time reached", timeout=90)
                time.sleep(2.5)  # one more poll after the stop: the verdict must still be there
                assert frame.inner_text("#last").count("SLA verdict") == 1
                assert frame.locator("#last-report").count() == 1
                shots.take(page, "2_verdict_stays_after_the_stop", full_page=False)

                page.get_by_role("button", name="New").click()
                fill_custom(page, {"workflow": "sleep", "jobs": 6})
                page.click("button[type=submit]")
                wait_for_last_run(page, "job budget: 6 jobs")
                shots.take(page, "4_second_test_its_own_folder", full_page=False)
            finally:
                browser.close()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
        stop_process(proc)
    first, second = test_runs(runs)
    assert first != second
    for run_dir, reason in ((first, "run time reached"), (second, "job budget")):
        rec = records(run_dir)
        assert [r["reason"] for r in rec if r.get("name") == "run.stop"][0].startswith(reason)
        assert (run_dir / "report.html").is_file()
        assert len([r for r in rec if r.get("name") == "test.start"]) == 1, "one test per run folder"
    assert len([r for r in records(second) if r["kind"] == "prompt"]) == 6
    assert {r["workflow"] for r in records(first) if r["kind"] == "prompt"} == {"sleep"}, "the form's workflow ran"
