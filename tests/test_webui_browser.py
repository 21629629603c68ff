"""Locust's web UI with ComfyLoad's tabs in a real headless browser (Debian's chromium): a run is
started from the form against the real ComfyUI, the GPU tab shows the probe's latest values (the
/system_stats fallback where there is no NVIDIA GPU), the SLA tab judges the live window in
green/red, and the live page's memory chart draws the samples. Screenshots are kept in the test's tmp folder."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from conftest import CHROMIUM, CHROMIUM_ARGS, browser_api

from comfyload.common.processes import stop_process
from comfyload.orchestration.server import free_port

pytestmark = [pytest.mark.integration, pytest.mark.browser]
REPO = Path(__file__).resolve().parent.parent
ARGS = CHROMIUM_ARGS
GREEN, RED = "rgb(27, 127, 27)", "rgb(198, 40, 40)"
# share of a canvas's pixels that are coloured (the plotted lines; axes and text are grey)
CANVAS_INK = """id => { const c = document.getElementById(id), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i+3] && Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 60) n++;
  return n / (d.length / 4); }"""


@pytest.fixture
def web_ui(comfy, tmp_path):
    """Locust's web UI on a free loopback port, run by its pid and stopped by it."""
    port = free_port()
    run_dir = tmp_path / "run"
    log = open(tmp_path / "locust.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            "-f",
            "locustfile.py",
            "--web-host",
            "127.0.0.1",
            "--web-port",
            str(port),
            "--host",
            comfy,
            "--run-dir",
            str(run_dir),
            "--gpu-interval",
            "0.5",
            "PromptUser",
        ],
        cwd=str(REPO),
        env={**os.environ, "COMFY_RUNS_DIR": str(tmp_path)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "locust.log").read_text()
            try:
                if requests.get(url + "/", timeout=1).ok:
                    break
            except requests.RequestException:
                pass
            assert time.time() < deadline, "the web UI did not come up"
            time.sleep(0.2)
        yield url, run_dir
    finally:
        stop_process(proc, grace=30)
        log.close()


def cell_texts(page) -> list[list[str]]:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('tbody tr')).map(r => "
        "Array.from(r.querySelectorAll('td')).map(td => td.textContent.trim()))"
    )


def wait_for_rows(page, condition, what, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = cell_texts(page)
        if condition(rows):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}; rows: {cell_texts(page)}")


def test_gpu_and_sla_tabs_and_chart_in_chromium(web_ui, tmp_path):
    sync_api = browser_api()
    url, run_dir = web_ui
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.goto(url + "/")
            page.fill("input[name=userCount]", "2")
            page.fill("input[name=spawnRate]", "2")
            page.click("button[type=submit]")

            page.get_by_role("tab", name="GPU").click()
            rows = wait_for_rows(
                page,
                lambda rows: rows and len(rows[0]) >= 5 and rows[0][2] in ("nvml", "system_stats") and rows[0][4],
                "a GPU row with VRAM",
            )
            gpu, name, source, util, vram = rows[0][:5]
            used, total = (float(v) for v in vram.split(" / "))
            assert gpu.isdigit() and name and 0 < used <= total
            if source == "nvml":
                assert 0 <= float(util.split(" / ")[0]) <= 100
            page.screenshot(path=str(tmp_path / "webui_gpu.png"), full_page=True)

            page.get_by_role("tab", name="SLA").click()
            rows = wait_for_rows(
                page,
                lambda rows: any(r[:1] == ["throughput"] and r[2] != "not measured" for r in rows),
                "the SLA window to measure throughput",
            )
            by_metric = {r[0]: r for r in rows}
            assert set(by_metric) == {"throughput", "concurrency", "latency_p95", "error_rate", "recovery"}
            assert by_metric["throughput"][1].startswith(">= ") and "images/min" in by_metric["throughput"][2]
            assert by_metric["latency_p95"][3] in ("PASS", "FAIL") and by_metric["concurrency"][3] == "n/a"
            colours = page.evaluate(
                "() => Array.from(document.querySelectorAll('td')).filter(td => "
                "['PASS', 'FAIL'].includes(td.textContent.trim())).map(td => "
                "[td.textContent.trim(), getComputedStyle(td).color])"
            )
            assert colours and all(c == (GREEN if text == "PASS" else RED) for text, c in colours), colours
            page.screenshot(path=str(tmp_path / "webui_sla.png"), full_page=True)

            assert page.locator("#comfyload-gpu-chart").count() == 0, "no link over the users chart's axis"
            chart = browser.new_page(viewport={"width": 1400, "height": 1100})
            chart.goto(url + "/comfyload/live")  # the GPU chart is part of the live ComfyLoad page now
            chart.wait_for_function(
                "() => document.getElementById('h-gpu-mem').textContent.length > 0 && document.body.dataset.updated"
            )
            time.sleep(2.5)  # a couple more polls, so there is a line to draw
            assert chart.evaluate(CANVAS_INK, "gpu-mem") > 0.001, "the memory chart draws the samples"
            heading = chart.inner_text("#h-gpu-mem")
            assert "VRAM" in heading or "host RAM" in heading, "the memory chart says whose memory it is"
            chart.screenshot(path=str(tmp_path / "webui_chart.png"), full_page=True)
        finally:
            browser.close()
    for shot in ("webui_gpu.png", "webui_sla.png", "webui_chart.png"):
        assert (tmp_path / shot).stat().st_size > 5_000
    (test_dir,) = list(tmp_path.glob("*-adhoc"))  # each test started in the web UI: its own folder beside --run-dir
    records = [json.loads(line) for line in (test_dir / "comfyui_metrics.ndjson").read_text().splitlines()]
    gpu_records = [r for r in records if r["kind"] == "gpu"]
    assert gpu_records and all(r["source"] in ("nvml", "system_stats") for r in gpu_records), (
        "samples taken during the run are in its records"
    )
