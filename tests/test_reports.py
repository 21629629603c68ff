"""Unit: the report's figures against run folders whose answers are known by hand, compare's
verdicts, and bad run folders refused with one line naming the file."""

import json
import subprocess
import sys

import pytest
from conftest import REPO
from synthetic import meta_for, prompt_record, write_run_folder

from comfyload.analysis.sla import CompareThresholds, load_compare
from comfyload.common.errors import UserError
from reports.build import build
from reports.compare import compare_runs
from reports.timeseries import request_series, unit_frame

SLA = {
    "throughput_images_per_min": 20,
    "concurrency_books": 5,
    "latency_p95_s": 45,
    "error_budget_pct": 2,
    "recovery_s": 120,
    "warmup_seconds": 0,
    "warmup_prompts": 0,
}


def known_schedule():
    """20 successes sent every 10 s, the i-th taking i+1 s (1..20 s), and one failure."""
    records = [prompt_record(1000.0 + 10 * i, 1000.0 + 10 * i + (i + 1), queue_ms=250) for i in range(20)]
    records.append(prompt_record(1005.0, 1006.0, "execution_error", error_type="RuntimeError"))
    return records


def reports_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "reports", *args], cwd=str(REPO), capture_output=True, text=True, timeout=300
    )


def test_figures_match_the_hand_computed_schedule(tmp_path):
    run = write_run_folder(tmp_path / "run", known_schedule(), meta=meta_for(sla=SLA))
    summary = build(run)
    # window: first send 1000 s -> last completion 1190 + 20 = 1210 s = 3.5 min; 20 images
    assert summary["images_per_minute"] == pytest.approx(20 / 3.5)
    # p95 of 1..20 s with linear interpolation: rank 0.95 * 19 = 18.05 -> 19.05 s
    assert summary["e2e_ms"]["p95"] == pytest.approx(19050)
    assert summary["e2e_ms"]["p50"] == pytest.approx(10500)
    assert summary["queue_wait_ms"]["mean"] == pytest.approx(250)
    assert summary["error_rate_pct"] == pytest.approx(100 * 1 / 21)
    assert summary["errors"] == [
        {
            "outcome": "execution_error",
            "error_type": "RuntimeError",
            "count": 1,
            "pct_of_renders": pytest.approx(100 / 21),
            "example_message": "execution_error happened",
            "example_node": None,
        }
    ]
    verdict = {v["metric"]: v for v in summary["sla"]}
    assert verdict["error_rate"]["passed"] is False and "error_rate" in summary["breached"]
    document = json.loads((run / "summary.json").read_text())
    assert document["summary"]["images_per_minute"] == pytest.approx(20 / 3.5)
    page = (run / "report.html").read_text()
    assert "SLA verdict: FAIL (throughput, error_rate)" in page and "19.05 s" in page
    assert page.index("SLA verdict") < page.index("<h2>Charts</h2>") < page.index("<h2>Run metadata</h2>")
    assert "No GPU data in this run" in page and "Not a ramp" in page and "No fault events" in page
    readme = (run / "README.md").read_text()
    assert "| images_per_minute (judged window) | 5.714 |" in readme and "| p95 latency | 19.05 s |" in readme
    assert "0.3.75" in readme and "custom_nodes.comfyload_drills" in readme
    assert sorted(p.name for p in (run / "charts").glob("*.png")) == sorted(c.split("/")[1] for c in summary["charts"])
    assert {
        "latency_over_time",
        "throughput_over_time",
        "errors_over_time",
        "latency_cdf",
        "queue_vs_execution",
        "node_time",
    } <= {c.split("/")[1][:-4] for c in summary["charts"]}
    assert "gpu_over_time.png" not in " ".join(summary["charts"]), "no GPU data -> no empty GPU chart"


def test_images_per_minute_over_time_of_a_known_schedule():
    # one completion a second for 60 s: 10 per 10-s bucket = 60 images/min; every 6th failed
    records = [prompt_record(t - 0.5, float(t), "success" if t % 6 else "oom") for t in range(1, 61)]
    series = request_series(unit_frame(records), t0=0.5, width=10)
    ok_per_bucket = series["ok"].tolist()
    assert sum(ok_per_bucket) == 50 and len(series) in (6, 7)
    full = series.loc[10.0]
    assert full["renders"] == 10 and full["images_per_min"] == pytest.approx(full["ok"] * 6)
    assert full["error_pct"] == pytest.approx(100 * (10 - full["ok"]) / 10)
    assert full["p95_s"] == pytest.approx(0.5)


def gpu_sample(ts, util, used, throttle=()):
    return {
        "kind": "gpu",
        "ts": ts,
        "gpu": 0,
        "name": "NVIDIA L4",
        "util_gpu": util,
        "util_mem": 10,
        "mem_used_mb": used,
        "mem_total_mb": 24000,
        "power_w": util,
        "power_limit_w": 72,
        "temp_c": 60,
        "throttle_reasons": list(throttle),
        "source": "nvml",
    }


def test_gpu_faults_ramp_and_nodes(tmp_path):
    records = [prompt_record(1000.0 + i, 1001.0 + i, node_ms={"1": 10.0, "2": 30.0, "3": 60.0}) for i in range(30)]
    records += [
        gpu_sample(1000 + s, 40 + s, 6000 + 100 * s, ["sw_power_cap"] if s in (3, 4) else ["gpu_idle"])
        for s in range(10)
    ]
    records += [
        {"kind": "event", "name": "fault.start", "ts": 1010.0, "fault": "kill"},
        {"kind": "event", "name": "outage.start", "ts": 1010.25, "server": "http://127.0.0.1:8188"},
        {"kind": "event", "name": "outage.end", "ts": 1010.5, "server": "http://127.0.0.1:8188"},
    ]
    records += [
        {
            "kind": "event",
            "name": "ramp.step",
            "ts": 1000 + u,
            "users": u,
            "images_per_min": ipm,
            "p95_s": p95,
            "error_pct": 0,
            "renders": 10,
            "passed": p95 < 45,
            "breached": [],
        }
        for u, ipm, p95 in ((1, 10, 5), (2, 19, 6), (4, 30, 9), (8, 31, 50))
    ]
    records.append(
        {
            "kind": "event",
            "name": "ramp.knee",
            "ts": 1040,
            "users": 4,
            "unit": "books",
            "first_breach": 8,
            "window": None,
        }
    )
    run = write_run_folder(tmp_path / "run", records, meta=meta_for(sla=SLA))
    summary = build(run)
    gpu = summary["gpu"][0]
    assert gpu["util_peak_pct"] == 49 and gpu["util_mean_pct"] == pytest.approx(44.5)
    assert gpu["vram_peak_mb"] == 6900 and gpu["vram_headroom_mb"] == 24000 - 6900
    assert gpu["throttle_s"] == pytest.approx(2.0), "two 1-s samples throttled; gpu_idle is not throttling"
    assert [r["class_type"] for r in summary["bottleneck_nodes"]] == ["SaveImage", "ImageBlur", "EmptyImage"]
    assert summary["bottleneck_nodes"][0]["share_pct"] == pytest.approx(60.0)
    said = " ".join(summary["observations"])
    assert "Throughput flattened at 4 users: 30.0 → 31.0" in said
    assert "Ramp knee: 4 books" in said and "first success 0.75 s after the outage began" in said
    assert "peaked at 49 %" in said
    assert {"gpu_over_time", "ramp"} <= {c.split("/")[1][:-4] for c in summary["charts"]}
    verdict = {v["metric"]: v for v in summary["sla"]}
    assert verdict["recovery"]["measured"] == 0.75, "first success (done 1011) after the outage began (1010.25)"


def test_server_and_workflow_text_is_escaped(tmp_path):
    evil = "<script>alert('x')</script>"
    records = [
        prompt_record(1000.0, 1001.0, workflow=evil),
        prompt_record(1001.0, 1002.0, "execution_error", error_message=evil, error_type="<img src=x onerror=y>"),
    ]
    meta = meta_for(sla=SLA)
    meta["workflow"]["name"] = evil
    run = write_run_folder(tmp_path / "run", records, meta=meta)
    build(run)
    page = (run / "report.html").read_text()
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page


def slow_copy(records, factor):
    return [
        dict(r, e2e_ms=r["e2e_ms"] * factor, done_ts=r["intended_send_ts"] + r["e2e_ms"] * factor / 1000.0)
        for r in records
    ]


def steady_run(seed=0, n=300):
    import random

    rng = random.Random(seed)
    records = []
    for i in range(n):
        send = 1000.0 + i
        records.append(prompt_record(send, send + rng.uniform(1.0, 2.0)))
    return records


def test_compare_flags_an_injected_20_percent_p95_regression(tmp_path):
    base = steady_run()
    a = write_run_folder(tmp_path / "a", base, meta=meta_for(sla=SLA))
    b = write_run_folder(tmp_path / "b", slow_copy(base, 1.2), meta=meta_for(sla=SLA))
    result = compare_runs(a, b, REPO / "sla.yaml")
    p95 = result["judged"][0]
    assert p95.delta_pct == pytest.approx(20.0) and p95.diff_ci[0] > 0
    assert p95.verdict == "regression" and result["verdict"] == "regression"
    assert result["judged"][1].verdict == "no change", "throughput barely moved"
    proc = reports_cli("compare", str(a), str(b), "--html", str(tmp_path / "cmp.html"))
    assert proc.returncode == 1, proc.stderr
    assert "verdict: REGRESSION" in proc.stdout
    assert "Verdict: REGRESSION" in (tmp_path / "cmp.html").read_text()
    # the other way round it is an improvement, and no failure
    assert reports_cli("compare", str(b), str(a), "--html", str(tmp_path / "back.html")).returncode == 0
    assert compare_runs(b, a, REPO / "sla.yaml")["verdict"] == "improvement"


def test_compare_passes_two_runs_of_the_same_data(tmp_path):
    a = write_run_folder(tmp_path / "a", steady_run(), meta=meta_for(sla=SLA))
    b = write_run_folder(tmp_path / "b", steady_run(), meta=meta_for(sla=SLA))
    proc = reports_cli("compare", str(a), str(b))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verdict: NO CHANGE" in proc.stdout and (b / "compare.html").is_file()
    # a 5 % slow-down is inside the 10 % threshold
    c = write_run_folder(tmp_path / "c", slow_copy(steady_run(), 1.05), meta=meta_for(sla=SLA))
    assert compare_runs(a, c, REPO / "sla.yaml")["verdict"] == "no change"


def test_compare_thresholds_come_from_sla_yaml(tmp_path):
    assert load_compare(REPO / "sla.yaml") == CompareThresholds(
        p95_pct=10, throughput_pct=10, confidence_pct=95, bootstrap_samples=1000
    )
    path = tmp_path / "sla.yaml"
    path.write_text("latency_p95_s: 30\ncompare:\n  p95_pct: 25\n")
    assert load_compare(path).p95_pct == 25 and load_compare(path).throughput_pct == 10
    path.write_text("compare:\n  p95: 5\n")
    with pytest.raises(UserError, match="unknown compare key .p95. \\(did you mean .p95_pct.\\?\\)"):
        load_compare(path)
    path.write_text("compare:\n  p95_pct: -1\n")
    with pytest.raises(UserError, match="compare.p95_pct must be a number >= 0"):
        load_compare(path)


def cut(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize(
    "damage,named",
    [
        (lambda run: (run / "meta.json").unlink(), "meta.json: missing"),
        (lambda run: cut(run / "meta.json"), "meta.json: truncated"),
        (lambda run: (run / "locust_stats_history.csv").unlink(), "locust_stats_history.csv: missing"),
        (lambda run: cut(run / "locust_stats_history.csv"), "locust_stats_history.csv: truncated"),
        (lambda run: (run / "locust_stats.csv").write_text(""), "locust_stats.csv: truncated"),
        (lambda run: (run / "comfyui_metrics.ndjson").write_text(""), "comfyui_metrics.ndjson: no records"),
        (
            lambda run: (run / "comfyui_metrics.ndjson").write_text('{"kind":"prompt"\n{"kind":"event"}\n'),
            "comfyui_metrics.ndjson: line 1 is not JSON",
        ),
    ],
)
def test_a_damaged_run_folder_is_one_clear_line_naming_the_file(tmp_path, damage, named):
    run = write_run_folder(tmp_path / "run", known_schedule(), meta=meta_for(sla=SLA))
    damage(run)
    proc = reports_cli("build", str(run))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ") and named in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_cut_last_line_is_skipped_and_said(tmp_path):
    run = write_run_folder(tmp_path / "run", known_schedule(), meta=meta_for(sla=SLA))
    with open(run / "comfyui_metrics.ndjson", "a") as f:
        f.write('{"kind":"prompt","outc')
    summary = build(run)
    assert summary["prompts_submitted"] == 21
    assert any("last line was cut off" in o for o in summary["observations"])


def test_compare_calls_a_run_with_no_success_a_regression(tmp_path):
    base = steady_run()
    dead = [dict(r, outcome="lost", error_type="lost", e2e_ms=None) for r in base]
    a = write_run_folder(tmp_path / "a", base, meta=meta_for(sla=SLA))
    b = write_run_folder(tmp_path / "b", dead, meta=meta_for(sla=SLA))
    result = compare_runs(a, b, REPO / "sla.yaml")
    assert result["verdict"] == "regression" and "rendered nothing" in result["notes"][0]
    proc = reports_cli("compare", str(a), str(b))
    assert proc.returncode == 1 and "verdict: REGRESSION" in proc.stdout


def test_compare_refuses_two_different_workloads_in_one_line_unless_forced(tmp_path):
    prompt_meta = meta_for(sla=SLA)
    prompt_meta["parameters"]["user_classes"] = ["PromptUser"]
    book_meta = meta_for(sla=SLA)
    book_meta["parameters"].update(user_classes=["BookUser"], book_profile="cpu_medium")
    a = write_run_folder(tmp_path / "a", steady_run(), meta=prompt_meta)
    b = write_run_folder(tmp_path / "b", steady_run(), meta=book_meta)
    proc = reports_cli("compare", str(a), str(b))
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "different workloads" in line and "user_class PromptUser vs BookUser" in line and "--force" in line
    forced = reports_cli("compare", str(a), str(b), "--force")
    assert forced.returncode == 0 and "workloads differ" in forced.stdout
    other_workflow = meta_for(sla=SLA)
    other_workflow["workflow"] = {**other_workflow["workflow"], "name": "sleep", "sha256": "1" * 64}
    c = write_run_folder(tmp_path / "c", steady_run(), meta=other_workflow)
    with pytest.raises(UserError, match="workflow cpu_smoke"):
        compare_runs(tmp_path / "a", c, REPO / "sla.yaml")


def test_host_ram_from_a_cpu_comfyui_is_not_called_vram():
    from reports.figures import gpu_observations

    row = {
        "gpu": 0,
        "name": "cpu",
        "util_peak_pct": None,
        "util_mean_pct": None,
        "vram_peak_mb": 1436.0,
        "vram_total_mb": 24106.0,
        "vram_headroom_pct": 94.0,
        "throttle_s": 0.0,
        "throttle_reasons": {},
    }
    said = " ".join(gpu_observations([row]))
    assert "host RAM" in said and "VRAM" not in said
    said = " ".join(gpu_observations([{**row, "name": "NVIDIA H100 80GB HBM3"}]))
    assert "GPU 0 VRAM: peak 1436 of 24106 MB" in said
