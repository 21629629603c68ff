"""The locally made SD1.5 checkpoint: how it is made (once).

No checkpoint can be downloaded here, so scripts/make_sd15_checkpoint.py builds one with random
weights from a fixed seed, using a ComfyUI's own model classes, run by that ComfyUI's Python (this
suite's virtualenv has no torch). It lands in the per-user cache in a folder keyed by its recipe,
`<cache>/models/sd15-random-<hash>/checkpoints/` (comfyload/orchestration/sd15_paths.py), which the
local ComfyUI is given as an extra model folder. Made once: later calls find the file and return at once.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from comfyload.common.cli_exit import run_cli
from comfyload.common.errors import UserError
from comfyload.common.paths import REPO
from comfyload.orchestration.sd15_paths import RECIPE, checkpoint_path
from comfyload.orchestration.server import comfyui_command

MAKER = REPO / "scripts" / "make_sd15_checkpoint.py"


def ensure_checkpoint(python: str, comfyui_code: Path) -> Path:
    """Makes the checkpoint with `python` over the ComfyUI tree at `comfyui_code` unless it is
    already there; returns its path. Prints progress lines on stderr."""
    path = checkpoint_path()
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    say(f"making the SD1.5 test checkpoint (random weights, about 2 GB, once) into {path.parent}")
    started = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(comfyui_code), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [python, str(MAKER), str(path), json.dumps(RECIPE, sort_keys=True)],
        cwd=str(comfyui_code),
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    if proc.returncode != 0 or not path.is_file():
        raise UserError(f"making the SD1.5 test checkpoint failed (exit {proc.returncode}); see the messages above")
    made = json.loads(proc.stdout.strip().splitlines()[-1])
    made["wall_seconds"] = round(time.monotonic() - started, 1)
    (path.parent.parent / "made.json").write_text(json.dumps({"recipe": RECIPE, **made}, indent=1) + "\n")
    return path


def say(text: str) -> None:
    print(f"[sd15-checkpoint] {text}", file=sys.stderr, flush=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m comfyload.orchestration.sd15_checkpoint",
        description="Make the SD1.5 test checkpoint (once) with the local ComfyUI's Python.",
    )
    parser.add_argument("--path", action="store_true", help="only print where the checkpoint is (or will be)")
    args = parser.parse_args(argv)
    if args.path:
        print(checkpoint_path())
        return 0
    return run_cli(make_with_the_local_comfyui)


def make_with_the_local_comfyui() -> int:
    base, code, _pinned = comfyui_command()  # installs the pinned ComfyUI when needed
    path = ensure_checkpoint(base[0], code)
    say(f"using {path} ({path.stat().st_size / 2**30:.2f} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
