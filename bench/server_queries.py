"""What the bench asks its ComfyUI besides the load: finished entries, the queue, a clean slate."""

from __future__ import annotations

import requests

from bench.plan import log


def history_entries(url: str, prompt_ids) -> dict:
    """Server-side entries for these prompts: one GET /history?max_items=N, then any missing
    one on its own."""
    ids = list(prompt_ids)
    session = requests.Session()
    try:
        entries = session.get(f"{url}/history?max_items={len(ids) + 200}", timeout=120).json()
        out = {pid: entries[pid] for pid in ids if pid in entries}
        for pid in ids:
            if pid not in out:
                entry = session.get(f"{url}/history/{pid}", timeout=30).json().get(pid)
                if entry is not None:
                    out[pid] = entry
        return out
    finally:
        session.close()


def queued_count(url: str) -> int:
    queue = requests.get(url + "/queue", timeout=30).json()
    return len(queue.get("queue_pending", [])) + len(queue.get("queue_running", []))


def clear_server(url: str) -> None:
    for path, body in (("/queue", {"clear": True}), ("/interrupt", {})):
        try:
            requests.post(url + path, json=body, timeout=30)
        except requests.RequestException as exc:
            log(f"could not POST {path}: {exc}")
