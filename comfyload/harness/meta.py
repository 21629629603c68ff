"""meta.json: what a release manager needs to trust and reproduce a run."""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
import time
from collections import Counter

from comfyload.common.paths import REPO
from comfyload.protocol.model_files import model_files
from comfyload.workloads.options import REPORTED


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return None
    commit = out.stdout.strip() or None
    return f"{commit}-dirty" if commit and dirty else commit


def nvidia_driver() -> dict | None:
    """GPU names and driver version from nvidia-smi, where there is one."""
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    rows = [line.split(", ") for line in out.stdout.strip().splitlines() if ", " in line]
    return {"gpus": [r[0] for r in rows], "driver": rows[0][1] if rows else None} if rows else None


def node_packs(object_info: dict) -> dict:
    """Node classes per Python module (built-in `nodes`, `comfy_extras.*`, `custom_nodes.*`)."""
    modules = Counter(str(info.get("python_module", "?")) for info in object_info.values())
    custom = sorted(m for m in modules if m.startswith("custom_nodes"))
    return {"classes": len(object_info), "custom_node_packs": custom, "modules": dict(sorted(modules.items()))}


def describe_workflow(workflow) -> dict:
    return {
        "name": workflow.name,
        "file": str(workflow.path),
        "sha256": workflow.sha256,
        "nodes": {k: v.get("class_type") for k, v in workflow.graph.items()},
    }


# Locust's own run parameters the report shows before the option table's `in_report` entries.
LOCUST_REPORTED = ("host", "num_users", "spawn_rate", "run_time", "user_classes")


def build_meta(
    options: dict,
    server: str,
    system_stats: dict,
    object_info: dict,
    workflows: list,
    sla_targets: dict,
    server_mode: dict | None = None,
) -> dict:
    """`workflow` is the first workflow of the run (PromptUser's, or the first book page's);
    `workflows` lists every workflow the run uses; `server_mode` is what the server runs in
    (protocol/server_contract.py: version, cache, assets, DynamicVRAM, attention), for compare."""
    import locust

    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "scenario": options.get("scenario_name"),
        "parameters": options,
        "reported_parameters": [*LOCUST_REPORTED, *REPORTED],  # the report's parameter table, in order
        "sla": sla_targets,
        "server": server,
        "comfyui": {
            "system_stats": system_stats,
            "node_packs": node_packs(object_info),
            "server_mode": server_mode or {},
        },
        "models": model_files(server, workflows),
        "workflow": describe_workflow(workflows[0]),
        "workflows": [describe_workflow(wf) for wf in workflows],
        "suite": {"commit": git_commit(), "locust": locust.__version__},
        "host": {
            "hostname": socket.gethostname(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": __import__("os").cpu_count(),
        },
        "gpu": nvidia_driver() or {"gpus": [d.get("name") for d in system_stats.get("devices", [])], "driver": None},
    }
