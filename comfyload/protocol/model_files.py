"""The model files a run's workflows use, as the server has them: name, size and modification
time, so "what changed" between two runs can name a replaced checkpoint. A workflow names its
models in its spec (`models: [{folder, name}]`); ComfyUI 0.3.75 lists a model folder with sizes at
GET /experiment/models/{folder} (app/model_manager.py, ModelFileManager.recursive_search_models_)."""

from __future__ import annotations

import requests

LIST_TIMEOUT_S = 10


def model_files(server: str, workflows: list, timeout: float = LIST_TIMEOUT_S) -> list[dict]:
    """[{folder, name, size, modified}] for every model the workflows name (size None: the server
    did not list it, or has no /experiment/models)."""
    wanted = sorted({(m.get("folder"), m.get("name")) for wf in workflows for m in (wf.models or []) if m.get("name")})
    listings: dict[str, dict] = {}
    found = []
    for folder, name in wanted:
        if folder not in listings:
            listings[folder] = folder_listing(server, folder, timeout)
        entry = listings[folder].get(name) or {}
        found.append({"folder": folder, "name": name, "size": entry.get("size"), "modified": entry.get("modified")})
    return found


def folder_listing(server: str, folder: str | None, timeout: float) -> dict:
    """name -> entry of one model folder; {} when the server cannot say."""
    if not folder:
        return {}
    try:
        answer = requests.get(f"{server.rstrip('/')}/experiment/models/{folder}", timeout=timeout)
        entries = answer.json() if answer.status_code == 200 else []
    except (requests.RequestException, ValueError):
        return {}
    if not isinstance(entries, list):
        return {}
    return {e["name"]: e for e in entries if isinstance(e, dict) and isinstance(e.get("name"), str)}
