"""Where the checkout's own files are: workflows/, scenarios/, sla.yaml, runs/, locustfile.py."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def repo_path(path) -> Path:
    """A relative path that is not under the working directory is looked up in the checkout
    (`sla.yaml`, `scenarios/faults/sla/...` work from anywhere)."""
    path = Path(path)
    return path if path.is_absolute() or path.exists() else REPO / path
