"""`python -m comfyload run|ui`: what `make baseline` and `make ui` call.

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
import subprocess
import sys
import time
from pathlib import Path

from comfyload import options as opts
from comfyload.client import ComfyClient
from comfyload.errors import UserError
from comfyload.fault_checks import run_checks, unknown_checks
from comfyload.faults import FaultSchedule, HookCrash, LocalCrash, make_proxy, parse_fault_plan
from comfyload.fleet import parse_hosts
from comfyload.plan import add_plan_parser, run_plan
from comfyload.preflight import check_server, plan_run
from comfyload.recorder import RUNS_ROOT, RunRecorder, new_run_dir, read_records
from comfyload.server import LocalComfyUI, exit_on_sigterm, free_port
from comfyload.sla import load_sla
from comfyload.summary import format_summary, summarise
from comfyload.yamlfile import read_mapping

REPO = Path(__file__).resolve().parent.parent
SCENARIOS_DIR = REPO / "scenarios"
SCENARIO_RUN_KEYS = {"description", "user_class", "users", "spawn_rate", "run_time", "shape", "fault"}
FAULTS_DIR = SCENARIOS_DIR / "faults"
USER_CLASSES = ("PromptUser", "BookUser", "OpenLoopUser")
SHAPES_DIR = SCENARIOS_DIR / "shapes"
EXIT_PASS, EXIT_BREACH, EXIT_USER_ERROR, EXIT_HARNESS = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m comfyload",
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
        p.add_argument("--host", default=os.environ.get("COMFY_HOST") or None,
                       help="ComfyUI server URL (env COMFY_HOST); default: start the local one")
        p.add_argument("--port", type=int, default=_env_int("COMFY_PORT") or 8188,
                       help="port for the local ComfyUI (default 8188, env COMFY_PORT)")
        p.add_argument("--concurrency", "-u", "--users", dest="users", type=int, default=_env_int("COMFY_CONCURRENCY"),
                       help="simultaneous users (closed loop: prompts in flight) (env COMFY_CONCURRENCY)")
        p.add_argument("--user-class", choices=USER_CLASSES, default=os.environ.get("COMFY_USER_CLASS"),
                       help="PromptUser (one prompt per task), BookUser (a user is a book), OpenLoopUser (arrivals "
                            "on a schedule) (env COMFY_USER_CLASS; default: the scenario's)")
        p.add_argument("--spawn-rate", "-r", type=float, default=None, help="users started per second (default: all at once)")
        p.add_argument("--run-time", "-t", default=os.environ.get("COMFY_RUN_TIME"),
                       help="upper bound on the run, e.g. 90s, 10m (env COMFY_RUN_TIME)")
        p.add_argument("--output", "-o", default=os.environ.get("COMFY_OUTPUT"),
                       help="also write the summary JSON here (it is always in runs/<id>/summary.json)")
        for o in opts.OPTIONS:
            if o.name in ("run_dir", "scenario_name"):
                continue
            if o.flag_only:
                p.add_argument(o.flag, dest=o.name, action="store_const", const=True, default=None, help=f"{o.help} (env {o.env})")
            else:
                p.add_argument(o.flag, dest=o.name, type=o.type, default=None, help=f"{o.help} (env {o.env}; default {o.default})")
        if name == "ui":
            p.add_argument("--shapes", action="store_true",
                           help="offer every shape (StepRamp, Spike, Soak) and user class in the web UI (Locust's --class-picker)")
            p.add_argument("--web-host", default="127.0.0.1", help="address of the web UI (default 127.0.0.1; see README for --web-login on a shared host)")
            p.add_argument("--web-port", type=int, default=8089, help="port of the web UI (default 8089)")
        p.add_argument("locust_args", nargs=argparse.REMAINDER, help="after `--`: extra Locust options")
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
    users = args.users if args.users is not None else scenario.get("users", 1)
    if not isinstance(users, int) or users < 1:
        raise UserError(f"--concurrency must be an integer >= 1, not {users!r}")
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
           "--stop-timeout", str(int(settings["per_prompt_timeout"]) + 10),
           "--run-dir", str(run_dir), "--scenario-name", scenario]
    if headless:
        cmd += ["--headless", "--only-summary", "--run-time", settings["run_time"]]
    else:
        cmd += ["--web-host", args.web_host, "--web-port", str(args.web_port)]
        cmd += ["--class-picker"] if args.shapes else []
    for o in opts.OPTIONS:
        if o.name in ("run_dir", "scenario_name"):
            continue
        value = settings[o.name]
        if o.flag_only:
            cmd += [o.flag] if value else []
        else:
            cmd += [o.flag, str(value)]
    extra = list(getattr(args, "locust_args", []))
    if extra[:1] == ["--"]:
        extra = extra[1:]
    return cmd + extra + ([] if not headless and getattr(args, "shapes", False) else [settings["user_class"]])


def finish(run_dir: Path, sla_path: str, output: str | None) -> int:
    """Summary and verdict from the records; 1 on breach, 3 when nothing was recorded."""
    try:
        records = read_records(run_dir)
    except FileNotFoundError:
        print(f"error: the run recorded nothing ({run_dir}); see Locust's messages above", file=sys.stderr)
        return EXIT_HARNESS
    summary = summarise(records, load_sla(sla_path))
    document = json.dumps({"summary": summary, "run_dir": str(run_dir)}, indent=2, default=str)
    (run_dir / "summary.json").write_text(document)
    if output:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(document)
    print(f"\n== ComfyLoad summary ({run_dir}) ==")
    print(format_summary(summary))
    from reports.build import report_after_run  # the one call from comfyload into reports
    report_after_run(run_dir, sla_path, output)
    if summary["prompts_submitted"] == 0:
        print("error: no prompt was submitted", file=sys.stderr)
        return EXIT_HARNESS
    return EXIT_PASS if summary["sla_pass"] else EXIT_BREACH


def main(argv=None) -> int:
    exit_on_sigterm()
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
    run_dir = new_run_dir(scenario["_name"], RUNS_ROOT)
    print(f"[comfyload] target {host}; scenario {scenario['_name']}; run folder {run_dir}", file=sys.stderr, flush=True)
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
    process = subprocess.Popen(cmd, cwd=str(REPO))
    if args.workers:
        workers = [subprocess.Popen(worker_command(cmd, port), cwd=str(REPO)) for _ in range(args.workers)]
        print(f"[comfyload] master + {args.workers} workers (pids {', '.join(str(w.pid) for w in workers)})",
              file=sys.stderr, flush=True)
    try:
        if fault is not None:
            schedule = FaultSchedule(fault, RunRecorder(run_dir), proxy, crash_controller(args, server, host, fault)).start()
        rc = process.wait()
    except KeyboardInterrupt:
        rc = process.wait()
    finally:
        if process.poll() is None:  # we are being stopped ourselves: stop Locust too
            process.terminate()
            stop_processes([process])
        stop_processes(workers)
        if schedule is not None:
            schedule.stop()
        if proxy is not None:
            proxy.stop()
    if rc == EXIT_USER_ERROR:
        return EXIT_USER_ERROR, run_dir
    if rc not in (0, 1):
        print(f"error: Locust exited with code {rc}", file=sys.stderr)
        finish(run_dir, settings["sla"], args.output)
        return EXIT_HARNESS, run_dir
    if fault is not None and log_offset is not None:
        RunRecorder(run_dir).event("server.oom_unloads", count=server_log_since(server, log_offset).count(OOM_LOG_LINE))
    drill_passed = judge_fault(run_dir, scenario, fault, settings["sla"]) if fault is not None else None
    code = finish(run_dir, settings["sla"], args.output)
    if drill_passed is None or code == EXIT_HARNESS:
        return code, run_dir
    return (EXIT_PASS if drill_passed else EXIT_BREACH), run_dir  # a drill is judged on its expected behaviour


def worker_command(master_cmd: list[str], port: int) -> list[str]:
    """A worker of this master: the same locustfiles; everything else comes from the master."""
    files = master_cmd[master_cmd.index("-f") + 1]
    return [sys.executable, "-m", "locust", "-f", files, "--worker", "--master-host", "127.0.0.1",
            "--master-port", str(port)]


def stop_processes(processes, grace: float = 15.0) -> None:
    """Workers leave when their master quits; any that does not is stopped by its pid."""
    deadline = time.monotonic() + grace
    for p in processes:
        try:
            p.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


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
    recorder = RunRecorder(run_dir)
    for row in rows:
        if row.check == "recovery_within_sla" and row.value is not None:
            recorder.event("fault.recovered", ts=row.at, recovery_s=row.value)
    passed = all(r.passed for r in rows)
    verdict = {"scenario": scenario["_name"], "expected": fault.expected, "passed": passed,
               "checks": [{k: v for k, v in r.__dict__.items() if k not in ("value", "at")} for r in rows]}
    recorder.event("drill.verdict", scenario=scenario["_name"], passed=passed)
    (run_dir / "fault_verdict.json").write_text(json.dumps(verdict, indent=2))
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
