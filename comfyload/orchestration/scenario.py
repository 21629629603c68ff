"""A scenario file and the settings of a run: each option from the command line, else its env var,
else the scenario, else its default; every value checked before any load starts."""

from __future__ import annotations

import os
import re
from pathlib import Path

from comfyload.analysis.fault_checks import unknown_checks
from comfyload.common.errors import UserError
from comfyload.common.paths import REPO
from comfyload.common.yamlfile import read_mapping, refuse_unknown_keys
from comfyload.orchestration.faults import parse_fault_plan
from comfyload.workloads import options as opts

SCENARIOS_DIR = REPO / "scenarios"


SCENARIO_RUN_KEYS = {"description", "user_class", "users", "spawn_rate", "run_time", "shape", "fault"}


FAULTS_DIR = SCENARIOS_DIR / "faults"


SHAPES_DIR = SCENARIOS_DIR / "shapes"


def _env_int(name):
    value = os.environ.get(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise UserError(f"{name} must be an integer, not {value!r}") from None


def load_scenario(name_or_path: str) -> dict:
    path = Path(name_or_path)
    if not path.suffix:
        path = next(
            (d / f"{name_or_path}.yaml" for d in (SCENARIOS_DIR, FAULTS_DIR) if (d / f"{name_or_path}.yaml").is_file()),
            SCENARIOS_DIR / f"{name_or_path}.yaml",
        )
    if not path.is_file():
        known = ", ".join(sorted(p.stem for d in (SCENARIOS_DIR, FAULTS_DIR) for p in d.glob("*.yaml")))
        raise UserError(f"scenario not found: {name_or_path} (known: {known})")
    scenario = read_mapping(path, "scenario")
    refuse_unknown_keys(scenario, SCENARIO_RUN_KEYS | {o.name for o in opts.WRAPPER_OPTIONS}, path)
    scenario["_name"] = path.stem
    scenario["_path"] = str(path)
    if "fault" in scenario:
        scenario["_fault"] = parse_fault_plan(scenario["fault"], str(path))
        unknown = unknown_checks(scenario["_fault"].checks)
        if unknown:
            raise UserError(f"{path}: unknown check(s) {', '.join(unknown)}")
    return scenario


def in_scenario(scenario: dict, key: str) -> str:
    """Where a scenario gives `key`: its path and line (the YAML loader keeps it)."""
    line = scenario.line_of(key) if hasattr(scenario, "line_of") else None
    return f"{scenario.get('_path', 'scenario')}{f' line {line}' if line else ''}"


def resolve_settings(args, scenario: dict) -> dict:
    """Each option: command line, else env var, else scenario, else default; a bad value is named
    by where it came from (the flag, the env var, or the scenario file and line)."""
    values, sources = {}, {}
    for o in opts.WRAPPER_OPTIONS:
        cli = getattr(args, o.name, None)
        if cli is not None:
            values[o.name], sources[o.name] = cli, o.flag
        elif o.env in os.environ:
            values[o.name] = opts.coerce(o.name, os.environ[o.env], f"env {o.env}")
            sources[o.name] = f"env {o.env}"
        elif o.name in scenario:
            where = in_scenario(scenario, o.name)
            values[o.name], sources[o.name] = opts.coerce(o.name, scenario[o.name], where), f"{where}: {o.name}"
        else:
            values[o.name] = o.default
    opts.check_values(values, sources)
    users, source = concurrency(args, scenario)
    if not isinstance(users, int) or isinstance(users, bool) or users < 1:
        raise UserError(f"{source} must be an integer >= 1, not {users!r}")
    check_writable(getattr(args, "output", None))
    if getattr(args, "workers", 0) < 0:
        raise UserError(f"--workers must be 0 (no master/worker split) or more, not {args.workers}")
    run_time, source = first_given(
        (args.run_time, "--run-time"),
        (os.environ.get("COMFY_RUN_TIME"), "env COMFY_RUN_TIME"),
        (scenario.get("run_time"), f"{in_scenario(scenario, 'run_time')}: run_time"),
        ("60s", "--run-time"),
    )
    check_timespan(str(run_time), source)
    user_class, source = first_given(
        (args.user_class, "--user-class"),
        (os.environ.get("COMFY_USER_CLASS"), "env COMFY_USER_CLASS"),
        (scenario.get("user_class"), f"{in_scenario(scenario, 'user_class')}: user_class"),
        ("PromptUser", "--user-class"),
    )
    if user_class not in opts.USER_CLASSES:
        raise UserError(f"{source} must be one of {', '.join(opts.USER_CLASSES)}, not {user_class!r}")
    shape = scenario.get("shape")
    if shape is not None and not (SHAPES_DIR / f"{shape}.py").is_file():
        known = ", ".join(sorted(p.stem for p in SHAPES_DIR.glob("*.py")))
        raise UserError(f"{in_scenario(scenario, 'shape')}: unknown shape {shape!r} (known: {known})")
    spawn_rate = args.spawn_rate or scenario.get("spawn_rate") or users
    return {
        **values,
        "_sources": sources,  # option name -> where its value came from (flag, env var, scenario line)
        "users": users,
        "run_time": str(run_time),
        "user_class": user_class,
        "spawn_rate": spawn_rate,
        "shape": shape,
    }


def first_given(*candidates) -> tuple:
    """(value, its source) of the first candidate given (not None or empty)."""
    return next((value, source) for value, source in candidates if value not in (None, ""))


def concurrency(args, scenario: dict) -> tuple:
    """(users, where the value came from): --concurrency, else COMFY_CONCURRENCY, else the scenario."""
    if args.users is not None:
        return args.users, "--concurrency"
    if os.environ.get("COMFY_CONCURRENCY"):
        return _env_int("COMFY_CONCURRENCY"), "env COMFY_CONCURRENCY"
    return scenario.get("users", 1), f"{in_scenario(scenario, 'users')}: users"


def check_writable(output: str | None) -> None:
    """--output is checked before the run, not found unwritable after it; nothing is created
    here (a refused run leaves no folders behind): the nearest folder that exists must be one
    we can write in, and nothing on the way may be a file."""
    if not output:
        return
    path = Path(output).resolve()
    if path.is_dir():
        raise UserError(f"--output {output}: is a directory, not a file path")
    missing = [p for p in path.parents if not p.exists()]
    created, existed = [], path.exists()
    try:  # tried for real (permissions alone miss /proc and read-only mounts), then undone
        for folder in reversed(missing):
            folder.mkdir()
            created.append(folder)
        with open(path, "a"):
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise UserError(f"--output {output}: cannot be written ({exc.strerror or exc})") from None
    finally:
        for folder in reversed(created):
            folder.rmdir()


TIMESPAN = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def check_timespan(text: str, source: str = "--run-time") -> None:
    """Locust's duration syntax (90, 90s, 10m, 1h30m); checked here because importing Locust
    in this process would monkey-patch it after `ssl` is loaded."""
    match = TIMESPAN.match(text.strip())
    if (
        not text.strip()
        or not match
        or not any(match.groups())
        or sum(int(g or 0) * k for g, k in zip(match.groups(), (3600, 60, 1))) <= 0
    ):
        raise UserError(f"{source} must be a duration like 90s, 10m or 1h30m, not {text!r}")


def absolute_if_file(value):
    """Locust runs in the checkout: a path the user gave relative to their own working directory
    (the runbook's `--workflow ../samples/x.json`) is handed over absolute."""
    path = Path(str(value))
    return str(path.resolve()) if value and not path.is_absolute() and path.is_file() else value
