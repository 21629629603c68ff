"""What meta.json says about the run, as labelled rows, for the report and the baseline README."""

from __future__ import annotations


def _get(meta: dict, *path, default=None):
    for key in path:
        if not isinstance(meta, dict) or key not in meta:
            return default
        meta = meta[key]
    return meta


def run_metadata(meta: dict) -> list[tuple[str, str]]:
    system = _get(meta, "comfyui", "system_stats", "system", default={}) or {}
    devices = _get(meta, "comfyui", "system_stats", "devices", default=[]) or []
    host = meta.get("host") or {}
    gpu = meta.get("gpu") or {}
    packs = _get(meta, "comfyui", "node_packs", default={}) or {}
    workflow = meta.get("workflow") or {}
    suite = meta.get("suite") or {}
    ram = system.get("ram_total")
    rows = [
        ("created", meta.get("created")),
        ("scenario", meta.get("scenario")),
        ("server", meta.get("server")),
        (
            "hardware",
            f"{host.get('hostname', '?')}: {host.get('platform', '?')}, {host.get('cpu_count', '?')} CPUs"
            + (f", {ram / 2**30:.1f} GiB RAM" if isinstance(ram, (int, float)) else ""),
        ),
        ("GPU", ", ".join(str(g) for g in gpu.get("gpus") or []) or "none reported"),
        ("driver", gpu.get("driver") or "not reported"),
        ("ComfyUI devices", ", ".join(f"{d.get('name')} ({d.get('type')})" for d in devices) or "not reported"),
        ("ComfyUI version", system.get("comfyui_version")),
        ("ComfyUI mode", server_mode_text(_get(meta, "comfyui", "server_mode", default=None))),
        ("PyTorch", system.get("pytorch_version")),
        (
            "node packs",
            f"{packs.get('classes', '?')} node classes; custom: "
            + (", ".join(packs.get("custom_node_packs") or []) or "none"),
        ),
        ("workflow", f"{workflow.get('name')} ({workflow.get('file')})" if workflow else None),
        ("workflow sha256", workflow.get("sha256")),
        ("suite commit", suite.get("commit")),
        ("Locust", suite.get("locust")),
    ]
    return [(label, "–" if value is None else str(value)) for label, value in rows]


def server_mode_text(mode: dict | None) -> str | None:
    """The server's measuring mode in one line (protocol/server_contract.py); None before it was recorded."""
    if not mode:
        return None

    def shown(value, on="on", off="off"):
        return "not known" if value is None else on if value else off

    return (
        f"cache {mode.get('cache') or 'not known'}, assets {shown(mode.get('assets'))}, "
        f"DynamicVRAM {shown(mode.get('dynamic_vram'))}, attention {mode.get('attention') or 'not known'}"
        + (", --cpu" if mode.get("cpu") else "")
        + f"; /api/jobs {shown(mode.get('jobs_api'), 'used', 'absent (/history, /interrupt)')}"
    )


def harness_parameters(meta: dict) -> list[tuple[str, str]]:
    """The parameters the run marked for its report (meta.json `reported_parameters`, written from the
    option table by comfyload/harness/meta.py); a run folder from before that key shows them all."""
    parameters = meta.get("parameters") if isinstance(meta.get("parameters"), dict) else {}
    named = meta.get("reported_parameters")
    keys = [k for k in named if isinstance(k, str)] if isinstance(named, list) else list(parameters)
    return [(k, str(parameters[k])) for k in keys if k in parameters and parameters[k] is not None]
