"""Where the locally made SD1.5 checkpoint lives: a folder of the per-user cache keyed by its
recipe, `<cache>/models/sd15-random-<hash>/checkpoints/`. The local ComfyUI is given that folder
(server.py) and the maker writes into it (sd15_checkpoint.py)."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

CHECKPOINT_NAME = "comfyload_sd15_random.safetensors"
# Changing any of these makes a new folder (the old one stays until the cache is cleared).
RECIPE = {"architecture": "sd15", "weights": "torch-default-init", "seed": 1234, "dtype": "float16", "version": 1}


def cache_root() -> Path:
    """The same per-user cache as scripts/install_comfyui.sh."""
    if os.environ.get("COMFYLOAD_CACHE"):
        return Path(os.environ["COMFYLOAD_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "comfyload"


def recipe_hash() -> str:
    return hashlib.sha256(json.dumps(RECIPE, sort_keys=True).encode()).hexdigest()[:12]


def models_dir() -> Path:
    """The model folder ComfyUI is pointed at (holds checkpoints/)."""
    return cache_root() / "models" / f"sd15-random-{recipe_hash()}"


def checkpoint_path() -> Path:
    return models_dir() / "checkpoints" / CHECKPOINT_NAME


def extra_model_paths_yaml(models: Path | None = None) -> str:
    """ComfyUI's --extra-model-paths-config text that adds the made checkpoint's folder."""
    return f"comfyload_models:\n  checkpoints: {(models or models_dir()) / 'checkpoints'}\n"
