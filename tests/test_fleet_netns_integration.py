"""Integration: the predicted knee of a fleet of two ComfyUI servers against the adaptive ramp's,
with the Locust master and its two workers each in its own network namespace, joined by veth pairs
on a bridge, so nothing in the distributed path (master <-> workers, workers -> servers) can lean on
loopback. The namespaces, veths and bridge are made and removed here; the test is skipped only
where a namespace cannot be made (not root, no CAP_NET_ADMIN), and says why.

Knee by hand: books of Sleep-1-s pages on 2 servers, pages routed least_queue: 8 books keep 4 pages
on each server (latency ~4 s + a gc pause), 9 put 5 on one (>= 5 s for those pages, over half of
them): SLA p95 4.95 s -> knee 8. The model (2 FIFO servers) predicts 8 too; tolerance one book, as
for one server (tests/test_capacity_integration.py)."""

import json
import os
import subprocess
import sys
import time

import pytest
from conftest import REPO

from comfyload.common.processes import stop_process
from comfyload.orchestration.run import worker_command
from comfyload.orchestration.server import LocalComfyUI, free_port

pytestmark = pytest.mark.integration
TAG = f"cl{os.getpid() % 100000}"
SUBNET = f"10.216.{os.getpid() % 200 + 20}"


def ip(*args, ns=None, check=True):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=check)


@pytest.fixture
def netns():
    """{'master': (ns, addr), 'w1': ..., 'w2': ...} and the bridge's address (the servers')."""
    probe = subprocess.run(["ip", "netns", "add", f"{TAG}m"], capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {probe.stderr.strip() or probe.returncode}")
    made = {"master": (f"{TAG}m", f"{SUBNET}.2"), "w1": (f"{TAG}a", f"{SUBNET}.3"), "w2": (f"{TAG}b", f"{SUBNET}.4")}
    bridge = f"{TAG}br"
    try:
        ip("link", "add", bridge, "type", "bridge")
        ip("addr", "add", f"{SUBNET}.1/24", "dev", bridge)
        ip("link", "set", bridge, "up")
        for ns, addr in made.values():
            if ns != f"{TAG}m":
                subprocess.run(["ip", "netns", "add", ns], check=True, timeout=10)
            outside, inside = f"{ns}o", f"{ns}i"
            ip("link", "add", outside, "type", "veth", "peer", "name", inside)
            ip("link", "set", inside, "netns", ns)
            ip("link", "set", outside, "master", bridge)
            ip("link", "set", outside, "up")
            ip("addr", "add", f"{addr}/24", "dev", inside, ns=ns)
            ip("link", "set", inside, "up", ns=ns)
            ip("link", "set", "lo", "up", ns=ns)
        yield made, f"{SUBNET}.1"
    finally:
        for ns, _ in made.values():
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)  # takes its veth along
        subprocess.run(["ip", "link", "del", bridge], capture_output=True, timeout=10)
        leftover = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, timeout=10).stdout
        assert TAG not in leftover, "namespaces removed"


def in_ns(ns, cmd, log):
    return subprocess.Popen(
        ["ip", "netns", "exec", ns, *cmd],
        cwd=str(REPO),
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_fleet_knee_with_master_and_workers_in_their_own_namespaces(netns, tmp_path):
    spaces, server_addr = netns
    servers = [
        LocalComfyUI(port=free_port(), work_dir=tmp_path / f"comfy{i}", listen=f"127.0.0.1,{server_addr}")
        for i in range(2)
    ]
    procs = []
    try:
        for s in servers:
            s.start(ready_timeout=300)
        hosts = ",".join(f"http://{server_addr}:{s.port}" for s in servers)
        master_ns, master_addr = spaces["master"]
        run_dir = tmp_path / "run"
        files = f"{REPO / 'locustfile.py'},{REPO / 'scenarios' / 'shapes' / 'adaptive_ramp.py'}"
        master = [
            sys.executable,
            "-m",
            "locust",
            "-f",
            files,
            "--headless",
            "--run-time",
            "150s",
            "--host",
            hosts.split(",")[0],
            "--master",
            "--master-bind-host",
            master_addr,
            "--master-bind-port",
            "5557",
            "--expect-workers",
            "2",
            "--stop-timeout",
            "40",
            "--run-dir",
            str(run_dir),
            "--scenario-name",
            "fleet_netns",
            "--comfy-hosts",
            hosts,
            "--route",
            "least_queue",
            "--book-profile",
            "sleep_pages",
            "--sla",
            "scenarios/sla/sleep.yaml",
            "--ramp-start",
            "6",
            "--ramp-hold",
            "40",
            "--ramp-max",
            "12",
            "--ramp-ci-width",
            "0.25",
            "--per-prompt-timeout",
            "30",
            "BookUser",
        ]
        worker = worker_command(master, 5557, master_host=master_addr)
        logs = tmp_path / "logs"
        logs.mkdir()
        procs.append(in_ns(master_ns, master, open(logs / "master.log", "w")))
        for name in ("w1", "w2"):
            procs.append(in_ns(spaces[name][0], worker, open(logs / f"{name}.log", "w")))
        deadline = time.monotonic() + 200
        while procs[0].poll() is None and time.monotonic() < deadline:
            time.sleep(1)
        assert procs[0].poll() is not None, "the master finished within its bound"
    finally:
        for p in procs:
            stop_process(p)
        for s in servers:
            s.stop()
    records = [json.loads(line) for line in (run_dir / "comfyui_metrics.ndjson").read_text().splitlines()]
    workers = {r.get("worker") for r in records if r.get("kind") == "prompt"}
    assert len(workers) == 2, f"both workers sent load: {workers}"
    assert {r["server"] for r in records if r.get("kind") == "prompt"} == set(hosts.split(","))
    [prediction] = [r for r in records if r.get("name") == "ramp.prediction"]
    [knee] = [r for r in records if r.get("name") == "ramp.knee"]
    print(
        f"\nfleet of 2: predicted knee {prediction['knee']}, measured {knee['users']} "
        f"({knee['knee_low']}..{knee['knee_high']}), steps {knee['steps']}"
    )
    assert prediction["servers"] == 2 and prediction["knee"] in (7, 8, 9)
    assert abs(prediction["knee"] - knee["users"]) <= 1
