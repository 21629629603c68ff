"""Integration: `python -m comfyload run` writes the report, and `comfyload profile`
measures workflows one at a time, against the real ComfyUI."""

import json
import subprocess
import sys

import pytest
from conftest import REPO, only_run_dir, run_cli

pytestmark = pytest.mark.integration


def test_a_headless_run_ends_with_the_report(comfy, runs_dir):
    proc = run_cli("run", "--host", comfy, "--jobs", "10")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_dir = only_run_dir(runs_dir)
    assert f"report: {run_dir / 'report.html'}" in proc.stdout
    summary = json.loads((run_dir / "summary.json").read_text())["summary"]
    assert summary["prompts_ok"] == 10 and summary["run_id"] == run_dir.name
    assert {"images_per_minute", "e2e_ms", "sla", "errors", "gpu", "bottleneck_nodes", "charts"} <= set(summary)
    assert summary["bottleneck_nodes"][0]["class_type"] == "ImageBlur"
    charts = sorted(p.name for p in (run_dir / "charts").glob("*.png"))
    assert "latency_over_time.png" in charts and "throughput_over_time.png" in charts
    page = (run_dir / "report.html").read_text()
    assert "SLA verdict: PASS" in page and page.count("data:image/png;base64,") == len(charts)
    readme = (run_dir / "README.md").read_text()
    assert readme.startswith(f"# Baseline {run_dir.name}") and "0.3.75" in readme and "images_per_minute" in readme


def test_profile_names_the_bottleneck_node(comfy, tmp_path):
    workflow = tmp_path / "sleepy.json"
    workflow.write_text(
        json.dumps(
            {
                "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
                "2": {"class_type": "Sleep", "inputs": {"seconds": 0.4, "image": ["1", 0]}},
                "3": {
                    "class_type": "SaveImage",
                    "inputs": {"images": ["2", 0], "filename_prefix": "comfyload/profile"},
                },
            }
        )
    )
    out = tmp_path / "profile"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "comfyload",
            "profile",
            "cpu_smoke",
            str(workflow),
            "--host",
            comfy,
            "--runs",
            "3",
            "--warmup",
            "1",
            "--out",
            str(out),
        ],
        cwd=str(REPO),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    profiles = {p["workflow"]: p for p in json.loads((out / "profile.json").read_text())["profiles"]}
    assert profiles["cpu_smoke"]["runs"] == 3 and profiles["cpu_smoke"]["ok"] == 3, "warm-up runs are not measured"
    sleepy = profiles["sleepy"]
    assert sleepy["bottleneck_nodes"][0]["class_type"] == "Sleep"
    assert sleepy["bottleneck_nodes"][0]["mean_ms"] >= 400
    assert sleepy["e2e_ms"]["p50"] >= 400 and sleepy["peak_vram_mb"] is None
    assert "peak VRAM absent" in proc.stdout and (out / "profile.html").is_file()
