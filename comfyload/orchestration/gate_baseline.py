"""The gate's baseline: where archived baselines live, the newest one, archiving a run as one, and
the baseline's workload rebuilt from its meta.json so the candidate is offered exactly the same
(workflow files checked by sha256)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from comfyload.common.errors import UserError
from comfyload.common.paths import REPO
from comfyload.common.recorder import METRICS_FILE
from comfyload.workloads import options as opts

BASELINES_DIR = Path(os.environ.get("COMFY_BASELINES_DIR") or REPO / "observability" / "baselines")
ANCHORS = ("workflows/", "scenarios/")  # a recorded path is found again in this checkout by its tail


def is_run_folder(path: Path) -> bool:
    return (path / "meta.json").is_file() and (path / METRICS_FILE).is_file()


def read_meta(run_dir: Path) -> dict:
    try:
        meta = json.loads((run_dir / "meta.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UserError(f"{run_dir / 'meta.json'}: not readable JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise UserError(f"{run_dir / 'meta.json'}: not a JSON object")
    return meta


def newest_baseline(root: Path) -> Path | None:
    """The newest archived run under root (`make archive` layout: <date>/<run id>/), by run id
    (runs/<YYYYmmdd-HHMMSS>-<scenario>: the name sorts by time)."""
    if not root.is_dir():
        return None
    found = [p.parent for p in root.glob("*/meta.json")] + [p.parent for p in root.glob("*/*/meta.json")]
    found = [p for p in found if is_run_folder(p)]
    return max(found, key=lambda p: (p.name, str(p))) if found else None


def archive(run_dir: Path, root: Path) -> Path:
    """Copies a run folder (its report and README.md included) to <root>/<date>/<run id>/."""
    if not (run_dir / "README.md").is_file():
        from reports.build import build

        build(run_dir)
    target = root / time.strftime("%Y-%m-%d") / run_dir.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(run_dir, target, dirs_exist_ok=True)
    return target


def relocate(value):
    """A path recorded in another checkout (or machine), found again here by its tail under
    workflows/ or scenarios/; names (not paths) pass unchanged."""
    if not isinstance(value, str) or not value or "/" not in value or Path(value).exists():
        return value
    for anchor in ANCHORS:
        if anchor in value:
            candidate = REPO / (anchor + value.rsplit(anchor, 1)[1])
            if candidate.exists():
                return str(candidate)
    if value.endswith("sla.yaml") and (REPO / "sla.yaml").is_file():
        return str(REPO / "sla.yaml")
    return value


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def workflow_changes(meta: dict) -> list[str]:
    """Each workflow of the baseline whose file here is missing or differs (by sha256)."""
    changed = []
    for wf in meta.get("workflows") or [meta.get("workflow") or {}]:
        recorded = wf.get("file")
        if not recorded:
            continue
        path = Path(relocate(recorded))
        if not path.is_file():
            changed.append(f"{wf.get('name')} (missing: {recorded})")
        elif sha256_of(path) != wf.get("sha256"):
            changed.append(
                f"{wf.get('name')} ({path}: sha256 {sha256_of(path)[:12]}, baseline {str(wf.get('sha256'))[:12]})"
            )
    return changed


def replay_settings(meta: dict) -> dict:
    """The baseline's workload and load as command-line-level values (so no env var alters them):
    every ComfyLoad option it recorded, its users, spawn rate, run time and user class."""
    params = meta.get("parameters")
    if not isinstance(params, dict):
        raise UserError("the baseline's meta.json has no parameters: it cannot be replayed")
    classes = params.get("user_classes") or []
    if not classes or params.get("num_users") is None or params.get("run_time") is None:
        raise UserError("the baseline's meta.json lacks its user class, users or run time: it cannot be replayed")
    values = {o.name: relocate(params[o.name]) for o in opts.WRAPPER_OPTIONS if o.name in params}
    return {
        **values,
        "users": int(params["num_users"]),
        "spawn_rate": params.get("spawn_rate"),
        "run_time": f"{int(params['run_time'])}s",
        "user_class": classes[0],
    }
