"""Why a latency-split figure (queue wait, execution) is missing or partial, from the records.

Queue wait is the server's execution_start minus its create_time, execution is execution_end
minus execution_start: all three are server stamps. A ComfyUI that does not stamp one leaves the
figure empty, and an empty figure printed as "-" reads like "nothing waited". ComfyUI 0.3.64 sets
no `create_time` in a prompt's extra_data (its server.py `post_prompt` has none; 0.3.75's
server.py:756 sets it), so every queue wait of a run on it is missing. Each note says which stamp
is absent and on how many of the successes the figure is computed over.
"""

from __future__ import annotations

# figure -> the server stamps it is made of, in the order a missing one is named
STAMPS = {
    "queue_wait_ms": ("create_time", "execution_start"),
    "execution_ms": ("execution_start", "execution_end"),
}

SPLIT_NAMES = (("queue wait", "queue_wait_ms"), ("execution", "execution_ms"))  # as the summary names them

WHY = {
    "create_time": "server gave no create_time (ComfyUI <= 0.3.64 sets none)",
    "execution_start": "the server sent no execution_start message",
    "execution_end": "the server sent no timestamped final status",
}


def split_gaps(successes: list[dict]) -> dict[str, dict]:
    """{figure: {"missing": n, "of": total, "stamp": name, "why": text}} for each latency-split
    figure that some of `successes` (prompt records) cannot give; {} when every figure is whole."""
    gaps = {}
    for figure, stamps in STAMPS.items():
        lacking = [r for r in successes if r.get(figure) is None]
        if not lacking:
            continue
        stamp = next((s for s in stamps if any(r.get(s) is None for r in lacking)), stamps[0])
        gaps[figure] = {"missing": len(lacking), "of": len(successes), "stamp": stamp, "why": WHY[stamp]}
    return gaps


def gap_note(gap: dict | None) -> str:
    """One phrase for a console line or a report cell: '' when nothing is missing."""
    if not gap:
        return ""
    share = "all" if gap["missing"] == gap["of"] else f"{gap['missing']} of"
    return f"none for {share} {gap['of']} successes: {gap['why']}"
