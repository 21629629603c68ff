"""What the server knows about one prompt: its finished entry (the /history shape), whether its
queue holds it, the newest entries at once. From /api/jobs where the server has it, else /history
and /queue. Each question answers None when the server cannot be asked; nothing here raises."""

from __future__ import annotations

import requests

from comfyload.protocol.server_contract import (
    QUEUED_JOB_STATUSES,
    TERMINAL_JOB_STATUSES,
    history_entry_from_job,
    queue_holds,
)


def history_entry(client, prompt_id: str):
    try:
        return client.get_json(f"/history/{prompt_id}").get(prompt_id)
    except (requests.RequestException, ValueError):
        return None


def job(client, prompt_id: str):
    """GET /api/jobs/{id}: the job, {} when the server does not know it, None when it cannot be asked."""
    try:
        response = client.http.get(client.url(f"/api/jobs/{prompt_id}"), timeout=client.http_timeout)
        if response.status_code == 404:
            return {}
        response.raise_for_status()
        return response.json()
    except (requests.RequestException, ValueError):
        return None


def server_entry(client, prompt_id: str):
    """The finished prompt as a /history entry: from /api/jobs where the server has it (one call
    that also says queued or unknown), else /history. None while it is not finished."""
    if not client.contract.jobs_api:
        return history_entry(client, prompt_id)
    found = job(client, prompt_id)
    return history_entry_from_job(found) if found and found.get("status") in TERMINAL_JOB_STATUSES else None


def known_to_queue(client, prompt_id: str):
    """True/False whether the server's queue holds the prompt; None when it cannot be asked."""
    if client.contract.jobs_api:
        found = job(client, prompt_id)
        return None if found is None else found.get("status") in QUEUED_JOB_STATUSES
    try:
        queue = client.get_json("/queue")
    except (requests.RequestException, ValueError):
        return None
    return queue_holds(queue, prompt_id)


def recent_history(client, max_items: int) -> dict:
    """prompt id -> entry for the newest `max_items` prompts (/api/jobs where present, else /history)."""
    try:
        if client.contract.jobs_api:
            answer = client.get_json(f"/api/jobs?limit={max_items}&sort_by=created_at&sort_order=desc")
            return {item["id"]: history_entry_from_job(item) for item in answer.get("jobs", []) if "id" in item}
        return client.get_json(f"/history?max_items={max_items}") or {}
    except (requests.RequestException, ValueError, AttributeError):
        return {}
