"""The harness audit of every run: each prompt submitted, each page and each book started ends in
exactly one record. A run that lost or doubled a record cannot be trusted, whatever its SLA
figures say."""

from __future__ import annotations

import time
from collections import Counter

from comfyload.common.records import by_kind


def audit(records: list[dict]) -> dict:
    return audit_kinds(by_kind(records))


def audit_kinds(kinds: dict) -> dict:
    """Compares the `audit` events' submitted counts (one per process) with the prompt records.
    A worker that died (a `worker.lost` event from the master) wrote no audit: what it had
    submitted by its last record is taken from that event, and the run is named as incomplete."""
    events = [r for r in kinds.get("event", []) if r.get("name") == "audit"]
    lost = [r for r in kinds.get("event", []) if r.get("name") == "worker.lost"]
    prompts = kinds.get("prompt", [])
    ids = [r.get("prompt_id") for r in prompts]
    by_worker = Counter(r.get("worker") for r in prompts) if lost else {}
    # a set finds that nothing is doubled faster than counting a million ids (a 24-hour soak)
    duplicated = sorted(pid for pid, n in Counter(ids).items() if n > 1) if len(set(ids)) < len(ids) else []
    lost_workers = [
        {
            "worker": e["worker"],
            "at": e["ts"],
            "recorded": by_worker.get(e["worker"], 0),
            "unrecorded": max(0, (e.get("submitted") or 0) - by_worker.get(e["worker"], 0)),
        }
        for e in lost
    ]
    submitted = (
        sum(e.get("submitted", 0) for e in events) + sum(w["recorded"] + w["unrecorded"] for w in lost_workers)
        if events or lost
        else None
    )
    recorded = len(ids)
    # ok: True / False / None when no process wrote its audit (the harness did not finish)
    if duplicated or lost_workers:
        ok = False
    else:
        ok = None if submitted is None else submitted == recorded
    if duplicated:
        problem = f"{len(duplicated)} prompt(s) recorded more than once"
    elif lost_workers:
        problem = "; ".join(
            f"worker {w['worker']} lost at {time.strftime('%H:%M:%S', time.localtime(w['at']))} "
            f"({w['unrecorded']} prompt(s) in flight unrecorded)"
            for w in lost_workers
        )
    elif submitted is None:
        problem = "not audited: no audit event (the harness did not finish; records may be missing)"
    elif submitted != recorded:
        problem = f"{submitted} prompts submitted but {recorded} recorded"
    else:
        problem = None
    units = {}
    for kind in ("page", "book"):  # started (by the harness's own count) against recorded
        started = sum(e.get(f"{kind}s_started", 0) for e in events) if events else None
        recorded_units = len(kinds.get(kind, []))
        keys = Counter((r.get("book_id"), r.get("page")) for r in kinds.get(kind, []))
        doubled = sum(n > 1 for n in keys.values())
        units[f"{kind}s"] = {"started": started, "recorded": recorded_units, "doubled": doubled}
        if (started is not None and started != recorded_units and not lost_workers) or doubled:
            ok = False
            problem = "; ".join(
                p
                for p in (
                    problem,
                    f"{started} {kind}s started but {recorded_units} recorded"
                    + (f" ({doubled} recorded twice)" if doubled else ""),
                )
                if p
            )
    return {
        "submitted": submitted,
        "recorded": recorded,
        "duplicated": duplicated[:20],
        "lost_workers": lost_workers,
        **units,
        "ok": ok,
        "problem": problem,
    }
