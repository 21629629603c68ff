"""The gate's bad inputs: one line, exit 2, nothing run and nothing created (no server needed:
everything is checked before any load)."""

from __future__ import annotations

import hashlib

import pytest
from conftest import REPO, run_cli
from synthetic import meta_for, prompt_record, write_run_folder

DEAD_HOST = "http://127.0.0.1:9"


def baseline_folder(tmp_path, sha=None):
    meta = meta_for()
    workflow = REPO / "workflows" / "sleep1.json"
    real = hashlib.sha256(workflow.read_bytes()).hexdigest()
    meta["parameters"].update(user_classes=["PromptUser"], num_users=1, jobs=4, workflow="sleep1")
    meta["workflows"] = [{"name": "sleep1", "file": str(workflow), "sha256": sha or real}]
    return write_run_folder(tmp_path / "baseline", [prompt_record(1000.0, 1001.0)], meta=meta)


@pytest.mark.parametrize(
    "args,named",
    [
        (["--baseline", "/nonexistent/run"], "--baseline /nonexistent/run: not a run folder"),
        (["--drills", "validation,bogus"], "--drills: unknown drill(s) bogus"),
        (["--sla", "/nonexistent/sla.yaml"], "/nonexistent/sla.yaml"),
    ],
)
def test_bad_gate_input_is_one_line_and_creates_nothing(tmp_path, args, named):
    base = baseline_folder(tmp_path)
    runs = tmp_path / "runs"
    runs.mkdir()
    full = args if "--baseline" in args else ["--baseline", str(base), *args]
    proc = run_cli("gate", "--host", DEAD_HOST, *full, env={"COMFY_RUNS_DIR": str(runs)})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith("error: ") and named in line and "Traceback" not in proc.stderr
    assert list(runs.iterdir()) == []


def test_a_workflow_changed_since_the_baseline_is_refused_unless_accepted(tmp_path):
    base = baseline_folder(tmp_path, sha="0" * 64)
    runs = tmp_path / "runs"
    runs.mkdir()
    proc = run_cli("gate", "--host", DEAD_HOST, "--baseline", str(base), env={"COMFY_RUNS_DIR": str(runs)})
    assert proc.returncode == 2
    [line] = proc.stderr.strip().splitlines()
    assert "workflow changed since the baseline: sleep1" in line and "--accept-workflow-change" in line
    accepted = run_cli(
        "gate",
        "--host",
        DEAD_HOST,
        "--baseline",
        str(base),
        "--accept-workflow-change",
        "--drills",
        "none",
        env={"COMFY_RUNS_DIR": str(runs)},
    )
    assert "workflow changed" not in accepted.stderr  # past the check: refused by the dead server instead
    assert accepted.returncode == 2 and "127.0.0.1:9" in accepted.stderr
