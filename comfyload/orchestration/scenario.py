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


USER_CLASSES = ("PromptUser", "BookUser", "OpenLoopUser")


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
    refuse_unknown_keys(scenario, SCENARIO_RUN_KEYS | set(opts.BY_NAME) - {"run_dir", "scenario_name"}, path)
    scenario["_name"] = path.stem
    scenario["_path"] = str(path)
    if "fault" in scenario:
        scenario["_fault"] = parse_fault_plan(scenario["fault"], str(path))
        unknown = unknown_checks(scenario["_fault"].checks)
        if unknown:
            raise UserError(f"{path}: unknown check(s) {', '.join(unknown)}")
    return scenario


def resolve_settings(args, scenario: dict) -> dict:
    """Each option: command line, else env var, else scenario, else default."""
    values = {}
    for o in opts.OPTIONS:
        if o.name in ("run_dir", "scenario_name"):
            continue
        cli = getattr(args, o.name, None)
        if cli is not None:
            values[o.name] = cli
        elif o.env in os.environ:
            values[o.name] = opts.coerce(o.name, os.environ[o.env], f"env {o.env}")
        elif o.name in scenario:
            values[o.name] = opts.coerce(o.name, scenario[o.name], scenario["_path"])
        else:
            values[o.name] = o.default
    users, source = concurrency(args, scenario)
    if not isinstance(users, int) or isinstance(users, bool) or users < 1:
        raise UserError(f"{source} must be an integer >= 1, not {users!r}")
    check_writable(getattr(args, "output", None))
    if getattr(args, "workers", 0) < 0:
        raise UserError(f"--workers must be 0 (no master/worker split) or more, not {args.workers}")
    run_time = args.run_time or scenario.get("run_time", "60s")
    check_timespan(str(run_time))
    user_class = args.user_class or scenario.get("user_class", "PromptUser")
    if user_class not in USER_CLASSES:
        raise UserError(f"{scenario['_path']}: user_class must be one of {', '.join(USER_CLASSES)}, not {user_class!r}")
    shape = scenario.get("shape")
    if shape is not None and not (SHAPES_DIR / f"{shape}.py").is_file():
        known = ", ".join(sorted(p.stem for p in SHAPES_DIR.glob("*.py")))
        raise UserError(f"{scenario['_path']}: unknown shape {shape!r} (known: {known})")
    spawn_rate = args.spawn_rate or scenario.get("spawn_rate") or users
    return {
        **values,
        "users": users,
        "run_time": str(run_time),
        "user_class": user_class,
        "spawn_rate": spawn_rate,
        "shape": shape,
    }


def concurrency(args, scenario: dict) -> tuple:
    """(users, where the value came from): --concurrency, else COMFY_CONCURRENCY, else the scenario."""
    if args.users is not None:
        return args.users, "--concurrency"
    if os.environ.get("COMFY_CONCURRENCY"):
        return _env_int("COMFY_CONCURRENCY"), "env COMFY_CONCURRENCY"
    return scenario.get("users", 1), f"{scenario.get('_path', 'scenario')}: users"


def check_writable(output: str | None) -> None:
    """--output is checked before the run, not found unwritable after it."""
    if not output:
        return
    parent = Path(output).resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output {output}: cannot create {parent}: {exc.strerror}") from None
    if not os.access(parent, os.W_OK) or Path(output).is_dir():
        raise UserError(f"--output {output}: not a writable file path")


TIMESPAN = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s?)?$")


def check_timespan(text: str) -> None:
    """Locust's duration syntax (90, 90s, 10m, 1h30m); checked here because importing Locust
    in this process would monkey-patch it after `ssl` is loaded."""
    match = TIMESPAN.match(text.strip())
    if (
        not text.strip()
        or not match
        or not any(match.groups())
        or sum(int(g or 0) * k for g, k in zip(match.groups(), (3600, 60, 1))) <= 0
    ):
        raise UserError(f"--run-time must be a duration like 90s, 10m or 1h30m, not {text!r}")


PATH_OPTIONS = ("workflow", "sla", "book_profiles", "comfy_hosts")


def absolute_if_file(value):
    """Locust runs in the checkout: a path the user gave relative to their own working directory
    (the runbook's `--workflow ../samples/x.json`) is handed over absolute."""
    path = Path(str(value))
    return str(path.resolve()) if value and not path.is_absolute() and path.is_file() else value
