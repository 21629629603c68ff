"""Per-node time (the bottleneck nodes): folded in one prompt at a time, so a 24-hour run's
node_ms dicts never have to stay in memory (only their numbers do)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np


class NodeTimes:
    """`node_ms` of successful prompts by (workflow, node id, class)."""

    def __init__(self):
        # per key, each run's ms in record order: one list append per node while reading (a
        # million prompts), summed once in table()
        self._ms = defaultdict(list)

    def add(self, record: dict) -> None:
        if record.get("outcome") != "success":
            return
        classes = record.get("node_classes") or {}
        workflow = record.get("workflow", "")
        ms_of = self._ms
        for node, ms in (record.get("node_ms") or {}).items():
            ms_of[(workflow, node, classes.get(node, "?"))].append(ms)

    def table(self, workflow: str | None = None) -> list[dict]:
        """Rows sorted by total time, slowest first; `share_pct` is of all node time shown."""
        keys = [k for k in self._ms if workflow is None or k[0] == workflow]
        # cumsum adds left to right, as `total += ms` did, so the totals are the same to the last bit
        total = {k: float(np.cumsum(np.asarray(self._ms[k], dtype=float))[-1]) for k in keys}
        grand = sum(total[k] for k in keys) or 1.0
        rows = [
            {
                "workflow": k[0],
                "node": k[1],
                "class_type": k[2],
                "runs": len(self._ms[k]),
                "total_ms": total[k],
                "mean_ms": total[k] / len(self._ms[k]),
                "share_pct": 100.0 * total[k] / grand,
            }
            for k in keys
        ]
        return sorted(rows, key=lambda r: r["total_ms"], reverse=True)
