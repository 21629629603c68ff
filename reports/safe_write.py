"""Writes into a run folder that never follow a link. A run folder can come from anywhere (an
archive, a colleague, a CI artefact): a `report.html` symlink must not make `reports build`
overwrite the file it points to, nor a `charts/` symlink put PNGs in another folder. Each file is
written to a temporary file beside it and renamed over the name, which replaces a link (or a
hard-linked file) instead of writing through it."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from comfyload.common.errors import UserError


def real_dir(path) -> Path:
    """`path` as a real folder: a symlink there is removed (not followed) and a folder made."""
    path = Path(path)
    try:
        if path.is_symlink():
            path.unlink()
        elif path.exists() and not path.is_dir():
            raise UserError(f"{path}: expected a folder, found a file")
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot make the folder {path}: {exc.strerror or exc}") from None
    return path


def write_bytes(path, data: bytes) -> Path:
    """Writes `data` as a fresh file named `path` (its folder must be real: see real_dir)."""
    path = Path(path)
    if path.parent.is_symlink():
        raise UserError(f"{path.parent}: is a link; refusing to write through it")
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(temp, 0o644)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # a folder where our file belongs: ours to replace
        os.replace(temp, path)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def write_text(path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))
