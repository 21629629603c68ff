"""`comfyload run|ui|faults|report|compare|gate|profile|probe|server` (also `python -m comfyload`):
what `make baseline` and `make ui` call.

Resolves the target (COMFY_HOST, else a local ComfyUI it starts and stops), checks every input
before any load starts, runs Locust with the run folder wired in, then prints the summary and
the SLA verdict. Exit codes: 0 SLA met, 1 SLA breached, 2 bad input, 3 the harness failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from comfyload.common.cli_exit import run_cli
from comfyload.common.errors import UserError
from comfyload.common.one_line_parser import OneLineParser
from comfyload.orchestration import gate, run_outputs
from comfyload.orchestration.before_load import check_bindable, check_port
from comfyload.orchestration.check_command import add_check_parser, run_check
from comfyload.orchestration.drills import format_drill_table
from comfyload.orchestration.plan_command import add_plan_parser, run_plan
from comfyload.orchestration.run import execute
from comfyload.orchestration.scenario import FAULTS_DIR, _env_int, load_scenario, resolve_settings
from comfyload.orchestration.server import add_target_arguments, comfy_target, exit_on_sigterm
from comfyload.orchestration.verdict import EXIT_BREACH, EXIT_PASS
from comfyload.protocol.host_url import host_from
from comfyload.workloads import options as opts
from comfyload.workloads.preflight import plan_run


def delegated_commands() -> dict:
    """Subcommands that are other parts' own command lines, each with its own --help."""
    from comfyload.orchestration import profile, server  # profile loads pandas (reports.figures): only when asked
    from gpu_probe.__main__ import main as probe_main
    from reports.cli import main as reports_main

    return {
        "report": (
            lambda argv: reports_main(["build", *argv]),
            "(re)build a run folder's report: comfyload report RUN_DIR",
        ),
        "compare": (
            lambda argv: reports_main(["compare", *argv]),
            "compare run B with baseline A; exit 1 on regression",
        ),
        "gate": (
            lambda argv: gate.main(argv, build_parser),
            "release gate: replay the archived baseline, quick drills, GO / NO-GO (exit 0 / 1)",
        ),
        "profile": (profile.main, "each workflow alone, one request at a time, N times (per-node profile)"),
        "probe": (probe_main, "the GPU probe on its own: serve (sidecar) or record to NDJSON"),
        "server": (server.main, "only the local ComfyUI, in the foreground (Ctrl-C stops it)"),
    }


RUN_HELP = "run a scenario headless, print the summary and the SLA verdict (exit 1 on breach)"
UI_HELP = "open the Locust web UI against the same target (Ctrl-C stops)"
FAULTS_HELP = "run the fault drills of scenarios/faults/ and print scenario, expected, observed, verdict"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="comfyload",
        description="ComfyLoad: load tests for ComfyUI servers. Without COMFY_HOST/--host it installs "
        "(once) and starts the pinned local ComfyUI 0.3.75 on 127.0.0.1, and stops it after.",
        epilog="Every ComfyLoad option is also an env var and a scenario key; anything after `--` goes to Locust.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_run_parser(sub)
    add_ui_parser(sub)
    add_faults_parser(sub)
    add_delegated_parsers(sub)
    add_plan_parser(sub)
    add_check_parser(sub)
    return parser


def add_run_parser(sub) -> None:
    p = sub.add_parser("run", help=RUN_HELP, description=RUN_HELP)
    add_scenario_argument(p)
    add_load_arguments(p)
    add_locust_passthrough(p)


def add_ui_parser(sub) -> None:
    p = sub.add_parser("ui", help=UI_HELP, description=UI_HELP)
    add_scenario_argument(p)
    add_load_arguments(p)
    p.add_argument(
        "--shapes",
        action="store_true",
        help="offer every shape (StepRamp, Spike, Soak) and user class in the web UI (Locust's --class-picker)",
    )
    p.add_argument(
        "--web-host",
        default="127.0.0.1",
        help="address of the web UI (default 127.0.0.1; see docs/safety.md for --web-login on a shared host)",
    )
    p.add_argument("--web-port", type=int, default=8089, help="port of the web UI (default 8089)")
    add_locust_passthrough(p)


def add_faults_parser(sub) -> None:
    p = sub.add_parser("faults", help=FAULTS_HELP, description=FAULTS_HELP)
    p.add_argument("--only", help="comma list of drills (default: all)")
    add_load_arguments(p)
    add_locust_passthrough(p)


def add_delegated_parsers(sub) -> None:
    """Named in `comfyload --help`; their own parsers read their arguments (see `main`)."""
    for name, (_main, text) in delegated_commands().items():
        sub.add_parser(name, help=text, description=text + f" (see `comfyload {name} --help`)", add_help=False)


def add_scenario_argument(p) -> None:
    p.add_argument(
        "--scenario",
        default=os.environ.get("SCENARIO", "smoke"),
        help="scenario name in scenarios/ or scenarios/faults/, or a YAML path (default smoke: "
        "cpu_smoke, runs on any ComfyUI; `baseline` is SD1.5 books on ComfyLoad's checkpoint; env SCENARIO)",
    )


def add_load_arguments(p) -> None:
    """What run, ui and faults share: the target, the load, where the summary goes, and every
    option of the table."""
    p.add_argument(
        "--workers",
        type=int,
        default=_env_int("WORKERS") or 0,
        help="distributed on this host: a Locust master and N worker processes (env WORKERS)",
    )
    p.add_argument("--crash-cmd", help="crash drill against a remote/container server: command that kills it")
    p.add_argument("--restart-cmd", help="crash drill: command that starts it again (health: /system_stats)")
    p.add_argument("--toxiproxy", help="network drill: use the toxiproxy at this API URL instead of the built-in proxy")
    add_target_arguments(
        p,
        "ComfyUI server URL (env COMFY_HOST; --server is the runbook's spelling); default: start the local one",
        _env_int("COMFY_PORT") or 8188,
        "port for the local ComfyUI (default 8188, env COMFY_PORT)",
    )
    p.add_argument(
        "--concurrency",
        "-u",
        "--users",
        dest="users",
        type=int,
        default=None,
        help="simultaneous users (closed loop: prompts in flight) (env COMFY_CONCURRENCY)",
    )
    p.add_argument(
        "--user-class",
        choices=opts.USER_CLASSES,
        default=None,  # COMFY_USER_CLASS is read (and named when wrong) by resolve_settings
        help="PromptUser (one prompt per task), BookUser (a user is a book), OpenLoopUser (arrivals "
        "on a schedule) (env COMFY_USER_CLASS; default: the scenario's)",
    )
    p.add_argument(
        "--spawn-rate", "-r", type=float, default=None, help="users started per second (default: all at once)"
    )
    p.add_argument(
        "--run-time",
        "-t",
        default=None,  # COMFY_RUN_TIME is read (and named when wrong) by resolve_settings
        help="upper bound on the run, e.g. 90s, 10m (env COMFY_RUN_TIME)",
    )
    p.add_argument(
        "--outputs",
        default=os.environ.get("COMFY_OUTPUTS", "keep"),
        type=run_outputs.check_mode,
        help="the local ComfyUI's output images of this run: keep (moved into runs/<id>/outputs/, "
        "default) or delete (env COMFY_OUTPUTS)",
    )
    p.add_argument(
        "--output",
        "-o",
        default=os.environ.get("COMFY_OUTPUT"),
        help="also write the summary JSON here (it is always in runs/<id>/summary.json)",
    )
    add_option_table(p)


def add_option_table(p) -> None:
    """Each option of the table as a flag; None when not given, so resolve_settings can tell a
    flag from its env var, the scenario and the default."""
    for o in opts.WRAPPER_OPTIONS:
        if o.flag_only:
            p.add_argument(
                o.flag,
                *o.aliases,
                dest=o.name,
                action="store_const",
                const=True,
                default=None,
                help=f"{o.help} (env {o.env})",
            )
        else:
            p.add_argument(
                o.flag,
                *o.aliases,
                dest=o.name,
                type=o.type,
                default=None,
                help=f"{o.help} (env {o.env}; default {o.default})",
            )


def add_locust_passthrough(p) -> None:
    p.add_argument("locust_args", nargs=argparse.REMAINDER, help="after `--`: extra Locust options")


def main(argv=None) -> int:
    exit_on_sigterm()
    argv = sys.argv[1:] if argv is None else list(argv)
    delegated = delegated_commands()
    if argv and argv[0] in delegated:
        return delegated[argv[0]][0](argv[1:])
    return run_cli(lambda: run_command(argv))


def run_command(argv: list) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "plan":
        return run_plan(args)
    args.host = host_from(args.host)  # parsed before use, naming --host or env COMFY_HOST
    check_ports(args, argv)
    if args.command == "check":
        return run_check(args)
    if args.command == "faults":
        return run_fault_suite(args)
    scenario = load_scenario(args.scenario)
    settings = resolve_settings(args, scenario)
    plan = plan_run(settings, {settings["user_class"]})
    with comfy_target(args) as (host, server):
        return execute(args, scenario, settings, plan, host, server)[0]


def check_ports(args, argv: list) -> None:
    """The local ComfyUI's port and the web UI's, in range (and the web UI's free) before load."""
    given = any(a == "--port" or a.startswith("--port=") for a in argv)
    if args.port is not None and not args.host:
        check_port(args.port, "--port" if given or not os.environ.get("COMFY_PORT") else "env COMFY_PORT")
    if args.command == "ui":
        check_bindable(args.web_host, args.web_port, "--web-port")


def run_fault_suite(args) -> int:
    """`make faults`: every drill in scenarios/faults/ (or --only), one run each, one table."""
    names = sorted(p.stem for p in FAULTS_DIR.glob("*.yaml"))
    if args.only:
        unknown = set(args.only.split(",")) - set(names)
        if unknown:
            raise UserError(f"--only: unknown drill(s) {', '.join(sorted(unknown))} (known: {', '.join(names)})")
        names = [n for n in names if n in args.only.split(",")]
    planned = []
    for name in names:  # every drill checked before any runs
        scenario = load_scenario(name)
        settings = resolve_settings(args, scenario)
        planned.append((scenario, settings, plan_run(settings, {settings["user_class"]})))
    verdicts = []
    with comfy_target(args) as (host, server):
        for scenario, settings, plan in planned:
            print(f"\n=== drill: {scenario['_name']} ===", flush=True)
            _code, run_dir = execute(args, scenario, settings, plan, host, server)
            path = run_dir / "fault_verdict.json"
            verdicts.append(
                json.loads(path.read_text())
                if path.exists()
                else {
                    "scenario": scenario["_name"],
                    "expected": "",
                    "passed": False,
                    "checks": [
                        {"check": "run", "expected": "the drill runs", "observed": "no verdict", "passed": False}
                    ],
                }
            )
    print("\n== Fault drills ==")
    print(format_drill_table(verdicts))
    return EXIT_PASS if all(v["passed"] for v in verdicts) else EXIT_BREACH
