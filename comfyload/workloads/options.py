"""ComfyLoad's options, declared once. The same table feeds Locust's parser (so each option is a
CLI flag, an env var and a web UI field), the `python -m comfyload` wrapper, and scenario YAML
keys (`per_prompt_timeout: 60` in a scenario is `--per-prompt-timeout 60`). Everything else about
an option is a field of its entry: its allowed values, whether it names a file, whether only the
wrapper sets it, whether the report shows it, whether the web UI's form offers it; `docs/options.md`
is generated from it (`python -m comfyload.workloads.option_reference`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from comfyload.common.errors import UserError
from comfyload.protocol.fleet import POLICIES
from comfyload.workloads.open_loop import MODELS


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
    choices: tuple = ()  # the values allowed, when it is one of a few names
    path: bool = False  # a file the user names from their own directory: Locust is handed it absolute
    locust_only: bool = (
        False  # on Locust's command line only, set there by the wrapper: no wrapper flag or scenario key
    )
    in_report: bool = False  # a row of the report's parameter table
    on_form: bool = True  # a field of the web UI's start form

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
        path=True,
        in_report=True,
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
        in_report=True,
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
        in_report=True,
    ),
    Option(
        "completion",
        "COMFY_COMPLETION",
        "ws",
        str,
        "how completion is detected: ws (websocket, default) or poll:<seconds> (poll /history)",
        in_report=True,
    ),
    Option(
        "download",
        "COMFY_DOWNLOAD",
        False,
        bool,
        "download every output via /view; the latency then ends at the rendered file",
        flag_only=True,
        in_report=True,
    ),
    Option(
        "ws_per_user",
        "COMFY_WS_PER_USER",
        False,
        bool,
        "one websocket per user (like a fleet of browsers) instead of one per worker process",
        flag_only=True,
        in_report=True,
    ),
    Option("sla", "COMFY_SLA", "sla.yaml", str, "SLA targets file", path=True, in_report=True),
    Option("scenario_name", "COMFY_SCENARIO", "adhoc", str, "scenario name recorded in meta.json", locust_only=True),
    Option(
        "run_dir",
        "COMFY_RUN_DIR",
        "",
        str,
        "run folder for records (default: runs/<timestamp>-<scenario>)",
        locust_only=True,
        on_form=False,  # each test started on the web UI gets its own run folder
    ),
    Option(
        "seed",
        "COMFY_SEED",
        0,
        int,
        "seed for per-request parameters (0 = random)",
        _non_negative,
        ">= 0",
        in_report=True,
    ),
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
        path=True,
    ),
    Option(
        "route",
        "COMFY_ROUTE",
        "round_robin",
        str,
        "fleet routing: round_robin or least_queue (per prompt), sticky (all pages of a book on one server)",
        choices=POLICIES,
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
    Option(
        "submit_retry_s",
        "COMFY_SUBMIT_RETRY_S",
        10.0,
        float,
        "seconds a single server that refuses POST /prompt (down, restarting) is retried before the "
        "prompt counts as lost (a fleet gives up after 2 s: the next prompt goes to another server)",
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
        in_report=True,
    ),
    Option(
        "book_profiles", "COMFY_BOOK_PROFILES", "workflows/books.yaml", str, "BookUser: the profiles file", path=True
    ),
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
        "arrival",
        "COMFY_ARRIVAL",
        "poisson",
        str,
        "OpenLoopUser: arrival process: poisson, constant or gamma (bursty)",
        choices=MODELS,
    ),
    Option(
        "arrival_unit",
        "COMFY_ARRIVAL_UNIT",
        "prompt",
        str,
        "OpenLoopUser: what arrives: prompt or book",
        choices=("prompt", "book"),
    ),
    Option("arrival_rate", "COMFY_ARRIVAL_RATE", 1.0, float, "OpenLoopUser: arrivals per second", _positive, "> 0"),
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
        path=True,
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
    Option(
        "ramp_start",
        "COMFY_RAMP_START",
        2,
        int,
        "StepRamp: users (books) at the first step",
        _positive,
        "> 0",
        in_report=True,
    ),
    Option("ramp_step", "COMFY_RAMP_STEP", 1, int, "StepRamp: users added per step", _positive, "> 0", in_report=True),
    Option(
        "ramp_hold",
        "COMFY_RAMP_HOLD",
        60.0,
        float,
        "StepRamp: seconds each step is held",
        _positive,
        "> 0",
        in_report=True,
    ),
    Option(
        "ramp_max",
        "COMFY_RAMP_MAX",
        50,
        int,
        "StepRamp: never go above this many users",
        _positive,
        "> 0",
        in_report=True,
    ),
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
    # the Prometheus endpoint (harness/prometheus_exporter.py), bound once when Locust starts: a form
    # field could not move it
    Option(
        "metrics_port",
        "COMFY_METRICS_PORT",
        9464,
        int,
        "Prometheus /metrics on this port, on the master or a local run (0 = off; 9464: the port "
        "Prometheus' registry lists for OpenTelemetry exporters)",
        lambda v: 0 <= v <= 65535,
        "a port, 0 to 65535",
        on_form=False,
    ),
    Option(
        "metrics_host",
        "COMFY_METRICS_HOST",
        "127.0.0.1",
        str,
        "address the Prometheus endpoint binds (0.0.0.0 lets a Prometheus on another host scrape it)",
        on_form=False,
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
        on_form=False,
    ),
]
BY_NAME = {o.name: o for o in OPTIONS}


WRAPPER_OPTIONS = tuple(o for o in OPTIONS if not o.locust_only)  # the wrapper's flags and the scenario keys
REPORTED = tuple(o.name for o in OPTIONS if o.in_report)
USER_CLASSES = ("PromptUser", "BookUser", "OpenLoopUser")  # the user classes a run can be given
# The form opens on what a tester sets first; the other fields follow in the table's order.
FORM_FIRST = ("workflow", "user_class", "book_profile", "jobs")
FORM_ORDER = FORM_FIRST + tuple(o.name for o in OPTIONS if o.on_form and o.name not in FORM_FIRST)


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
        action.include_in_web_ui = action.dest in FORM_ORDER
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
        if o and o.choices and value not in o.choices:
            raise UserError(f"{where(name)} must be one of {', '.join(o.choices)}, not {value!r}")
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
