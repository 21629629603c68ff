"""ComfyLoad's options, declared once. The same table feeds Locust's parser (so each option is a
CLI flag, an env var and a web UI field), the `python -m comfyload` wrapper, and scenario YAML
keys (`per_prompt_timeout: 60` in a scenario is `--per-prompt-timeout 60`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from comfyload.common.errors import UserError


@dataclass(frozen=True)
class Option:
    name: str  # scenario key and argparse dest, e.g. per_prompt_timeout
    env: str
    default: Any
    type: Callable = str
    help: str = ""
    check: Callable[[Any], bool] | None = None
    must: str = ""  # what `check` demands, for the error line
    flag_only: bool = False  # a boolean switch (store_true)
    aliases: tuple = ()  # other spellings, e.g. the seed runbook's --timeout

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def _positive(v):
    return v > 0


def _non_negative(v):
    return v >= 0


OPTIONS = [
    Option(
        "workflow",
        "COMFY_WORKFLOW",
        "cpu_smoke",
        str,
        "API-format workflow: a name in workflows/ or a path to a .json file",
    ),
    Option(
        "jobs",
        "COMFY_JOBS",
        0,
        int,
        "stop after this many jobs in all: prompts, or books for BookUser and book arrivals "
        "(0 = no limit; --run-time still bounds the run)",
        _non_negative,
        ">= 0",
    ),
    Option(
        "per_prompt_timeout",
        "COMFY_TIMEOUT",
        300.0,
        float,
        "seconds a prompt may take from intended send to result before it is a timeout "
        "(then it is removed from the server's queue)",
        _positive,
        "> 0",
        aliases=("--timeout",),
    ),
    Option(
        "completion",
        "COMFY_COMPLETION",
        "ws",
        str,
        "how completion is detected: ws (websocket, default) or poll:<seconds> (poll /history)",
    ),
    Option(
        "download",
        "COMFY_DOWNLOAD",
        False,
        bool,
        "download every output via /view; the latency then ends at the rendered file",
        flag_only=True,
    ),
    Option(
        "ws_per_user",
        "COMFY_WS_PER_USER",
        False,
        bool,
        "one websocket per user (like a fleet of browsers) instead of one per worker process",
        flag_only=True,
    ),
    Option("sla", "COMFY_SLA", "sla.yaml", str, "SLA targets file"),
    Option("scenario_name", "COMFY_SCENARIO", "adhoc", str, "scenario name recorded in meta.json"),
    Option("run_dir", "COMFY_RUN_DIR", "", str, "run folder for records (default: runs/<timestamp>-<scenario>)"),
    Option("seed", "COMFY_SEED", 0, int, "seed for per-request parameters (0 = random)", _non_negative, ">= 0"),
    Option(
        "inject_sleep",
        "COMFY_INJECT_SLEEP",
        "",
        str,
        "fault drill: add a Sleep node of SECONDS to every prompt sent between START and END seconds "
        "into the run, as START-END:SECONDS (e.g. 20-40:3)",
    ),
    # a fleet of servers
    Option(
        "comfy_hosts",
        "COMFY_HOSTS",
        "",
        str,
        "several ComfyUI servers: a comma list of URLs or a file with one a line (default: --host alone)",
    ),
    Option(
        "route",
        "COMFY_ROUTE",
        "round_robin",
        str,
        "fleet routing: round_robin or least_queue (per prompt), sticky (all pages of a book on one server)",
    ),
    Option(
        "fleet_max_failures",
        "COMFY_FLEET_MAX_FAILURES",
        3,
        int,
        "a server leaves rotation after this many lost prompts in a row",
        _positive,
        "> 0",
    ),
    Option(
        "fleet_probe_s",
        "COMFY_FLEET_PROBE_S",
        5.0,
        float,
        "how often a server out of rotation is probed (/system_stats) to bring it back",
        _positive,
        "> 0",
    ),
    # books (BookUser) and the book app's retry policy
    Option(
        "book_profile",
        "COMFY_BOOK_PROFILE",
        "medium",
        str,
        "BookUser: a profile from the profiles file, or a weighted mix like small:2,medium:1",
    ),
    Option("book_profiles", "COMFY_BOOK_PROFILES", "workflows/books.yaml", str, "BookUser: the profiles file"),
    Option("max_retries", "COMFY_MAX_RETRIES", 3, int, "retries per failed page", _non_negative, ">= 0"),
    Option(
        "retry_backoff_sec",
        "COMFY_RETRY_BACKOFF_SEC",
        "15,45,90",
        str,
        "seconds to wait before retry 1, 2, 3...; the last value repeats",
    ),
    Option(
        "allow_parallel_pages",
        "COMFY_ALLOW_PARALLEL_PAGES",
        False,
        bool,
        "render a book's pages in parallel instead of one after another",
        flag_only=True,
    ),
    # open-loop arrivals (OpenLoopUser)
    Option(
        "arrival", "COMFY_ARRIVAL", "poisson", str, "OpenLoopUser: arrival process: poisson, constant or gamma (bursty)"
    ),
    Option("arrival_rate", "COMFY_ARRIVAL_RATE", 1.0, float, "OpenLoopUser: arrivals per second", _positive, "> 0"),
    Option("arrival_unit", "COMFY_ARRIVAL_UNIT", "prompt", str, "OpenLoopUser: what arrives: prompt or book"),
    Option(
        "max_in_flight",
        "COMFY_MAX_IN_FLIGHT",
        8,
        int,
        "OpenLoopUser: cap on work in flight; arrivals beyond it wait and count as late",
        _positive,
        "> 0",
    ),
    Option(
        "max_backlog",
        "COMFY_MAX_BACKLOG",
        1000,
        int,
        "OpenLoopUser: arrivals waiting beyond this are dropped (counted)",
        _non_negative,
        ">= 0",
    ),
    Option(
        "arrivals_trace",
        "COMFY_ARRIVALS_TRACE",
        "",
        str,
        "OpenLoopUser: replay the arrivals of this file instead of --arrival: a run's comfyui_metrics.ndjson "
        'or NDJSON lines {"ts": seconds, "workflow"|"profile": NAME}',
    ),
    Option("trace_speed", "COMFY_TRACE_SPEED", 1.0, float, "--arrivals-trace: replay k times faster", _positive, "> 0"),
    Option(
        "gamma_cv",
        "COMFY_GAMMA_CV",
        2.0,
        float,
        "gamma arrivals: coefficient of variation of the gaps",
        _positive,
        "> 0",
    ),
    # shapes (scenarios/shapes/*.py)
    Option("ramp_start", "COMFY_RAMP_START", 2, int, "StepRamp: users (books) at the first step", _positive, "> 0"),
    Option("ramp_step", "COMFY_RAMP_STEP", 1, int, "StepRamp: users added per step", _positive, "> 0"),
    Option("ramp_hold", "COMFY_RAMP_HOLD", 60.0, float, "StepRamp: seconds each step is held", _positive, "> 0"),
    Option("ramp_max", "COMFY_RAMP_MAX", 50, int, "StepRamp: never go above this many users", _positive, "> 0"),
    Option(
        "ramp_ci_width",
        "COMFY_RAMP_CI_WIDTH",
        0.1,
        float,
        "AdaptiveRamp: a step holds the completions for a p95 interval this wide in quantile level "
        "(0.1: ~p90..p100), unless its verdict is decided sooner",
        lambda v: 0 < v < 1,
        "between 0 and 1",
    ),
    Option(
        "ramp_confidence",
        "COMFY_RAMP_CONFIDENCE",
        0.9,
        float,
        "AdaptiveRamp: confidence of a step's verdict and of its p95 interval",
        lambda v: 0.5 <= v < 1,
        ">= 0.5 and < 1",
    ),
    Option("spike_users", "COMFY_SPIKE_USERS", 10, int, "Spike: users during the spike", _positive, "> 0"),
    Option("spike_base", "COMFY_SPIKE_BASE", 2, int, "Spike: users before and after", _positive, "> 0"),
    Option("spike_at", "COMFY_SPIKE_AT", 30.0, float, "Spike: seconds into the run", _non_negative, ">= 0"),
    Option("spike_duration", "COMFY_SPIKE_DURATION", 30.0, float, "Spike: seconds the spike lasts", _positive, "> 0"),
    Option("soak_window", "COMFY_SOAK_WINDOW", 600.0, float, "Soak: seconds per drift window", _positive, "> 0"),
    Option(
        "soak_drift_pct",
        "COMFY_SOAK_DRIFT_PCT",
        20.0,
        float,
        "Soak: p95 rise between first and latest window that counts as drift",
        _positive,
        "> 0",
    ),
    # GPU probe (gpu_probe/)
    Option(
        "gpu_probe",
        "COMFY_GPU_PROBE",
        "",
        str,
        "GPU samples from a sidecar (`python -m gpu_probe serve`) at http://HOST:PORT; empty = NVML on "
        "this host, else the target's /system_stats",
    ),
    Option(
        "gpu_interval",
        "COMFY_GPU_INTERVAL",
        1.0,
        float,
        "seconds between GPU samples (10 Hz at most)",
        lambda v: v >= 0.1,
        ">= 0.1",
    ),
    # the Prometheus endpoint (harness/prometheus_exporter.py), bound once when Locust starts
    Option(
        "metrics_port",
        "COMFY_METRICS_PORT",
        9464,
        int,
        "Prometheus /metrics on this port, on the master or a local run (0 = off; 9464: the port "
        "Prometheus' registry lists for OpenTelemetry exporters)",
        lambda v: 0 <= v <= 65535,
        "a port, 0 to 65535",
    ),
    Option(
        "metrics_host",
        "COMFY_METRICS_HOST",
        "127.0.0.1",
        str,
        "address the Prometheus endpoint binds (0.0.0.0 lets a Prometheus on another host scrape it)",
    ),
    Option(
        "metrics_linger",
        "COMFY_METRICS_LINGER",
        60.0,
        float,
        "at the end of a headless run that was being scraped, keep serving the final figures until "
        "one more scrape, at most this many seconds (0 = exit at once)",
        _non_negative,
        ">= 0",
    ),
]
BY_NAME = {o.name: o for o in OPTIONS}


# Options kept off the web UI's start form: each test started there gets its own run folder.
# The metrics endpoint is bound when the process starts: a form field could not move it.
NOT_ON_FORM = ("run_dir", "metrics_port", "metrics_host", "metrics_linger")
USER_CLASSES = ("PromptUser", "BookUser", "OpenLoopUser")


def add_to_locust_parser(parser) -> None:
    """Adds every option to Locust's parser, and to its start form ("Advanced options").

    Locust puts an option on the form only when its own `parser.add_argument` marked it
    (`include_in_web_ui`); an argument group's `add_argument` skips that step, so the group
    (which keeps `--help` tidy) marks each action itself."""
    group = parser.add_argument_group("ComfyLoad")
    actions = [
        group.add_argument(
            "--user-class",
            env_var="COMFY_USER_CLASS",
            choices=USER_CLASSES,
            default=None,
            help="which user class runs (empty: the classes Locust was given)",
        )
    ]
    for o in OPTIONS:
        if o.flag_only:
            action = group.add_argument(
                o.flag, *o.aliases, env_var=o.env, action="store_true", default=o.default, help=o.help
            )
        else:
            action = group.add_argument(o.flag, *o.aliases, env_var=o.env, type=o.type, default=o.default, help=o.help)
        actions.append(action)
    for action in actions:
        action.include_in_web_ui = action.dest not in NOT_ON_FORM
        action.is_secret = action.is_required = action.is_multiple = False


def check_values(values: dict, sources: dict | None = None) -> None:
    """One clear error for the first bad value (types are already converted), named by where it
    came from (`sources`: name -> flag, env var or scenario file and line; default the flag)."""
    sources = sources or {}

    def where(name):
        return sources.get(name, BY_NAME[name].flag)

    for name, value in values.items():
        o = BY_NAME.get(name)
        if o and o.check and not o.check(value):
            raise UserError(f"{where(name)} must be {o.must}, not {value!r}")
    start, top = values.get("ramp_start"), values.get("ramp_max")
    if isinstance(start, int) and isinstance(top, int) and start > top:
        raise UserError(f"{where('ramp_start')} ({start}) must be <= {where('ramp_max')} ({top})")
    base, spike = values.get("spike_base"), values.get("spike_users")
    if isinstance(base, int) and isinstance(spike, int) and base > spike:
        raise UserError(f"{where('spike_base')} ({base}) must be <= {where('spike_users')} ({spike})")


def coerce(name: str, value, source: str):
    """Converts a scenario/env value to the option's type, naming the source on failure."""
    o = BY_NAME[name]
    if o.flag_only:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off", ""):
            return False
        raise UserError(f"{source}: {name} must be true or false, not {value!r}")
    try:
        return o.type(value)
    except (TypeError, ValueError):
        raise UserError(f"{source}: {name} must be {o.type.__name__}, not {value!r}") from None
