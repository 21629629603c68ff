"""The files a workflow spec's `inputs:` uploads to the server under test. A shared workflow and
spec pair must never copy a user's other files to a (maybe remote) ComfyUI, so an input must
resolve, symlinks followed, to a file inside the spec's own folder, and be an image ComfyUI's
LoadImage opens (checked by its header with Pillow, not by its name)."""

from __future__ import annotations

from pathlib import Path

from comfyload.common.errors import UserError

# What ComfyUI's LoadImage opens (through Pillow) and what /upload/image is for.
IMAGE_FORMATS = ("PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP", "TIFF")


def contained_input(spec: Path, name) -> Path:
    """The resolved path of `inputs[].file`, or UserError when it leaves the spec's folder."""
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"{spec}: inputs file must be a path relative to the spec, not {name!r}")
    folder = spec.parent.resolve()
    try:
        path = (folder / name).resolve()
    except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop, a NUL byte
        raise UserError(f"{spec}: input file {name!r} cannot be resolved ({exc})") from None
    if not path.is_relative_to(folder):
        raise UserError(
            f"{spec}: input file {name!r} resolves to {path}, outside the spec's folder {folder}; "
            "inputs must stay inside it (nothing else is uploaded)"
        )
    if not path.is_file():
        raise UserError(f"{spec}: input file not found: {path}")
    check_image(spec, path)
    return path


def check_image(spec: Path, path: Path) -> str:
    """The image format of `path` by its header, or UserError when ComfyUI would not open it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            kind = image.format
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        kind = None
    if kind not in IMAGE_FORMATS:
        raise UserError(
            f"{spec}: input file {path.name} is not an image ComfyUI accepts "
            f"({', '.join(IMAGE_FORMATS)}); refusing to upload it"
        )
    return kind
