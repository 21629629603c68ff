"""Integration: `python -m comfyload run` end to end against the real local ComfyUI: the run
folder contract, the summary, exit codes, and bad input refused before any load starts."""

import csv
import json

import pytest
from conftest import only_run_dir, run_cli

from comfyload.harness.meta import LOCUST_REPORTED
from comfyload.protocol.server_contract import is_canonical_id
from comfyload.workloads.options import REPORTED

pytestmark = pytest.mark.integration


def load_records(run_dir):
    return [json.loads(line) for line in (run_dir / "comfyui_metrics.ndjson").read_text().splitlines()]


def test_headless_run_writes_the_run_folder_and_passes(comfy, runs_dir, tmp_path):
    out = tmp_path / "out" / "summary.json"
    proc = run_cli(
        "run", "--host", comfy, "--jobs", "24", "--concurrency", "3", "--run-time", "60s", "--output", str(out)
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_dir = only_run_dir(runs_dir)
    for name in (
        "meta.json",
        "comfyui_metrics.ndjson",
        "locust_stats.csv",
        "locust_stats_history.csv",
        "locust_failures.csv",
        "locust_exceptions.csv",
        "summary.json",
    ):
        assert (run_dir / name).is_file(), name
    prompts = [r for r in load_records(run_dir) if r["kind"] == "prompt"]
    assert len(prompts) == 24, "--jobs bounds the run exactly"
    assert {r["outcome"] for r in prompts} == {"success"}
    assert all(set(r["node_ms"]) == {"1", "2", "3"} for r in prompts)
    assert len({r["prompt_id"] for r in prompts}) == 24
    # ComfyUI 0.38.x refuses any other prompt id (comfy_execution/jobs.py @172be438 validate_job_id)
    assert all(is_canonical_id(r["prompt_id"]) and is_canonical_id(r["client_id"]) for r in prompts), prompts[0]
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["comfyui"]["system_stats"]["system"]["comfyui_version"] == "0.3.75"
    mode = meta["comfyui"]["server_mode"]  # the test server was started by LocalComfyUI: its measuring defaults
    assert mode["comfyui_version"] == "0.3.75" and mode["cache"] == "classic" and "--cache-classic" in mode["argv"]
    assert mode["assets"] is False and mode["dynamic_vram"] is False and mode["jobs_api"] is False
    assert meta["workflow"]["name"] == "cpu_smoke" and len(meta["workflow"]["sha256"]) == 64
    assert "custom_nodes.comfyload_drills" in meta["comfyui"]["node_packs"]["custom_node_packs"]
    assert meta["sla"]["latency_p95_s"] == 45 and meta["scenario"] == "smoke"
    summary = json.loads(out.read_text())["summary"]
    assert summary == json.loads((run_dir / "summary.json").read_text())["summary"]
    assert summary["prompts_ok"] == 24 and summary["sla_pass"] is True
    # every figure traceable to the records: Locust's count and max equal the records'
    row = next(r for r in csv.DictReader(open(run_dir / "locust_stats.csv")) if r["Name"] == "cpu_smoke")
    assert int(row["Request Count"]) == 24
    assert float(row["Max Response Time"]) == pytest.approx(max(r["e2e_ms"] for r in prompts), abs=0.01)
    assert summary["e2e_ms"]["max"] == pytest.approx(max(r["e2e_ms"] for r in prompts))
    assert "SLA verdict: PASS" in proc.stdout and "images per minute" in proc.stdout


def test_failures_beyond_the_error_budget_exit_non_zero_naming_the_metric(comfy, runs_dir, tmp_path):
    wf = tmp_path / "always_fails.json"
    wf.write_text(
        json.dumps(
            {"1": {"class_type": "Fault", "inputs": {"mode": "error", "probability": 1.0, "fail_times": 0, "key": ""}}}
        )
    )
    proc = run_cli("run", "--host", comfy, "--workflow", str(wf), "--jobs", "6", "--concurrency", "1")
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "SLA verdict: FAIL" in proc.stdout and "error_rate" in proc.stdout
    prompts = [r for r in load_records(only_run_dir(runs_dir)) if r["kind"] == "prompt"]
    assert len(prompts) == 6 and {r["outcome"] for r in prompts} == {"execution_error"}
    failures = list(csv.DictReader(open(only_run_dir(runs_dir) / "locust_failures.csv")))
    assert len(failures) == 1 and failures[0]["Occurrences"] == "6", "one failure row: no per-prompt text"


def test_unknown_node_class_fails_before_load_with_one_line(comfy, runs_dir, tmp_path):
    wf = tmp_path / "unknown.json"
    wf.write_text(json.dumps({"1": {"class_type": "NoSuchNode", "inputs": {}}}))
    proc = run_cli("run", "--host", comfy, "--workflow", str(wf), "--jobs", "3")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "unknown node class 'NoSuchNode'" in proc.stderr and "Traceback" not in proc.stderr
    assert list(runs_dir.iterdir()) == [], "no run started"


@pytest.mark.parametrize(
    "args,message",
    [
        (["--host", "http://127.0.0.1:9"], "is not reachable"),
        (["--run-time", "soon"], "--run-time must be a duration"),
        (["--per-prompt-timeout", "-1"], "--per-prompt-timeout must be > 0"),
        (["--completion", "sse"], "--completion must be"),
        (["--scenario", "nope"], "scenario not found"),
        (["--workflow", "nope"], "workflow file not found"),
        (["--concurrency", "0"], "--concurrency must be an integer >= 1"),
        (["--workers", "-1"], "--workers must be 0"),
        (["--route", "random"], "--route must be one of"),
        (["--comfy-hosts", "http://127.0.0.1:9"], "is not reachable"),
        (["--book-profile", "huge", "--user-class", "BookUser"], "unknown profile 'huge'"),
    ],
)
def test_bad_input_is_one_clear_line(comfy, runs_dir, args, message):
    full = ["run", "--host", comfy] + args if "--host" not in args else ["run"] + args
    proc = run_cli(*full, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0, proc.stderr


def test_bad_sla_file_is_refused(comfy, runs_dir, tmp_path):
    sla = tmp_path / "sla.yaml"
    sla.write_text("latency_p95_s: soon\n")
    proc = run_cli("run", "--host", comfy, "--sla", str(sla), timeout=60)
    assert proc.returncode == 2 and "latency_p95_s must be a number" in proc.stderr


def test_without_a_host_the_local_comfyui_is_started_and_stopped(runs_dir):
    from comfyload.orchestration.server import free_port, port_in_use

    port = free_port()
    proc = run_cli(
        "run", "--jobs", "5", "--concurrency", "1", env={"COMFY_HOST": "", "COMFY_PORT": str(port)}, timeout=400
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"starting on http://127.0.0.1:{port} with the measuring defaults --cache-classic" in proc.stderr
    assert not port_in_use(port), "the ComfyUI it started is stopped"
    run_dir = only_run_dir(runs_dir)
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["server"] == f"http://127.0.0.1:{port}"
    kept = sorted((run_dir / "outputs").rglob("*.png"))
    assert len(kept) == 5, "the run's images are kept in its own folder (--outputs keep)"
    assert f"outputs: 5 files moved to {run_dir / 'outputs'}" in proc.stderr
    from comfyload.orchestration.server import DEFAULT_WORK_ROOT

    left = {p.name for p in (DEFAULT_WORK_ROOT / str(port) / "output").rglob("*.png")}
    assert not left & {p.name for p in kept}, "nothing of this run left in ComfyUI's output folder"


def test_ws_per_user_opens_one_socket_per_user(comfy, runs_dir):
    proc = run_cli("run", "--host", comfy, "--ws-per-user", "--jobs", "9", "--concurrency", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    prompts = [r for r in load_records(only_run_dir(runs_dir)) if r["kind"] == "prompt"]
    assert len(prompts) == 9 and {r["outcome"] for r in prompts} == {"success"}
    assert len({r["client_id"] for r in prompts}) == 3, "one client id (socket) per user"


def test_shared_socket_by_default(comfy, runs_dir):
    proc = run_cli("run", "--host", comfy, "--jobs", "6", "--concurrency", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    prompts = [r for r in load_records(only_run_dir(runs_dir)) if r["kind"] == "prompt"]
    assert len({r["client_id"] for r in prompts}) == 1, "one socket per worker process"


@pytest.mark.parametrize(
    "env,message",
    [({"COMFY_PORT": "abc"}, "COMFY_PORT must be an integer"), ({"WORKERS": "x"}, "WORKERS must be an integer")],
)
def test_bad_env_values_are_one_clear_line(runs_dir, env, message):
    proc = run_cli("run", env=env, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr


def test_an_unwritable_output_is_refused_before_the_run(comfy, runs_dir):
    proc = run_cli("run", "--host", comfy, "--output", "/proc/nope/summary.json", timeout=60)
    assert proc.returncode == 2 and "--output /proc/nope/summary.json" in proc.stderr
    assert list(runs_dir.iterdir()) == [], "refused before any load"


def test_the_seed_runbook_command_runs_verbatim(comfy, runs_dir, tmp_path):
    """Reliability roadmap 2.2 / baseline checklist 3, flags as written there, from the folder it
    names; then its `jq '.summary' FILE`."""
    import shutil
    import subprocess
    import sys

    from conftest import REPO

    out = tmp_path / "observability" / "load_2024-06-xx.json"
    done = subprocess.run(
        [
            sys.executable,
            "run_load_test.py",
            "--server",
            comfy,
            "--workflow",
            "../samples/cpu_smoke.json",
            "--jobs",
            "12",
            "--concurrency",
            "4",
            "--timeout",
            "420",
            "--output",
            str(out),
        ],
        cwd=str(REPO / "infra/comfyui/load_test"),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if shutil.which("jq"):
        summary = json.loads(
            subprocess.run(["jq", ".summary", str(out)], capture_output=True, text=True, check=True).stdout
        )
    else:
        summary = json.loads(out.read_text())["summary"]
    assert summary["prompts_submitted"] == 12 and summary["prompts_ok"] == 12
    meta = json.loads((only_run_dir(runs_dir) / "meta.json").read_text())
    assert meta["parameters"]["per_prompt_timeout"] == 420.0 and meta["parameters"]["jobs"] == 12
    assert meta["reported_parameters"] == [*LOCUST_REPORTED, *REPORTED], "the report's rows, named by the table"
    readme = (only_run_dir(runs_dir) / "README.md").read_text()
    assert "| jobs | 12 |" in readme and "| metrics_host |" not in readme, "the marked options, and only those"
