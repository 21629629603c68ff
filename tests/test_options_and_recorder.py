"""Unit: option table, recorder, exact Locust buckets (in a subprocess: importing Locust
monkey-patches the process)."""

import json
import subprocess
import sys

import pytest

from comfyload.common.errors import UserError
from comfyload.common.recorder import RunRecorder, new_run_dir, read_records, redact
from comfyload.workloads import options


def test_check_values_names_the_flag():
    with pytest.raises(UserError, match="--per-prompt-timeout must be > 0"):
        options.check_values({"per_prompt_timeout": 0})
    options.check_values({"per_prompt_timeout": 1.5, "jobs": 0})


def test_coerce_from_scenario_and_env():
    assert options.coerce("jobs", "12", "env COMFY_JOBS") == 12
    assert options.coerce("download", "yes", "x") is True
    with pytest.raises(UserError, match="env COMFY_JOBS: jobs must be int"):
        options.coerce("jobs", "many", "env COMFY_JOBS")


def test_every_option_has_a_comfy_env_var_and_help():
    for o in options.OPTIONS:
        assert o.env.startswith("COMFY_") and o.help


def test_recorder_flushes_each_line_and_skips_a_truncated_tail(tmp_path):
    rec = RunRecorder(tmp_path)
    rec.write({"kind": "prompt", "prompt_id": "a"})
    # readable before close: flushed per line
    assert json.loads((tmp_path / "comfyui_metrics.ndjson").read_text())["prompt_id"] == "a"
    rec.event("test.start", host="h")
    with open(tmp_path / "comfyui_metrics.ndjson", "a") as f:
        f.write('{"kind": "prompt", "prom')
    records = read_records(tmp_path)
    assert [r["kind"] for r in records] == ["prompt", "event"]


def test_meta_never_holds_secrets(tmp_path):
    rec = RunRecorder(tmp_path)
    rec.write_meta(
        {
            "parameters": {"web_auth": "user:pass", "api_key": "k", "workflow": "w", "web_login": False},
            "extra_data": {"auth_token_comfy_org": "t"},
        }
    )
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["parameters"]["web_auth"] == "<redacted>" and meta["parameters"]["api_key"] == "<redacted>"
    assert meta["extra_data"]["auth_token_comfy_org"] == "<redacted>"
    assert meta["parameters"]["workflow"] == "w"
    assert "user:pass" not in (tmp_path / "meta.json").read_text()


def test_redact_keeps_structure():
    assert redact([{"token": "x", "n": 1}]) == [{"token": "<redacted>", "n": 1}]


def test_run_dirs_are_unique(tmp_path):
    a, b = new_run_dir("baseline", tmp_path), new_run_dir("baseline", tmp_path)
    assert a != b and a.name.endswith("baseline")


def test_locust_keeps_response_times_exact_to_the_ms():
    code = (
        "from comfyload.harness import exact_stats; exact_stats.install()\n"
        "from locust.stats import StatsEntry, RequestStats\n"
        "e = StatsEntry(RequestStats(), 'x', 'COMFY')\n"
        "[e.log(rt, 0) for rt in (12345.4, 44987.0, 187.0)]\n"
        "print(sorted(e.response_times), e.get_response_time_percentile(1.0))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[187, 12345, 44987] 44987"
