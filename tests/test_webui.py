"""The web UI's tables without a browser: GPU rows from the probe's latest samples, SLA rows from
sla.evaluate over the live window and the run so far (comfyload.harness.webui imports no Locust)."""

from collections import deque
from types import SimpleNamespace

import pytest

from comfyload.analysis.sla import SlaTargets
from comfyload.harness.live_view import gpu_view, ramp_view, snapshot
from comfyload.harness.webui import LIVE_WINDOW_S, TABLES, gpu_rows, sla_rows

NOW = 10_000.0
FULL = {
    "kind": "gpu",
    "ts": NOW - 0.4,
    "source": "nvml",
    "gpu": 0,
    "name": "NVIDIA L4",
    "util_gpu": 87,
    "util_mem": 41,
    "mem_used_mb": 6144.4,
    "mem_total_mb": 23034,
    "comfy_mem_mb": 5000,
    "power_w": 61.25,
    "power_limit_w": 72.0,
    "temp_c": 71,
    "sm_clock_mhz": 2040,
    "mem_clock_mhz": 6250,
    "throttle_reasons": ["sw_power_cap"],
    "pcie_gen": 3,
    "pcie_gen_max": 4,
    "pcie_width": 8,
    "pcie_width_max": 16,
    "pcie_tx_mb_s": 2.0,
    "pcie_rx_mb_s": 10.0,
    "fan_pct": 55,
}


def probe(*samples, status="GPU probe: test"):
    return SimpleNamespace(latest={s["gpu"]: s for s in samples}, status=status, history=deque(samples))


def test_gpu_row_shows_every_field_and_blanks_for_absent_ones():
    sparse = {
        "kind": "gpu",
        "ts": NOW - 2,
        "source": "system_stats",
        "gpu": 1,
        "name": "cuda:0",
        "mem_used_mb": 100,
        "mem_total_mb": 8000,
        "torch_vram_total_mb": 90,
        "torch_vram_free_mb": 10,
    }
    full, part = gpu_rows(probe(FULL, sparse), NOW)
    assert full == {
        "gpu": "0",
        "name": "NVIDIA L4",
        "source": "nvml",
        "util": "87 / 41",
        "vram": "6144 / 23034",
        "comfy": "5000",
        "torch": "",
        "power": "61.2 / 72.0",
        "temp": "71",
        "clocks": "2040 / 6250",
        "throttle": "sw_power_cap",
        "pcie": "3×8 / 4×16",
        "pcieio": "2.0 / 10.0",
        "fan": "55",
        "age": "0.4",
    }
    assert part["source"] == "system_stats" and part["vram"] == "100 / 8000" and part["torch"] == "90 / 10"
    assert part["util"] == part["power"] == part["fan"] == part["throttle"] == ""
    columns = {c["key"] for c in TABLES[0]["structure"]}
    assert set(full) == columns, "every column has a value and every value a column"


def test_no_samples_shows_why():
    (row,) = gpu_rows(probe(status="GPU probe: no NVIDIA GPU here (NVML: x) and no ComfyUI to ask; no GPU data"), NOW)
    assert "no GPU data" in row["name"]
    assert "worker" in gpu_rows(None, NOW)[0]["name"]


def prompt(sent, e2e_s, outcome="success"):
    return {
        "kind": "prompt",
        "intended_send_ts": sent,
        "done_ts": sent + e2e_s,
        "e2e_ms": e2e_s * 1000.0,
        "outcome": outcome,
        "final": True,
    }


def test_sla_window_and_run_so_far_judged_by_sla_evaluate():
    """The run started slow and failing (beyond the window), then recovered: the window passes,
    the run so far fails."""
    old = [prompt(NOW - LIVE_WINDOW_S - 600 + i, 60.0, "oom" if i % 2 else "success") for i in range(40)]
    recent = [prompt(NOW - 100 + i, 2.0) for i in range(60)]
    harness = SimpleNamespace(recent=deque(old + recent + [FULL]), sla=SlaTargets(latency_p95_s=45, error_budget_pct=2))
    rows = {r["metric"]: r for r in sla_rows(harness, NOW)}
    assert rows["latency_p95"]["window"] == "2 s" and rows["latency_p95"]["windowstate"] == "PASS"
    assert rows["latency_p95"]["runstate"] == "FAIL" and rows["error_rate"]["runstate"] == "FAIL"
    assert rows["error_rate"]["window"] == "0 %" and rows["error_rate"]["windowstate"] == "PASS"
    assert rows["throughput"]["target"] == ">= 20 images/min" and rows["throughput"]["windowstate"] == "PASS"
    assert rows["concurrency"]["windowstate"] == "n/a" and rows["concurrency"]["window"] == "not measured"


def test_sla_without_a_run():
    assert sla_rows(None, NOW)[0]["metric"] == "no run in progress"


def test_live_view_draws_an_outage_as_zero_buckets_and_shades_it():
    """One completion a second, none from 20 s to 40 s while the server was down."""
    start = NOW - 60
    records = [prompt(start + t - 0.5, 0.5) for t in range(0, 60) if not 20 <= t < 40]
    for r in records:
        r["done_ts"] = r["intended_send_ts"] + 0.5
    events = [
        {"kind": "event", "name": "outage.start", "ts": start + 20, "server": "s"},
        {"kind": "event", "name": "outage.end", "ts": start + 40, "server": "s"},
    ]
    doc = snapshot(
        records,
        events,
        [],
        [{"ts": start + 5, "queue_remaining": 3, "in_flight": 2}],
        SlaTargets(),
        NOW,
        {"started": start, "name": "run"},
    )
    assert doc["bucket_s"] == 10, "about 10 completions a bucket"
    rates = {b["t"]: b["images_per_min"] for b in doc["series"]}
    assert rates[20] == rates[30] == 0 and rates[0] == pytest.approx(60) and rates[50] == pytest.approx(60)
    assert doc["shaded"] == [{"start": 20.0, "end": 40.0, "open": False, "kind": "outage", "label": "outage s"}]
    assert doc["windows"]["last 1 min"]["images_per_min"] == pytest.approx(40), "the dead time counts"
    assert doc["targets"] == {"images_per_min": 20, "p95_s": 45, "error_pct": 2}
    assert doc["queue"][0]["t"] == 5 and doc["queue"][0]["queue_remaining"] == 3


def test_host_figures_are_labelled_as_host_figures():
    view = gpu_view(
        [{"ts": NOW, "gpu": 0, "name": "cpu", "source": "system_stats", "mem_used_mb": 7000, "mem_total_mb": 24000}],
        NOW - 10,
    )
    assert view["0"]["host_figures"] and "host RAM" in view["0"]["source_label"]
    assert not gpu_view([FULL], NOW - 10)["0"]["host_figures"]


def test_ramp_view_gives_the_level_and_an_eta():
    opts = SimpleNamespace(ramp_hold=60.0, ramp_max=6, ramp_step=1)
    shape = SimpleNamespace(
        level=3, level_started=NOW - 15, runner=SimpleNamespace(environment=SimpleNamespace(parsed_options=opts))
    )
    view = ramp_view(shape, [{"users": 2, "passed": True}], NOW)
    assert view["level"] == 3 and view["next_verdict_in_s"] == 45
    assert view["eta_s"] == 45 + 3 * 60 and view["eta_is_bound"], "3 more steps to --ramp-max at most"
