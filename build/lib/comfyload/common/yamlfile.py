"""Reading the suite's YAML files (scenarios, workflow specs, book profiles, SLA): one clear
error line for a missing file, bad YAML or a file that is not a mapping."""
from __future__ import annotations

from pathlib import Path

import yaml

from comfyload.common.errors import UserError


def read_mapping(path, what: str = "file", missing_ok: bool = False) -> dict:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise UserError(f"{what} not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping")
    return dict(data)
