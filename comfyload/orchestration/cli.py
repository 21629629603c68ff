"""`comfyload run|ui|faults|report|compare|profile|probe|server` (also `python -m comfyload`):
what `make baseline` and `make ui` call.

Resolves the target (COMFY_HOST, else a local ComfyUI it starts and stops), checks every input
before any load starts, runs Locust with the run folder wired in, then prints the summary and
the SLA verdict. Exit codes: 0 SLA met, 1 SLA breached, 2 bad input, 3 the harness failed.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from comfyload.analysis.fault_checks import run_checks, unknown_checks
from comfyload.analysis.sla import load_sla
from comfyload.analysis.summary import format_summary, summarise
from comfyload.common.errors import UserError
from comfyload.common.one_line_parser import OneLineParser
from comfyload.common.paths import REPO
from comfyload.common.processes import wait_or_stop
from comfyload.common.recorder import RUNS_ROOT, RunRecorder, new_run_dir, read_records
from comfyload.common.yamlfile import read_mapping
from comfyload.orchestration import run_outputs
from comfyload.orchestration.faults import FaultSchedule, HookCrash, LocalCrash, make_proxy, parse_fault_plan
from comfyload.orchestration.plan_command import add_plan_parser, run_plan
from comfyload.orchestration.server import DeathWatch, LocalComfyUI, exit_on_sigterm, free_port
from comfyload.protocol.client import ComfyClient
from comfyload.protocol.fleet import parse_hosts
from comfyload.workloads import options as opts
from comfyload.workloads.preflight import check_server, plan_run

SCENARIOS_DIR = REPO / "scenarios"
SCENARIO_RUN_KEYS = {"description", "user_class", "users", "spawn_rate", "run_time", "shape", "fault"}
FAULTS_DIR = SCENARIOS_DIR / "faults"
USER_CLASSES = ("PromptUser", "BookUser", "OpenLoopUser")
SHAPES_DIR = SCENARIOS_DIR / "shapes"
EXIT_PASS, EXIT_BREACH, EXIT_USER_ERROR, EXIT_HARNESS = 0, 1, 2, 3
STOP_GRACE_S = 5  # after --run-time, work in flight gets this long before it is cut off (recorded `cut_off`)


def delegated_commands() -> dict:
    """Subcommands that are other parts' own command lines, each with its own --help."""
    from comfyload.orchestration import profile, server
    from gpu_probe.__main__ import main as probe_main
    from reports.cli import main as reports_main
    return {"report": (lambda argv: reports_main(["build", *argv]), "(re)build a run folder's report: comfyload report RUN_DIR"),
            "compare": (lambda argv: reports_main(["compare", *argv]), "compare run B with baseline A; exit 1 on regression"),
            "profile": (profile.main, "each workflow alone, one request at a time, N times (per-node profile)"),
            "probe": (probe_main, "the GPU probe on its own: serve (sidecar) or record to NDJSON"),
            "server": (server.main, "only the local ComfyUI, in the foreground (Ctrl-C stops it)")}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="comfyload",
        description="ComfyLoad: load tests for ComfyUI servers. Without COMFY_HOST/--host it installs "
                    "(once) and starts the pinned local ComfyUI 0.3.75 on 127.0.0.1, and stops it after.",
        epilog="Every ComfyLoad option is also an env var and a scenario key; anything after `--` goes to Locust.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "run a scenario headless, print the summary and the SLA verdict (exit 1 on breach)"),
                       ("ui", "open the Locust web UI against the same target (Ctrl-C stops)"),
                       ("faults", "run the fault drills of scenarios/faults/ and print scenario, expected, observed, verdict")):
        p = sub.add_parser(name, help=text, description=text)
        if name == "faults":
            p.add_argument("--only", help="comma list of drills (default: all)")
        else:
            p.add_argument("--scenario", default=os.environ.get("SCENARIO", "baseline"),
                           help="scenario name in scenarios/ or scenarios/faults/, or a YAML path (default baseline; env SCENARIO)")
        p.add_argument("--workers", type=int, default=_env_int("WORKERS") or 0,
                       help="distributed on this host: a Locust master and N worker processes (env WORKERS)")
        p.add_argument("--crash-cmd", help="crash drill against a remote/container server: command that kills it")
        p.add_argument("--restart-cmd", help="crash drill: command that starts it again (health: /system_stats)")
        p.add_argument("--toxiproxy", help="network drill: use the toxiproxy at this API URL instead of the built-in proxy")
        p.add_argument("--host", "--server", default=os.environ.get("COMFY_HOST") or None,
                       help="ComfyUI server URL (env COMFY_HOST; --server is the runbook's spelling); default: start the local one")
        p.add_argument("--port", type=int, default=_env_int("COMFY_PORT") or 8188,
                       help="port for the local ComfyUI (default 8188, env COMFY_PORT)")
        p.add_argument("--concurrency", "-u", "--users", dest="users", type=int, default=None,
                       help="simultaneous users (closed loop: prompts in flight) (env COMFY_CONCURRENCY)")
        p.add_argument("--user-class", choices=USER_CLASSES, default=os.environ.get("COMFY_USER_CLASS"),
                       help="PromptUser (one prompt per task), BookUser (a user is a book), OpenLoopUser (arrivals "
                            "on a schedule) (env COMFY_USER_CLASS; default: the scenario's)")
        p.add_argument("--spawn-rate", "-r", type=float, default=None, help="users started per second (default: all at once)")
        p.add_argument("--run-time", "-t", default=os.environ.get("COMFY_RUN_TIME"),
                       help="upper bound on the run, e.g. 90s, 10m (env COMFY_RUN_TIME)")
        p.add_argument("--outputs", default=os.environ.get("COMFY_OUTPUTS", "keep"), type=run_outputs.check_mode,
                       help="the local ComfyUI's output images of this run: keep (moved into runs/<id>/outputs/, "
                            "default) or delete (env COMFY_OUTPUTS)")
        p.add_argument("--output", "-o", default=os.environ.get("COMFY_OUTPUT"),
                       help="also write the summary JSON here (it is always in runs/<id>/summary.json)")
        for o in opts.OPTIONS:
            if o.name in ("run_dir", "scenario_name"):
                continue
            if o.flag_only:
                p.add_argument(o.flag, *o.aliases, dest=o.name, action="store_const", const=True, default=None, help=f"{o.help} (env {o.env})")
            else:
                p.add_argument(o.flag, *o.aliases, dest=o.name, type=o.type, default=None, help=f"{o.help} (env {o.env}; default {o.default})")
        if name == "ui":
            p.add_argument("--shapes", action="store_true",
                           help="offer every shape (StepRamp, Spike, Soak) and user class in the web UI (Locust's --class-picker)")
            p.add_argument("--web-host", default="127.0.0.1", help="address of the web UI (default 127.0.0.1; see README for --web-login on a shared host)")
            p.add_argument("--web-port", type=int, default=8089, help="port of the web UI (default 8089)")
        p.add_argument("locust_args", nargs=argparse.REMAINDER, help="after `--`: extra Locust options")
    for name, (_main, text) in delegated_commands().items():
        sub.add_parser(name, help=text, description=text + f" (see `comfyload {name} --help`)", add_help=False)
    add_plan_parser(sub)
    return parser


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
        path = next((d / f"{name_or_path}.yaml" for d in (SCENARIOS_DIR, FAULTS_DIR) if (d / f"{name_or_path}.yaml").is_file()),
                    SCENARIOS_DIR / f"{name_or_path}.yaml")
    if not path.is_file():
        known = ", ".join(sorted(p.stem for d in (SCENARIOS_DIR, FAULTS_DIR) for p in d.glob("*.yaml")))
        raise UserError(f"scenario not found: {name_or_path} (known: {known})")
    scenario = read_mapping(path, "scenario")
    unknown = set(scenario) - SCENARIO_RUN_KEYS - set(opts.BY_NAME)
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
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
    return {**values, "users": users, "run_time": str(run_time), "user_class": user_class, "spawn_rate": spawn_rate,
            "shape": shape}


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
    if not text.strip() or not match or not any(match.groups()) or \
            sum(int(g or 0) * k for g, k in zip(match.groups(), (3600, 60, 1))) <= 0:
        raise UserError(f"--run-time must be a duration like 90s, 10m or 1h30m, not {text!r}")


def preflight(host: str, plan) -> None:
    """Server reachable, workflows executable there: checked before any load starts."""
    client = ComfyClient(host, completion="poll:1")
    try:
        check_server(client, plan)
    finally:
        client.close()


def locust_command(host: str, settings: dict, run_dir: Path, scenario: str, args, headless: bool) -> list[str]:
    locustfiles = [str(REPO / "locustfile.py")]
    if not headless and getattr(args, "shapes", False):
        locustfiles += [str(p) for p in sorted(SHAPES_DIR.glob("*.py"))]
    elif settings["shape"]:
        locustfiles.append(str(SHAPES_DIR / f"{settings['shape']}.py"))
    cmd = [sys.executable, "-m", "locust", "-f", ",".join(locustfiles), "--host", host,
           "-u", str(settings["users"]), "-r", str(settings["spawn_rate"]),
           "--csv", str(run_dir / "locust"), "--csv-full-history",
           "--stop-timeout", str(STOP_GRACE_S),
           "--run-dir", str(run_dir), "--scenario-name", scenario]
    if headless:
        cmd += ["--headless", "--only-summary", "--run-time", settings["run_time"]]
    else:
        cmd += ["--web-host", args.web_host, "--web-port", str(args.web_port)]
        cmd += ["--class-picker"] if args.shapes else []
    for o in opts.OPTIONS:
        if o.name in ("run_dir", "scenario_name"):
            continue
        value = absolute_if_file(settings[o.name]) if o.name in PATH_OPTIONS else settings[o.name]
        if o.flag_only:
            cmd += [o.flag] if value else []
        else:
            cmd += [o.flag, str(value)]
    extra = list(getattr(args, "locust_args", []))
    if extra[:1] == ["--"]:
        extra = extra[1:]
    if not headless:  # the user class is a field of the start form (Locust's class picker with --shapes)
        return cmd + extra + ([] if getattr(args, "shapes", False) else ["--user-class", settings["user_class"]])
    return cmd + extra + [settings["user_class"]]


PATH_OPTIONS = ("workflow", "sla", "book_profiles", "comfy_hosts")


def absolute_if_file(value):
    """Locust runs in the checkout: a path the user gave relative to their own working directory
    (the runbook's `--workflow ../samples/x.json`) is handed over absolute."""
    path = Path(str(value))
    return str(path.resolve()) if value and not path.is_absolute() and path.is_file() else value


def finish(run_dir: Path, sla_path: str, output: str | None) -> int:
    """Summary and verdict from the records (the report's summary.json, the one writer); exit 1
    when the verdict fails (a drill's own verdict, else the SLA), 3 when nothing was recorded."""
    from reports.build import build_after_run, write_summary
    try:
        records = read_records(run_dir)
    except FileNotFoundError:
        print(f"error: the run recorded nothing ({run_dir}); see Locust's messages above", file=sys.stderr)
        return EXIT_HARNESS
    summary = build_after_run(run_dir, sla_path, output)
    if summary is None:  # no report: the verdict still stands, from the same model
        summary = summarise(records, load_sla(sla_path), read_drill_verdict(run_dir))
        write_summary(run_dir, summary, output)
    print(f"\n== ComfyLoad summary ({run_dir}) ==")
    print(format_summary(summary))
    if (run_dir / "report.html").exists():
        print(f"report: {run_dir / 'report.html'}")
    if summary["prompts_submitted"] == 0:
        print("error: no prompt was submitted", file=sys.stderr)
        return EXIT_HARNESS
    return EXIT_PASS if summary["verdict"]["passed"] else EXIT_BREACH


def read_drill_verdict(run_dir: Path) -> dict | None:
    path = Path(run_dir) / "fault_verdict.json"
    return json.loads(path.read_text()) if path.exists() else None


def main(argv=None) -> int:
    exit_on_sigterm()
    argv = sys.argv[1:] if argv is None else list(argv)
    delegated = delegated_commands()
    if argv and argv[0] in delegated:
        return delegated[argv[0]][0](argv[1:])
    try:
        args = build_parser().parse_args(argv)
        if args.command == "faults":
            return run_fault_suite(args)
        if args.command == "plan":
            return run_plan(args)
        scenario = load_scenario(args.scenario)
        settings = resolve_settings(args, scenario)
        plan = plan_run(settings, {settings["user_class"]})
        with comfy_target(args) as (host, server):
            return execute(args, scenario, settings, plan, host, server)[0]
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        return 130


@contextlib.contextmanager
def comfy_target(args):
    """(host, local server or None): COMFY_HOST/--host, else the local ComfyUI, stopped after."""
    server = None
    try:
        if not args.host:
            server = LocalComfyUI(port=args.port).start()
        yield (args.host or server.url), server
    finally:
        if server is not None:
            server.stop()


def execute(args, scenario: dict, settings: dict, plan, host: str, server) -> tuple[int, Path]:
    """Runs one scenario: (exit code, its run folder). Bad input raises UserError before any run."""
    for target in parse_hosts(settings["comfy_hosts"]) or [host]:
        preflight(target, plan)
    fault = scenario.get("_fault")
    ui = args.command == "ui"  # a web UI session: each test makes its own run folder; this one keeps the CSVs
    run_dir = new_run_dir(scenario["_name"] + ("-distributed" if args.workers else "") + ("-ui-session" if ui else ""),
                          RUNS_ROOT)
    print(f"[comfyload] target {host}; scenario {scenario['_name']}\n[comfyload] run folder {run_dir}", file=sys.stderr, flush=True)
    proxy = schedule = None
    load_host = host
    log_offset = server.log_path.stat().st_size if server is not None and server.log_path.exists() else None
    if fault is not None:
        if fault.uses_proxy:
            proxy = make_proxy(host, args.toxiproxy)
            load_host = proxy.url
            print(f"[comfyload] fault proxy {proxy.url} -> {host}", file=sys.stderr, flush=True)
        settings = {**settings, "inject_sleep": settings["inject_sleep"] or fault.inject_sleep_option()}
    cmd = locust_command(load_host, settings, run_dir, scenario["_name"], args, headless=args.command != "ui")
    workers = []
    if args.workers:
        port = free_port()
        cmd += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
        cmd += ["--expect-workers", str(args.workers)] if args.command != "ui" else []
    outputs_before = run_outputs.files_in(server.work_dir / "output") if server is not None else set()
    process = subprocess.Popen(cmd, cwd=str(REPO))
    death_watch = DeathWatch(server, RunRecorder(run_dir)).start() if server is not None else None
    if args.workers:
        workers = [subprocess.Popen(worker_command(cmd, port), cwd=str(REPO)) for _ in range(args.workers)]
        print(f"[comfyload] master + {args.workers} workers (pids {', '.join(str(w.pid) for w in workers)})",
              file=sys.stderr, flush=True)
    try:
        if fault is not None:
            schedule = FaultSchedule(fault, RunRecorder(run_dir), proxy, crash_controller(args, server, host, fault)).start()
        rc = wait_stopping_cleanly(process)
    finally:
        if process.poll() is None:  # we are being stopped ourselves: stop Locust too
            process.terminate()
            wait_or_stop([process])
        wait_or_stop(workers)
        if death_watch is not None:
            death_watch.stop()
        if schedule is not None:
            schedule.stop()
        if proxy is not None:
            proxy.stop()
    if server is not None:
        kept = run_outputs.settle(server.work_dir / "output", outputs_before, run_dir, args.outputs)
    run_outputs.report(server, host, *(kept if server is not None else (0, None)), args.outputs)
    if ui:
        from comfyload.orchestration.ui_session import finish_session
        return finish_session(run_dir, settings["sla"], finish), run_dir
    if rc == EXIT_USER_ERROR:
        return EXIT_USER_ERROR, run_dir
    if rc not in (0, 1):
        print(f"error: Locust exited with code {rc}", file=sys.stderr)
        finish(run_dir, settings["sla"], args.output)
        return EXIT_HARNESS, run_dir
    if fault is not None and log_offset is not None:
        RunRecorder(run_dir).event("server.oom_unloads", count=server_log_since(server, log_offset).count(OOM_LOG_LINE))
    if fault is not None:
        judge_fault(run_dir, scenario, fault, settings["sla"])
    return finish(run_dir, settings["sla"], args.output), run_dir


def wait_stopping_cleanly(process) -> int:
    """Waits for Locust. SIGTERM (what `timeout` and a CI cancel send) and Ctrl-C end the run, not
    the wrapper: Locust gets SIGTERM, stops its users and writes its last records, and the wrapper
    goes on to the summary and the report. A second Ctrl-C stops at once."""
    def forward(_signum=None, _frame=None):
        if process.poll() is None:
            print("[comfyload] stopping the run: summary and report follow (Ctrl-C again to abandon them)",
                  file=sys.stderr, flush=True)
            process.terminate()

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        try:
            return process.wait()
        except KeyboardInterrupt:
            forward()
            return process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def worker_command(master_cmd: list[str], port: int) -> list[str]:
    """A worker of this master: the same locustfiles; everything else comes from the master."""
    files = master_cmd[master_cmd.index("-f") + 1]
    return [sys.executable, "-m", "locust", "-f", files, "--worker", "--master-host", "127.0.0.1",
            "--master-port", str(port)]


OOM_LOG_LINE = "Got an OOM, unloading all loaded models."


def server_log_since(server, offset: int) -> str:
    with open(server.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")


def crash_controller(args, server, host: str, fault):
    if not fault.uses_crash:
        return None
    if args.crash_cmd and args.restart_cmd:
        return HookCrash(args.crash_cmd, args.restart_cmd, host)
    if server is None:
        raise UserError("the crash drill needs the local ComfyUI, or --crash-cmd and --restart-cmd for your server")
    return LocalCrash(server)


def judge_fault(run_dir: Path, scenario: dict, fault, sla_path: str) -> bool:
    """Runs the drill's checks over the records, prints its table, keeps fault_verdict.json."""
    records = read_records(run_dir)
    rows = run_checks(fault.checks, records, load_sla(sla_path))
    passed = all(r.passed for r in rows)
    verdict = {"scenario": scenario["_name"], "expected": fault.expected, "passed": passed,
               "checks": [{k: v for k, v in r.__dict__.items() if k not in ("value", "at")} for r in rows]}
    (run_dir / "fault_verdict.json").write_text(json.dumps(verdict, indent=2))  # a judgement, beside the records
    print(format_drill_table([verdict]))
    return passed


def format_drill_table(verdicts: list[dict]) -> str:
    lines = [f"{'scenario':<12} {'expected':<58} {'observed':<70} verdict"]
    for v in verdicts:
        for i, c in enumerate(v["checks"]):
            name = v["scenario"] if i == 0 else ""
            lines.append(f"{name:<12} {c['expected'][:58]:<58} {c['observed'][:70]:<70} {'PASS' if c['passed'] else 'FAIL'}")
        lines.append(f"{'':<12} {'=> ' + v['expected'][:55]:<58} {'':<70} {'PASS' if v['passed'] else 'FAIL'}")
    return "\n".join(lines)


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
            verdicts.append(json.loads(path.read_text()) if path.exists() else
                            {"scenario": scenario["_name"], "expected": "", "passed": False,
                             "checks": [{"check": "run", "expected": "the drill runs", "observed": "no verdict", "passed": False}]})
    print("\n== Fault drills ==")
    print(format_drill_table(verdicts))
    return EXIT_PASS if all(v["passed"] for v in verdicts) else EXIT_BREACH
