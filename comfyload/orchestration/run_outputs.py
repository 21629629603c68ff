"""The images a run makes on the local ComfyUI. ComfyUI writes every render into its output
folder (.comfyui/<port>/output), which would otherwise pile up outside any run folder; after a
run they are moved into the run's own `outputs/` (`--outputs keep`, the default) or deleted
(`--outputs delete`), and one line says which and where. A remote server's outputs stay there."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from comfyload.common.errors import UserError

MODES = ("keep", "delete")
FOLDER = "outputs"


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise UserError(f"--outputs must be keep or delete, not {mode!r}")
    return mode


def files_in(folder: Path) -> set[Path]:
    """Every file under `folder`, relative to it (links are files ComfyUI did not make: skipped)."""
    if not folder.is_dir():
        return set()
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file() and not p.is_symlink()}


def settle(output_dir: Path, before: set[Path], run_dir: Path, mode: str) -> tuple[int, Path | None]:
    """Moves (keep) or deletes (delete) the files that appeared in `output_dir` since `before`;
    returns (how many, where they are now or None)."""
    new = sorted(files_in(output_dir) - before)
    target = Path(run_dir) / FOLDER
    for rel in new:
        source = output_dir / rel
        if mode == "delete":
            source.unlink(missing_ok=True)
            continue
        destination = target / rel
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(os.fspath(source), os.fspath(destination))
    return len(new), (target if mode == "keep" and new else None)


def report(server, host: str, count: int, where: Path | None, mode: str) -> None:
    if server is None:
        print(
            f"[comfyload] images stay in the output folder of {host}",
            file=sys.stderr,
            flush=True,
        )
    elif mode == "delete":
        print(
            f"[comfyload] outputs: {count} files deleted from {server.work_dir / 'output'} (--outputs delete)",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(
            f"[comfyload] outputs: {count} files moved to {where or '(none made)'} "
            "(--outputs delete removes them instead)",
            file=sys.stderr,
            flush=True,
        )
