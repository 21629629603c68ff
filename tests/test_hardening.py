"""Issue 15: every bad input one clear line and exit 2, nothing silent or misleading, no file
leaves the machine or is written through a link unasked. Each test here failed on the code
before the issue."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from flask import Flask, jsonify
from loopback_http import routes_handler, serving
from synthetic import meta_for, prompt_record, write_run_folder

from comfyload.analysis.sla import load_sla
from comfyload.common.errors import UserError
from comfyload.common.yamlfile import read_mapping
from reports.build import build

REPO = Path(__file__).resolve().parent.parent
SYSTEM_STATS = {"system": {"os": "posix", "comfyui_version": "0.3.75"}, "devices": [{"name": "cpu", "type": "cpu"}]}


def run_cli(*args, env=None, cwd=REPO, timeout=120):
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=str(cwd),
        env={**os.environ, **(env or {})},
    )
    return done.returncode, done.stderr.strip().splitlines(), done


def one_error_line(code, lines, done):
    assert code == 2, done.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    return lines[0]


@pytest.fixture
def stub_http():
    """A loopback HTTP server answering GET paths from a dict: path -> (status, content type, body)."""
    routes = {}
    with serving(routes_handler(routes)) as (_, url):
        yield url, routes


# ---- servers that are not (quite) ComfyUI ---------------------------------------------------------
def test_host_with_system_stats_but_no_object_info_is_one_line(stub_http):
    url, routes = stub_http
    routes["/system_stats"] = (200, "application/json", json.dumps(SYSTEM_STATS).encode())
    line = one_error_line(*run_cli("-m", "comfyload", "run", "--host", url))
    assert "/object_info gave HTTP 404" in line and "not ComfyUI" in line


def test_plain_http_server_answered_but_is_not_comfyui(stub_http):
    url, routes = stub_http
    routes["/"] = (200, "text/html", b"<html>hello</html>")
    line = one_error_line(*run_cli("-m", "comfyload", "run", "--host", url))
    assert "answered but is not ComfyUI" in line and "not reachable" not in line


def test_json_server_without_comfyui_fields_is_not_comfyui(stub_http):
    url, routes = stub_http
    routes["/system_stats"] = (200, "application/json", b'{"status": "ok"}')
    line = one_error_line(*run_cli("-m", "comfyload", "run", "--host", url))
    assert "answered but is not ComfyUI" in line


def test_gpu_probe_comfy_at_a_host_that_is_not_comfyui(stub_http):
    url, routes = stub_http
    routes["/system_stats"] = (200, "application/json", b'{"status": "ok"}')
    code, lines, done = run_cli(
        "-m", "gpu_probe", "record", "/tmp/never-written.ndjson", "--duration", "1", "--comfy", url
    )
    assert code == 2 and any("answered but is not ComfyUI" in line for line in lines), done.stderr
    assert "no devices" not in done.stderr


# ---- gpu_probe record --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args,said",
    [
        (["{dir}"], "is a directory"),
        (["{dir}/x.ndjson", "--duration", "-5"], "--duration"),
        (["{dir}/x.ndjson", "--duration", "0"], "--duration"),
    ],
)
def test_gpu_probe_record_bad_arguments(tmp_path, args, said):
    line = one_error_line(*run_cli("-m", "gpu_probe", "record", *[a.format(dir=tmp_path) for a in args]))
    assert said in line


# ---- files the user writes ---------------------------------------------------------------------
def test_empty_sla_file_is_an_error_not_the_defaults(tmp_path):
    (tmp_path / "sla.yaml").write_text("# nothing here yet\n")
    with pytest.raises(UserError, match="SLA file is empty"):
        load_sla(tmp_path / "sla.yaml")


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    (tmp_path / "s.yaml").write_text("users: 2\nrun_time: [60s\nworkflow: x\n")
    with pytest.raises(UserError, match=r"line 3 column \d+"):
        read_mapping(tmp_path / "s.yaml", "scenario")


def test_negative_env_concurrency_is_named_as_the_env_var():
    line = one_error_line(
        *run_cli("-m", "comfyload", "run", "--host", "http://127.0.0.1:9", env={"COMFY_CONCURRENCY": "-3"})
    )
    assert "env COMFY_CONCURRENCY" in line and "--concurrency" not in line


def test_jobs_help_says_books_for_bookuser():
    from comfyload.orchestration.cli import build_parser

    text = " ".join(build_parser()._subparsers._group_actions[0].choices["run"].format_help().split())
    assert "books for BookUser" in text


def test_runbook_flags_are_accepted():
    from comfyload.orchestration.cli import build_parser

    args = build_parser().parse_args(
        [
            "run",
            "--server",
            "http://h:1",
            "--workflow",
            "x.json",
            "--jobs",
            "12",
            "--concurrency",
            "4",
            "--timeout",
            "420",
            "--output",
            "o.json",
        ]
    )
    assert (args.host, args.jobs, args.users, args.per_prompt_timeout, args.output) == (
        "http://h:1",
        12,
        4,
        420.0,
        "o.json",
    )


def test_multiline_text_in_an_error_stays_one_line():
    assert "\n" not in str(UserError("unknown key 'a\nb'"))


# ---- the web UI ----------------------------------------------------------------------------------
@pytest.fixture
def web_app(tmp_path):
    """comfyload.harness.webui on a real Flask app standing in for Locust's (its /swarm answers success)."""
    from comfyload.harness.webui import extend_web_ui

    app = Flask("test")
    started = []
    app.add_url_rule("/swarm", "swarm", lambda: (started.append(1), jsonify({"success": True}))[1], methods=["POST"])
    web_ui = SimpleNamespace(
        app=app,
        _stop_runners=lambda: None,
        template_args={"extra_options": {"workflow": {"default_value": "cpu_smoke"}}},
        auth_required_if_enabled=lambda f: f,
        update_template_args=lambda: None,
    )
    environment = SimpleNamespace(parsed_options=SimpleNamespace(web_base_path="", workflow="cpu_smoke"), host="h")
    extend_web_ui(environment, web_ui=web_ui)
    return app.test_client(), web_ui, started


def test_the_live_data_answers_json_whatever_the_query(web_app):
    """The old /comfyload/gpu.json?since=abc gave HTTP 500; its successor takes no parameter."""
    client, _, _ = web_app
    assert client.get("/comfyload/gpu.json?since=abc").status_code == 404
    response = client.get("/comfyload/live.json?since=abc")
    assert response.status_code == 200 and isinstance(response.get_json(), dict)


@pytest.mark.parametrize("value", ["/etc/passwd", "../../../../etc/passwd", "../sla.yaml", "nope"])
def test_web_ui_refuses_a_workflow_outside_the_workflow_folders(web_app, value):
    client, _, started = web_app
    answer = client.post("/swarm", data={"user_count": "1", "spawn_rate": "1", "workflow": value}).get_json()
    assert answer["success"] is False and value in answer["message"] and not started


def test_web_ui_offers_and_accepts_the_suite_workflows(web_app):
    client, web_ui, started = web_app
    web_ui.update_template_args()
    choices = web_ui.template_args["extra_options"]["workflow"]["choices"]
    assert {"cpu_smoke", "drills/page"} <= set(choices) and not any("passwd" in c for c in choices)
    answer = client.post("/swarm", data={"user_count": "1", "spawn_rate": "1", "workflow": "drills/page"}).get_json()
    assert answer["success"] is True and started


# ---- reports: never through a link, server text escaped -------------------------------------------
def small_run(path, **meta_changes):
    meta = meta_for()
    meta.update(meta_changes)
    records = [prompt_record(1000.0 + i, 1001.0 + i) for i in range(10)]
    return write_run_folder(path, records, meta=meta)


def test_reports_build_replaces_links_instead_of_writing_through_them(tmp_path):
    run = small_run(tmp_path / "run")
    victim, elsewhere = tmp_path / "victim.txt", tmp_path / "elsewhere"
    victim.write_text("keep me")
    elsewhere.mkdir()
    for name in ("report.html", "summary.json", "README.md"):
        (run / name).symlink_to(victim)
    (run / "charts").symlink_to(elsewhere, target_is_directory=True)
    build(run)
    assert victim.read_text() == "keep me" and list(elsewhere.iterdir()) == []
    for name in ("report.html", "summary.json", "README.md", "charts"):
        assert not (run / name).is_symlink()
    assert (run / "report.html").read_text().startswith("<!") and list((run / "charts").glob("*.png"))


def test_readme_escapes_server_text_for_markdown(tmp_path):
    evil = "cuda:0 ![x](http://tracker.example/p.png) [click](http://evil.example) <img src=x> | # head"
    stats = {"system": {"comfyui_version": "0.3.75 **bold**"}, "devices": [{"name": evil, "type": "cuda"}]}
    run = small_run(tmp_path / "run", comfyui={"system_stats": stats, "node_packs": {"classes": 1}})
    build(run)
    readme = (run / "README.md").read_text()
    for raw in ("![x](", "[click](", "<img", "**bold**"):
        assert raw not in readme, raw
    assert "\\!\\[x\\]\\(http" in readme
    rows = [line for line in readme.splitlines() if "tracker" in line]
    assert rows and all(line.count(" | ") == 1 for line in rows), "the text stays in its one table cell"


# ---- the local ComfyUI's output images ----------------------------------------------------------
@pytest.mark.parametrize("mode", ["keep", "delete"])
def test_run_outputs_kept_in_the_run_folder_or_deleted(tmp_path, mode):
    from comfyload.orchestration import run_outputs

    output, run = tmp_path / "output", tmp_path / "run"
    (output / "sub").mkdir(parents=True)
    (output / "old.png").write_bytes(b"before the run")
    before = run_outputs.files_in(output)
    (output / "ComfyUI_00001_.png").write_bytes(b"1")
    (output / "sub" / "ComfyUI_00002_.png").write_bytes(b"2")
    count, where = run_outputs.settle(output, before, run, mode)
    assert count == 2 and run_outputs.files_in(output) == {Path("old.png")}, "only this run's files move"
    if mode == "keep":
        assert where == run / "outputs" and run_outputs.files_in(where) == {
            Path("ComfyUI_00001_.png"),
            Path("sub/ComfyUI_00002_.png"),
        }
    else:
        assert where is None and not (run / "outputs").exists()
    with pytest.raises(UserError, match="--outputs must be keep or delete"):
        run_outputs.check_mode("archive")


# ---- found by scripts/bad_input_tally.py -----------------------------------------------------------
@pytest.mark.parametrize(
    "argv,said",
    [
        (["-m", "comfyload", "run", "--jobs", "x"], "argument --jobs: invalid int value"),
        (["-m", "comfyload", "run", "--user-class", "Nope"], "invalid choice: 'Nope'"),
        (["-m", "reports", "build"], "required: run_dir"),
        (["-m", "gpu_probe", "serve", "--port", "70000"], "--port must be 0-65535"),
    ],
)
def test_parser_errors_are_one_line(argv, said):
    assert said in one_error_line(*run_cli(*argv))


def test_run_refuses_an_sla_file_with_a_bad_compare_section(tmp_path):
    (tmp_path / "sla.yaml").write_text("latency_p95_s: 45\ncompare: {p95_pct: x}\n")
    line = one_error_line(
        *run_cli("-m", "comfyload", "run", "--host", "http://127.0.0.1:9", "--sla", str(tmp_path / "sla.yaml"))
    )
    assert "compare.p95_pct must be a number" in line


def test_workflow_is_a_web_ui_field_of_locusts_parser():
    """Locust's start form shows only options added with include_in_web_ui: the workflow is one,
    so its choices (above) are what the form offers. (Locust is imported in a process of its own.)"""
    code = (
        "from locust import argument_parser; from comfyload.workloads import options; p = argument_parser.get_parser(); "
        "options.add_to_locust_parser(p); print(sorted(p.args_included_in_web_ui))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(REPO))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "workflow" in done.stdout
