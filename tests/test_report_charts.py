"""Report charts a release manager can read at a glance, checked on the data they are drawn from
(synthetic run folders with known answers): rate axes from zero, an outage drawn as zero buckets
and shaded, no panel for a metric the run did not measure, bucket widths that follow the run."""

import pytest
from synthetic import meta_for, prompt_record, write_run_folder

from comfyload.analysis.buckets import bucket_seconds, shaded_windows
from comfyload.analysis.sla import SlaTargets
from reports.chart_set import draw_charts
from reports.charts import RATE
from reports.figures import report_summary
from reports.run_folder import load_run
from reports.timeseries import request_series, unit_frame

T0 = 1000.0
OUTAGE = (1030.0, 1060.0)


def run_with_outage():
    """Two completions a second for 90 s, none while the server was down (30 s to 60 s)."""
    records = [
        prompt_record(T0 + i * 0.5 - 0.4, T0 + i * 0.5)
        for i in range(1, 181)
        if not OUTAGE[0] <= T0 + i * 0.5 < OUTAGE[1]
    ]
    records += [
        {"kind": "event", "name": "outage.start", "ts": OUTAGE[0], "server": "http://127.0.0.1:8188"},
        {"kind": "event", "name": "outage.end", "ts": OUTAGE[1], "server": "http://127.0.0.1:8188"},
        {"kind": "event", "name": "test.stop", "ts": T0 + 95.0},
    ]
    return records


def host_memory_sample(ts):
    """What the /system_stats fallback records on a CPU-only ComfyUI: host RAM, no utilisation."""
    return {
        "kind": "gpu",
        "ts": ts,
        "gpu": 0,
        "name": "cpu",
        "device_type": "cpu",
        "source": "system_stats",
        "mem_used_mb": 7000.0,
        "mem_total_mb": 24000.0,
    }


def charts_of(tmp_path, records):
    run = load_run(write_run_folder(tmp_path / "run", records, meta=meta_for()))
    targets = SlaTargets()
    summary = report_summary(run, targets)
    return {c.name: c for c in draw_charts(run, summary, targets, tmp_path / "charts")}


def test_the_throughput_data_has_zero_buckets_during_an_outage():
    records = [r for r in run_with_outage() if r["kind"] == "prompt"]
    series = request_series(unit_frame(records), T0, 10, t_end=T0 + 95.0)
    down = series.loc[(series.index >= OUTAGE[0] - T0) & (series.index + 10 <= OUTAGE[1] - T0)]
    assert list(down.index) == [30.0, 40.0, 50.0], "every bucket of the outage is there, none left out"
    assert (down["images_per_min"] == 0).all() and down["p95_s"].isna().all()
    assert series.loc[10.0, "images_per_min"] == pytest.approx(120.0)
    assert series.index.max() == 90.0, "the chart runs to the end of the load window, not the last completion"
    assert series.loc[90.0, "images_per_min"] == pytest.approx(1 * 60 / 5), "the last bucket over its own 5 s"


def test_rate_axes_start_at_zero_outages_are_shaded_and_an_unmeasured_gpu_draws_no_panel(tmp_path):
    records = run_with_outage() + [host_memory_sample(T0 + s) for s in range(0, 90, 5)]
    charts = charts_of(tmp_path, records)
    rate_panels = [p for c in charts.values() for p in c.panels if p["gid"] == RATE]
    assert {p["ylabel"] for p in rate_panels} >= {"images / min", "failed renders (%)"}
    assert all(p["ylim"][0] == 0 for p in rate_panels), rate_panels
    throughput = charts["throughput_over_time"]
    users_axis = throughput.panels[1]
    assert users_axis["ylim"][0] == 0 and users_axis["ylabel"] == "users"
    assert "SLA" in throughput.caption
    latency = charts["latency_over_time"].panels[0]
    assert latency["yscale"] == "log" and latency["ylim"][1] >= 45, "sub-second values readable, the SLA line on it"
    gpu = charts["gpu_over_time"]
    assert [p["ylabel"] for p in gpu.panels] == ["host RAM (GiB)"], "no utilisation or power panel without data"
    assert "not VRAM" in gpu.caption
    note = charts["gpu_not_measured"]
    assert note.path is None and "not measured" in note.caption and "utilisation" in note.title


def test_a_report_without_gpu_samples_says_not_measured_once(tmp_path):
    charts = charts_of(tmp_path, run_with_outage())
    gpu = charts["gpu_over_time"]
    assert gpu.path is None and gpu.caption.startswith("not measured")
    assert not any("util" in p["ylabel"] or "power" in p["ylabel"] for c in charts.values() for p in c.panels)


def test_the_report_page_shows_one_not_measured_line(tmp_path):
    from reports.build import build

    run = write_run_folder(tmp_path / "run", run_with_outage(), meta=meta_for())
    summary = build(run)
    page = (run / "report.html").read_text()
    assert page.count('class="not-measured"') == 1 and "gpu_over_time.png" not in " ".join(summary["charts"])


@pytest.mark.parametrize(
    "duration, completions, width",
    [
        (60, 60, 10),  # >= 10 completions a bucket
        (31, 60, 5),  # ... where the run allows it: at least 6 buckets remain
        (600, 100_000, 5),  # a busy run: at most 240 buckets
        (86_400, 1_000_000, 600),
        (30, 0, 1),  # nothing completed: still a line of (zero) buckets
    ],
)
def test_bucket_width_follows_the_run(duration, completions, width):
    assert bucket_seconds(duration, completions) == width


def test_outage_and_fault_windows_pair_by_server_and_fault():
    events = [
        {"name": "alert.connection_lost", "ts": 10, "server": "a"},
        {"name": "alert.connection_lost", "ts": 12, "server": "b"},
        {"name": "alert.connection_restored", "ts": 15, "server": "b"},
        {"name": "fault.start", "ts": 20, "fault": "inject_sleep"},
        {"name": "fault.end", "ts": 30, "fault": "inject_sleep"},
    ]
    windows = shaded_windows(events, end_ts=40)
    assert [(w["kind"], w["start"], w["end"], w["open"]) for w in windows] == [
        ("connection lost", 10, 40, True),
        ("connection lost", 12, 15, False),
        ("fault", 20, 30, False),
    ]
