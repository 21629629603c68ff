"""What changed between two runs' environments (meta.json): GPU, driver, PyTorch/CUDA, the
devices ComfyUI reports, ComfyUI's version and server mode, custom node packs, model files,
workflow files by sha256, the host. The first question after "is it slower?". The suite's own
commit is left out: it is not the environment under test (a weekly gate runs a newer ComfyLoad
against an older baseline)."""

from __future__ import annotations

from dataclasses import dataclass

from comfyload.protocol.server_contract import COMPARED_MODE_KEYS


@dataclass(frozen=True)
class Change:
    what: str
    baseline: str
    candidate: str


def _get(meta, *path):
    for key in path:
        if not isinstance(meta, dict):
            return None
        meta = meta.get(key)
    return meta


def _text(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "none"
    return str(value)


def devices(meta: dict) -> list[str]:
    found = _get(meta, "comfyui", "system_stats", "devices") or []
    return [
        f"{d.get('name')} ({d.get('type')}"
        + (f", {d['vram_total'] / 2**30:.1f} GiB" if isinstance(d.get("vram_total"), (int, float)) else "")
        + ")"
        for d in found
        if isinstance(d, dict)
    ]


def custom_packs(meta: dict) -> dict:
    """Custom node pack -> its node class count (a pack that gained or lost nodes shows too)."""
    packs = _get(meta, "comfyui", "node_packs") or {}
    modules = packs.get("modules") if isinstance(packs.get("modules"), dict) else {}
    return {p: modules.get(p) for p in packs.get("custom_node_packs") or []}


def models(meta: dict) -> dict:
    """folder/name -> size in bytes, from meta's `models` (comfyload/protocol/model_files.py)."""
    entries = meta.get("models") if isinstance(meta.get("models"), list) else []
    return {f"{m.get('folder')}/{m.get('name')}": m.get("size") for m in entries if isinstance(m, dict)}


def workflows(meta: dict) -> dict:
    entries = meta.get("workflows") if isinstance(meta.get("workflows"), list) else []
    if not entries and isinstance(meta.get("workflow"), dict):
        entries = [meta["workflow"]]
    return {str(w.get("name")): w.get("sha256") for w in entries if isinstance(w, dict)}


SCALARS = (
    ("GPU", lambda m: _get(m, "gpu", "gpus")),
    ("driver", lambda m: _get(m, "gpu", "driver")),
    ("PyTorch (CUDA)", lambda m: _get(m, "comfyui", "system_stats", "system", "pytorch_version")),
    ("ComfyUI devices", devices),
    ("ComfyUI version", lambda m: _get(m, "comfyui", "system_stats", "system", "comfyui_version")),
    ("ComfyUI Python", lambda m: _get(m, "comfyui", "system_stats", "system", "python_version")),
    ("node classes", lambda m: _get(m, "comfyui", "node_packs", "classes")),
    ("host", lambda m: _get(m, "host", "platform")),
    ("CPUs", lambda m: _get(m, "host", "cpu_count")),
)


def dict_changes(label: str, a: dict, b: dict, show=_text) -> list[Change]:
    """One change per key added, removed or different."""
    return [
        Change(f"{label} {key}", "absent" if key not in a else show(a[key]), "absent" if key not in b else show(b[key]))
        for key in sorted(set(a) | set(b), key=str)
        if a.get(key) != b.get(key) or (key in a) != (key in b)
    ]


def _size(value) -> str:
    return "size unknown" if value is None else f"{value:,} bytes"


def _sha(value) -> str:
    return "–" if not value else str(value)[:12]


def compared_mode(mode) -> dict:
    """A server mode (protocol/server_contract.py) on the keys two runs are compared on."""
    return {k: mode[k] for k in COMPARED_MODE_KEYS if k in mode} if isinstance(mode, dict) else {}


def what_changed(meta_a: dict, meta_b: dict) -> list[Change]:
    """Every environment difference between baseline A and candidate B; [] when nothing changed."""
    changes = []
    for label, get in SCALARS:
        a, b = get(meta_a), get(meta_b)
        if a != b:
            changes.append(Change(label, _text(a), _text(b)))
    changes += dict_changes("custom node pack", custom_packs(meta_a), custom_packs(meta_b), lambda n: f"{n} classes")
    changes += dict_changes("model file", models(meta_a), models(meta_b), _size)
    changes += dict_changes("workflow", workflows(meta_a), workflows(meta_b), _sha)
    mode_a, mode_b = _get(meta_a, "comfyui", "server_mode"), _get(meta_b, "comfyui", "server_mode")
    if isinstance(mode_a, dict) or isinstance(mode_b, dict):
        changes += dict_changes("server mode", compared_mode(mode_a), compared_mode(mode_b))
    return changes


def change_rows(changes: list[Change]) -> list[tuple]:
    return [(c.what, c.baseline, c.candidate) for c in changes]


def format_changes(changes: list[Change]) -> list[str]:
    if not changes:
        return ["what changed: nothing (GPU, driver, PyTorch, ComfyUI, node packs, models, workflows)"]
    return ["what changed:"] + [f"  {c.what}: {c.baseline} → {c.candidate}" for c in changes]
