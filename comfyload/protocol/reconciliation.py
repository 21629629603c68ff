"""A prompt's outcome read from the server instead of the socket: poll mode asks /history as the
apps it models do, and a prompt whose socket dropped is reconciled from what the server still
knows: finished (its entry), queued (wait on), or neither (lost)."""

from __future__ import annotations

import time

from comfyload.protocol import prompt_lookup
from comfyload.protocol.prompt_watch import PromptWatch
from comfyload.protocol.results import apply_status_message, server_timings

HISTORY_POLL_S = 0.5  # reconciliation poll after a socket drop
UNREACHABLE_S = 3.0  # an orphaned prompt whose server answers neither /history nor /queue
# this long is lost (the server died with it)


def poll_history(client, watch: PromptWatch, deadline: float, interval: float) -> None:
    """Waits for the prompt to appear in /history. Used by poll mode and to reconcile the
    prompts a dropped socket left in flight: absent from history and queue = lost."""
    result = watch.result
    answered = time.monotonic()  # when the server last answered either question
    # poll mode asks /history as the apps it models do; a reconciliation asks what the server has
    lookup = prompt_lookup.server_entry if watch.orphaned.is_set() else prompt_lookup.history_entry
    while True:
        entry = lookup(client, result.prompt_id)
        if entry is not None:
            result.done_ts = time.time()
            watch.history_written.set()
            fill_from_history(watch, entry)
            return
        queued = prompt_lookup.known_to_queue(client, result.prompt_id) if watch.orphaned.is_set() else None
        if queued is False:
            entry = lookup(client, result.prompt_id)  # it may have finished in between
            if entry is not None:
                continue
            result.done_ts = time.time()
            result.outcome, result.error_type = "lost", "lost"
            result.error_message = "websocket dropped and the server no longer knows the prompt"
            return
        if queued is not None or not watch.orphaned.is_set():
            answered = time.monotonic()
        elif time.monotonic() - answered >= UNREACHABLE_S:
            result.done_ts = time.time()
            result.outcome, result.error_type = "lost", "server_unreachable"
            result.error_message = f"the server stopped answering (no /history or /queue for {UNREACHABLE_S:g} s)"
            return
        if time.monotonic() + interval > deadline:
            return
        time.sleep(interval)


def fill_from_history(watch: PromptWatch, entry: dict | None) -> None:
    """The outcome, outputs and create_time from a /history entry; no final status there = lost."""
    if entry is None:
        return
    result = watch.result
    for event, data in (entry.get("status") or {}).get("messages", []):
        if apply_status_message(result, event, data, watch.prompt_nodes):
            watch.terminal = True
    if not result.outputs:
        for node, output in (entry.get("outputs") or {}).items():
            watch.on_message("executed", {"node": node, "output": output}, 0.0)
    result.create_time = server_timings(entry)["create_time"] or result.create_time
    if not watch.terminal:
        result.outcome, result.error_type = "lost", "no_status"
        result.error_message = "history holds the prompt without a final status"
