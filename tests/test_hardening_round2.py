"""Issue 20, second round of "every mistake one clear line": each case below slipped through
before (load started, exit 0, a traceback, a folder left behind, or the wrong culprit named).
Through the CLI as a user types it: exit 2, one `error:` line that names the real source."""

import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from loopback_http import routes_handler, serving

from comfyload.analysis.sla import load_compare, load_sla
from comfyload.common.errors import UserError
from comfyload.orchestration.before_load import check_gpu_probe

REPO = Path(__file__).resolve().parent.parent
NOBODY = "http://127.0.0.1:9"  # a refused connection: the inputs must be refused before it matters


def comfyload(*args, env=None, cwd=REPO):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COMFY_")}
    done = subprocess.run(
        [sys.executable, "-m", "comfyload", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(cwd),
        env={**clean, **(env or {})},
    )
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.mark.parametrize(
    "args,said",
    [
        (["--host", "ftp://127.0.0.1:8188"], "--host 'ftp://127.0.0.1:8188': the scheme must be http or https"),
        (["--host", "http://127.0.0.1:99999"], "--host 'http://127.0.0.1:99999': the port must be a number from 1"),
        (["--host", "http://127.0.0.1:8188/prompt"], "ends in ComfyUI's endpoint /prompt"),
        (["--host", "http://127.0.0.1:8188/ws"], "ends in ComfyUI's endpoint /ws"),
        (["--host", "http://a:8188,http://b:8188"], "names more than one server"),
        (["--host", NOBODY, "--comfy-hosts", "http://a:1,ftp://b:2"], "--comfy-hosts entry 'ftp://b:2'"),
        (["--port", "0"], "--port must be a port from 1 to 65535, not 0"),
        (["--host", NOBODY, "--ramp-start", "9", "--ramp-max", "3"], "--ramp-start (9) must be <= --ramp-max (3)"),
    ],
)
def test_flags_are_named_as_the_mistake(args, said):
    assert said in comfyload("run", *args)


@pytest.mark.parametrize(
    "env,said",
    [
        ({"COMFY_USER_CLASS": "Nope"}, "env COMFY_USER_CLASS must be one of"),
        ({"COMFY_JOBS": "-1"}, "env COMFY_JOBS must be >= 0"),
        ({"COMFY_RUN_TIME": "soon"}, "env COMFY_RUN_TIME must be a duration"),
        ({"COMFY_HOST": "http://127.0.0.1:8188/prompt"}, "env COMFY_HOST 'http://127.0.0.1:8188/prompt'"),
    ],
)
def test_an_env_var_is_named_not_the_scenario_file(env, said):
    line = comfyload("run", *([] if "COMFY_HOST" in env else ["--host", NOBODY]), env=env)
    assert said in line and "baseline.yaml" not in line


def test_a_scenario_value_is_named_with_its_file_and_line(tmp_path):
    scenario = tmp_path / "mine.yaml"
    scenario.write_text("description: x\nusers: 2\njobs: -1\n")
    assert f"{scenario} line 3: jobs must be >= 0, not -1" in comfyload(
        "run", "--host", NOBODY, "--scenario", str(scenario)
    )
    scenario.write_text("users: 2\nrun_time: 30s\nusers: 4\n")
    assert "line 3: key 'users' is given twice (line 1 too)" in comfyload(
        "run", "--host", NOBODY, "--scenario", str(scenario)
    )


def test_a_refused_run_creates_no_folder_of_its_output_path(tmp_path):
    out = tmp_path / "a" / "b" / "summary.json"
    comfyload("run", "--host", NOBODY, "--output", str(out))
    assert not (tmp_path / "a").exists()


def test_the_web_ui_port_out_of_range_or_taken_is_one_line():
    assert "--web-port must be a port from 1 to 65535, not 70000" in comfyload(
        "ui", "--host", NOBODY, "--web-port", "70000"
    )
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert f"--web-port {port}: cannot listen on 127.0.0.1:{port}" in comfyload(
            "ui", "--host", NOBODY, "--web-port", str(port)
        )


def test_check_refuses_a_ui_format_graph_before_any_server(tmp_path):
    ui = tmp_path / "ui.json"
    ui.write_text(json.dumps({"nodes": [], "links": []}))
    assert "Export (API)" in comfyload("check", str(ui), "--host", NOBODY)


def test_percentages_are_percentages(tmp_path):
    sla = tmp_path / "sla.yaml"
    sla.write_text("latency_p95_s: 5\nerror_budget_pct: 150\n")
    with pytest.raises(UserError, match="error_budget_pct is a percentage of requests: 0 to 100, not 150"):
        load_sla(sla)
    sla.write_text("latency_p95_s: 5\ncompare:\n  confidence_pct: 0.95\n")
    with pytest.raises(UserError, match="0.95 means 0.95 %, not 95 %; write 95"):
        load_compare(sla)


@pytest.fixture
def plain_http():
    """A web server that is not a GPU probe (any page: 200 text/html)."""
    with serving(routes_handler({}, default=(200, "text/html", b"<html>hello</html>"))) as (_, url):
        yield url


def test_a_gpu_probe_that_is_not_one_is_refused(plain_http):
    with pytest.raises(UserError, match="answered but is not a GPU probe"):
        check_gpu_probe(plain_http, "env COMFY_GPU_PROBE")
    with pytest.raises(UserError, match="--gpu-probe http://127.0.0.1:9: no GPU probe answers there"):
        check_gpu_probe(NOBODY)
    with pytest.raises(UserError, match="--gpu-probe 'ftp://x:1': the scheme"):
        check_gpu_probe("ftp://x:1")


@pytest.mark.integration
def test_a_real_probe_passes_and_a_fake_one_stops_the_run_before_load(comfy, plain_http, tmp_path):
    from comfyload.orchestration.server import free_port

    port = free_port()
    probe = subprocess.Popen(
        [sys.executable, "-m", "gpu_probe", "serve", "--port", str(port), "--comfy", comfy],
        cwd=str(REPO),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):  # until it listens (not a timed assertion: it only bounds the wait)
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                probe.wait(timeout=0.1) if probe.poll() is not None else threading.Event().wait(0.1)
        check_gpu_probe(f"http://127.0.0.1:{port}")  # the real sidecar answers as a probe
    finally:
        probe.terminate()
        probe.wait(timeout=10)
    runs = tmp_path / "runs"
    line = comfyload("run", "--host", comfy, "--gpu-probe", plain_http, env={"COMFY_RUNS_DIR": str(runs)})
    assert "--gpu-probe" in line and "is not a GPU probe" in line
    assert not runs.exists() or not any(runs.iterdir()), "no run folder: refused before load"
