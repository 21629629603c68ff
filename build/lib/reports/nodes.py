"""Per-node time (the bottleneck nodes): folded in one prompt at a time, so a 24-hour run's
node_ms never has to stay in memory."""
from __future__ import annotations

from collections import defaultdict


class NodeTimes:
    """Sums `node_ms` of successful prompts by (workflow, node id, class)."""

    def __init__(self):
        self._total = defaultdict(float)
        self._count = defaultdict(int)

    def add(self, record: dict) -> None:
        if record.get("outcome") != "success":
            return
        classes = record.get("node_classes") or {}
        workflow = record.get("workflow", "")
        for node, ms in (record.get("node_ms") or {}).items():
            key = (workflow, node, classes.get(node, "?"))
            self._total[key] += ms
            self._count[key] += 1

    def table(self, workflow: str | None = None) -> list[dict]:
        """Rows sorted by total time, slowest first; `share_pct` is of all node time shown."""
        keys = [k for k in self._total if workflow is None or k[0] == workflow]
        grand = sum(self._total[k] for k in keys) or 1.0
        rows = [{"workflow": k[0], "node": k[1], "class_type": k[2], "runs": self._count[k],
                 "total_ms": self._total[k], "mean_ms": self._total[k] / self._count[k],
                 "share_pct": 100.0 * self._total[k] / grand} for k in keys]
        return sorted(rows, key=lambda r: r["total_ms"], reverse=True)
