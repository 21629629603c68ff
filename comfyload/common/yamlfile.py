"""Reading the suite's YAML files (scenarios, workflow specs, book profiles, SLA): one clear
error line for a missing file, bad YAML or a file that is not a mapping."""

from __future__ import annotations

from pathlib import Path

import yaml

from comfyload.common.errors import UserError


def read_mapping(path, what: str = "file", missing_ok: bool = False, empty_ok: bool = True) -> dict:
    """The file as a dict. `empty_ok=False`: an empty file is an error (an SLA file that says
    nothing must not silently mean the defaults)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if missing_ok:
            return {}
        raise UserError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a directory, not a file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not a UTF-8 text file (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML{yaml_position(exc)}: {yaml_problem(exc)}") from None
    except RecursionError:
        raise UserError(f"{path}: invalid YAML: nested too deeply") from None
    if data is None:
        if empty_ok:
            return {}
        raise UserError(f"{path}: the {what} is empty")
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a mapping of keys, not {type(data).__name__}")
    return dict(data)


def yaml_position(exc) -> str:
    """ " at line L column C" (1-based) where PyYAML knows where the problem is."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    return "" if mark is None else f" at line {mark.line + 1} column {mark.column + 1}"


def yaml_problem(exc) -> str:
    problem = getattr(exc, "problem", None)
    context = getattr(exc, "context", None)
    text = " ".join(p for p in (context, problem) if p) or str(exc)
    return " ".join(text.split())
