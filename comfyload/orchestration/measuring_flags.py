"""The start flags ComfyLoad chooses when it starts a ComfyUI itself, so that what it measures is
the server's work and not its caches or background jobs (a COMFY_HOST server is measured as it is;
its mode is recorded either way: protocol/server_contract.py).

- `--cache-classic`: in 0.3.75 and 0.38.1 alike (`comfy/cli_args.py`); 0.38.1 otherwise defaults to
  the RAM-pressure cache, whose reuse of earlier results shortens executions and fills RAM.
- `--disable-assets` (0.38.x, `comfy/cli_args.py` @03294572): the assets system scans and hashes
  every output on the server during load, and exits at start where its database packages are
  missing (`main.py` @02018c7e). 0.3.75 has no such flag and exits on an unknown one.
- `--disable-dynamic-vram` (0.38.x): estimate-based model loading, as in 0.3.75.

A flag is passed only where the checkout's own `comfy/cli_args.py` declares it (an unknown flag
makes ComfyUI exit at start).
"""

from __future__ import annotations

from pathlib import Path

CACHE_FLAGS = ("--cache-classic", "--cache-lru", "--cache-none", "--cache-ram", "--high-ram")
WHERE_DECLARED = ("--disable-assets", "--disable-dynamic-vram")


def measuring_flags(code: Path, extra_args: list[str]) -> list[str]:
    """The flags to add to a ComfyUI started from `code`; a cache flag of the user's own wins."""
    try:
        declared = (code / "comfy" / "cli_args.py").read_text(errors="replace")
    except OSError:
        declared = ""
    given = {arg.split("=", 1)[0] for arg in extra_args}
    wanted = [flag for flag in WHERE_DECLARED if flag not in given]
    if not given & set(CACHE_FLAGS):
        wanted.insert(0, "--cache-classic")
    return [flag for flag in wanted if f'"{flag}"' in declared]
