"""One run: preflight, the Locust process (and its workers) with the run folder wired in, the fault
schedule beside it, then the summary and the verdict from the metrics model (exit 0 pass, 1 fail,
2 bad input, 3 the harness failed)."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
from pathlib import Path

from comfyload.analysis.sla import load_sla
from comfyload.analysis.summary import format_summary, summarise
from comfyload.common.paths import REPO
from comfyload.common.processes import wait_or_stop
from comfyload.common.recorder import RUNS_ROOT, RunRecorder, new_run_dir, read_records
from comfyload.orchestration import run_outputs
from comfyload.orchestration.before_load import check_gpu_probe
from comfyload.orchestration.drills import crash_controller, judge_fault
from comfyload.orchestration.faults import FaultSchedule, make_proxy
from comfyload.orchestration.scenario import SHAPES_DIR, absolute_if_file
from comfyload.orchestration.server import DeathWatch, LocalComfyUI, free_port
from comfyload.protocol.client import ComfyClient
from comfyload.protocol.fleet import parse_hosts
from comfyload.workloads import options as opts
from comfyload.workloads.preflight import check_server

EXIT_PASS, EXIT_BREACH, EXIT_USER_ERROR, EXIT_HARNESS = 0, 1, 2, 3


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
    check_gpu_probe(settings["gpu_probe"], settings.get("_sources", {}).get("gpu_probe", "--gpu-probe"))
    fault = scenario.get("_fault")
    ui = args.command == "ui"  # a web UI session: each test makes its own run folder; this one keeps the CSVs
    run_dir = new_run_dir(
        scenario["_name"] + ("-distributed" if args.workers else "") + ("-ui-session" if ui else ""), RUNS_ROOT
    )
    print(
        f"[comfyload] target {host}; scenario {scenario['_name']}\n[comfyload] run folder {run_dir}",
        file=sys.stderr,
        flush=True,
    )
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
        print(
            f"[comfyload] master + {args.workers} workers (pids {', '.join(str(w.pid) for w in workers)})",
            file=sys.stderr,
            flush=True,
        )
    try:
        if fault is not None:
            schedule = FaultSchedule(
                fault, RunRecorder(run_dir), proxy, crash_controller(args, server, host, fault)
            ).start()
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


def worker_command(master_cmd: list[str], port: int) -> list[str]:
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
        "127.0.0.1",
        "--master-port",
        str(port),
    ]


OOM_LOG_LINE = "Got an OOM, unloading all loaded models."


def server_log_since(server, offset: int) -> str:
    with open(server.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode(errors="replace")
