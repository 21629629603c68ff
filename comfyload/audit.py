"""The harness audit of every run: each prompt submitted ends in exactly one record. A run that
lost or doubled a record cannot be trusted, whatever its SLA figures say."""
from __future__ import annotations

from collections import Counter


def audit(records: list[dict]) -> dict:
    """Compares the `audit` events' submitted counts (one per process) with the prompt records."""
    events = [r for r in records if r.get("kind") == "event" and r.get("name") == "audit"]
    ids = Counter(r.get("prompt_id") for r in records if r.get("kind") == "prompt")
    duplicated = sorted(pid for pid, n in ids.items() if n > 1)
    submitted = sum(e.get("submitted", 0) for e in events) if events else None
    recorded = sum(ids.values())
    # ok: True / False / None when no process wrote its audit (the harness did not finish)
    ok = None if submitted is None and not duplicated else (submitted in (None, recorded) and not duplicated)
    if duplicated:
        problem = f"{len(duplicated)} prompt(s) recorded more than once"
    elif submitted is None:
        problem = "not audited: no audit event (the harness did not finish; records may be missing)"
    elif submitted != recorded:
        problem = f"{submitted} prompts submitted but {recorded} recorded"
    else:
        problem = None
    return {"submitted": submitted, "recorded": recorded, "duplicated": duplicated[:20], "ok": ok, "problem": problem}
