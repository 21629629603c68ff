"""One run: preflight, the Locust process (and its workers) with the run folder wired in, the fault
schedule beside it, then the summary and the verdict (verdict.py: exit 0 pass, 1 fail, 2 bad
input, 3 the harness failed)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from comfyload.common.paths import REPO
from comfyload.common.processes import wait_or_stop
from comfyload.common.recorder import RUNS_ROOT, RunRecorder, new_run_dir
from comfyload.orchestration import run_outputs
from comfyload.orchestration.before_load import check_gpu_probe
from comfyload.orchestration.drills import crash_controller, judge_fault
from comfyload.orchestration.faults import FaultSchedule, make_proxy
from comfyload.orchestration.scenario import SHAPES_DIR, absolute_if_file
from comfyload.orchestration.server import DeathWatch, free_port
from comfyload.orchestration.ui_session import finish_session
from comfyload.orchestration.verdict import EXIT_HARNESS, EXIT_USER_ERROR, finish
from comfyload.protocol.client import ComfyClient
from comfyload.protocol.fleet import parse_hosts
from comfyload.workloads import options as opts
from comfyload.workloads.preflight import check_server

STOP_GRACE_S = 5  # after --run-time, work in flight gets this long before it is cut off (recorded `cut_off`)


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
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        ",".join(locustfiles),
        "--host",
        host,
        "-u",
        str(settings["users"]),
        "-r",
        str(settings["spawn_rate"]),
        "--csv",
        str(run_dir / "locust"),
        "--csv-full-history",
        "--stop-timeout",
        str(STOP_GRACE_S),
        "--run-dir",
        str(run_dir),
        "--scenario-name",
        scenario,
    ]
    if headless:
        cmd += ["--headless", "--only-summary", "--run-time", settings["run_time"]]
    else:
        cmd += ["--web-host", args.web_host, "--web-port", str(args.web_port)]
        cmd += ["--class-picker"] if args.shapes else []
    for o in opts.WRAPPER_OPTIONS:
        value = absolute_if_file(settings[o.name]) if o.path else settings[o.name]
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


def execute(args, scenario: dict, settings: dict, plan, host: str, server) -> tuple[int, Path]:
    """Runs one scenario: (exit code, its run folder). Bad input raises UserError before any run."""
    check_before_load(settings, plan, host)
    run_dir = open_run_folder(args, scenario, host)
    log_offset = server_log_size(server)
    fault = scenario.get("_fault")
    proxy = start_fault_proxy(fault, host, args.toxiproxy)
    if fault is not None:
        settings = {**settings, "inject_sleep": settings["inject_sleep"] or fault.inject_sleep_option()}
    load_host = proxy.url if proxy is not None else host
    cmd = locust_command(load_host, settings, run_dir, scenario["_name"], args, headless=args.command != "ui")
    master_port = free_port() if args.workers else None
    if master_port is not None:
        cmd += master_flags(master_port, args.workers, expect_workers=args.command != "ui")
    outputs_before = run_outputs.files_in(server.work_dir / "output") if server is not None else set()
    rc = run_locust(cmd, master_port, args, run_dir, server, host, fault, proxy)
    settle_outputs(server, host, outputs_before, run_dir, args.outputs)
    return conclude(args, scenario, settings, run_dir, rc, fault, server, log_offset), run_dir


def check_before_load(settings: dict, plan, host: str) -> None:
    """Every server reachable and able to run the workflows, the GPU probe answering: before any load."""
    for target in parse_hosts(settings["comfy_hosts"]) or [host]:
        preflight(target, plan)
    check_gpu_probe(settings["gpu_probe"], settings.get("_sources", {}).get("gpu_probe", "--gpu-probe"))


def open_run_folder(args, scenario: dict, host: str) -> Path:
    """A new run folder, named after the scenario (a web UI session's keeps the CSVs; each of its
    tests makes its own folder), announced on stderr."""
    suffix = ("-distributed" if args.workers else "") + ("-ui-session" if args.command == "ui" else "")
    run_dir = new_run_dir(scenario["_name"] + suffix, RUNS_ROOT)
    print(
        f"[comfyload] target {host}; scenario {scenario['_name']}\n[comfyload] run folder {run_dir}",
        file=sys.stderr,
        flush=True,
    )
    return run_dir


def server_log_size(server) -> int | None:
    """Where the local ComfyUI's log ends now: a drill counts the OOM lines written after it."""
    return server.log_path.stat().st_size if server is not None and server.log_path.exists() else None


def start_fault_proxy(fault, host: str, toxiproxy: str | None):
    """The proxy a network drill's load goes through (None for any other run)."""
    if fault is None or not fault.uses_proxy:
        return None
    proxy = make_proxy(host, toxiproxy)
    print(f"[comfyload] fault proxy {proxy.url} -> {host}", file=sys.stderr, flush=True)
    return proxy


def master_flags(port: int, workers: int, expect_workers: bool) -> list[str]:
    """Locust's master flags; headless, it waits for all the workers before the load starts."""
    flags = ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
    return flags + (["--expect-workers", str(workers)] if expect_workers else [])


def run_locust(cmd: list[str], master_port: int | None, args, run_dir: Path, server, host: str, fault, proxy) -> int:
    """Locust (and its workers) until it ends, the death watch and the fault schedule beside it;
    everything this started is stopped before it returns Locust's exit code."""
    process = subprocess.Popen(cmd, cwd=str(REPO))
    death_watch = DeathWatch(server, RunRecorder(run_dir)).start() if server is not None else None
    workers = start_workers(cmd, master_port, args.workers) if master_port is not None else []
    schedule = None
    try:
        if fault is not None:
            schedule = FaultSchedule(
                fault, RunRecorder(run_dir), proxy, crash_controller(args, server, host, fault)
            ).start()
        return wait_stopping_cleanly(process)
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


def start_workers(master_cmd: list[str], port: int, count: int) -> list[subprocess.Popen]:
    workers = [subprocess.Popen(worker_command(master_cmd, port), cwd=str(REPO)) for _ in range(count)]
    print(
        f"[comfyload] master + {count} workers (pids {', '.join(str(w.pid) for w in workers)})",
        file=sys.stderr,
        flush=True,
    )
    return workers


def settle_outputs(server, host: str, outputs_before: set, run_dir: Path, mode: str) -> None:
    """The local ComfyUI's images of this run kept in the run folder or deleted; one line says which."""
    kept = (0, None)
    if server is not None:
        kept = run_outputs.settle(server.work_dir / "output", outputs_before, run_dir, mode)
    run_outputs.report(server, host, *kept, mode)


def conclude(args, scenario: dict, settings: dict, run_dir: Path, rc: int, fault, server, log_offset) -> int:
    """The exit code: a web UI session's tests each finished, else Locust's failure, else the
    drill judged and the run's verdict."""
    if args.command == "ui":
        return finish_session(run_dir, settings["sla"])
    if rc == EXIT_USER_ERROR:
        return EXIT_USER_ERROR
    if rc not in (0, 1):
        print(f"error: Locust exited with code {rc}", file=sys.stderr)
        finish(run_dir, settings["sla"], args.output)
        return EXIT_HARNESS
    if fault is not None and log_offset is not None:
        RunRecorder(run_dir).event("server.oom_unloads", count=server_log_since(server, log_offset).count(OOM_LOG_LINE))
    if fault is not None:
        judge_fault(run_dir, scenario, fault, settings["sla"])
    return finish(run_dir, settings["sla"], args.output)


def wait_stopping_cleanly(process) -> int:
    """Waits for Locust. SIGTERM (what `timeout` and a CI cancel send) and Ctrl-C end the run, not
    the wrapper: Locust gets SIGTERM, stops its users and writes its last records, and the wrapper
    goes on to the summary and the report. A second Ctrl-C stops at once."""

    def forward(_signum=None, _frame=None):
        if process.poll() is None:
            print(
                "[comfyload] stopping the run: summary and report follow (Ctrl-C again to abandon them)",
                file=sys.stderr,
                flush=True,
            )
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


def worker_command(master_cmd: list[str], port: int, master_host: str = "127.0.0.1") -> list[str]:
    """A worker of this master: the same locustfiles; everything else comes from the master."""
    files = master_cmd[master_cmd.index("-f") + 1]
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        files,
        "--worker",
        "--master-host",
        master_host,
        "--master-port",
        str(port),
    ]


OOM_LOG_LINE = "Got an OOM, unloading all loaded models."


def server_log_since(server, offset: int) -> str:
    with open(server.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")
