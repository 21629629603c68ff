"""The weekly regression CI files (infra/ci/): valid for their service (check-jsonschema with its
vendored GitHub Actions and GitLab CI schemas, offline), and they run the quick gate against
COMFY_HOST and keep the gate report as an artefact."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

CI = REPO / "infra" / "ci"
LINTER = Path(sys.executable).parent / "check-jsonschema"


@pytest.mark.parametrize(
    "name,schema",
    [("github-weekly-gate.yml", "vendor.github-workflows"), ("gitlab-weekly-gate.yml", "vendor.gitlab-ci")],
)
def test_ci_file_passes_its_services_schema(name, schema):
    done = subprocess.run(
        [str(LINTER), "--builtin-schema", schema, str(CI / name)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def gate_commands(steps: list[str]) -> list[list[str]]:
    return [shlex.split(s) for s in steps if "comfyload gate" in s]


def test_github_workflow_runs_the_quick_gate_weekly_and_keeps_the_report():
    flow = yaml.safe_load((CI / "github-weekly-gate.yml").read_text())
    assert "schedule" in flow[True] and flow[True]["schedule"][0]["cron"]  # `on:` is YAML 1.1's True
    job = flow["jobs"]["gate"]
    assert job["env"]["COMFY_HOST"]
    [command] = gate_commands([s.get("run", "") for s in job["steps"]])
    assert command[:2] == ["comfyload", "gate"] and "--full" not in command
    upload = next(s for s in job["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact"))
    out = command[command.index("--out") + 1]
    assert upload["if"] == "always()" and f"{out}/" in upload["with"]["path"]


def test_gitlab_job_runs_the_quick_gate_on_a_schedule_and_keeps_the_report():
    job = yaml.safe_load((CI / "gitlab-weekly-gate.yml").read_text())["weekly-gate"]
    assert any("schedule" in r["if"] for r in job["rules"])
    [command] = gate_commands(job["script"])
    out = command[command.index("--out") + 1]
    assert "--full" not in command and job["artifacts"]["when"] == "always" and f"{out}/" in job["artifacts"]["paths"]


def test_the_ci_command_line_parses_here():
    """The gate's own parser takes the CI's arguments ($COMFY_HOST filled in)."""
    from comfyload.orchestration.gate import build_parser

    job = yaml.safe_load((CI / "gitlab-weekly-gate.yml").read_text())["weekly-gate"]
    [command] = gate_commands(job["script"])
    args = build_parser().parse_args([a.replace("$COMFY_HOST", "http://gpu-box:8188") for a in command[2:]])
    assert args.host == "http://gpu-box:8188" and not args.full and args.out == "gate-report"
