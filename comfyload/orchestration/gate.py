"""`comfyload gate` (`make gate`): the release gate. One command before a release or a driver
update: replays the archived baseline's workload against the target, runs the quick fault drills
(`--full`: all five), compares every SLA figure with its noise, and answers GO or NO-GO in one
report (gate.json + gate.html). Exit codes: 0 GO, 1 NO-GO, 2 bad input, 3 the harness failed,
4 no baseline yet (one was run and archived: the next gate has something to compare with)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from comfyload.analysis.sla import load_compare
from comfyload.common.cli_exit import run_cli
from comfyload.common.errors import UserError
from comfyload.common.one_line_parser import OneLineParser
from comfyload.common.recorder import RUNS_ROOT, new_run_dir
from comfyload.orchestration import gate_baseline
from comfyload.orchestration.run import execute
from comfyload.orchestration.scenario import FAULTS_DIR, _env_int, load_scenario, resolve_settings
from comfyload.orchestration.server import comfy_target
from comfyload.orchestration.verdict import EXIT_HARNESS, EXIT_USER_ERROR, read_drill_verdict
from comfyload.workloads.preflight import plan_run

EXIT_GO, EXIT_NO_GO, EXIT_NO_BASELINE = 0, 1, 4
QUICK_DRILLS = ("validation", "network")
FULL_DRILLS = ("validation", "network", "oom", "crash", "latency")


def build_parser():
    p = OneLineParser(
        prog="comfyload gate",
        description="Release gate: replay the archived baseline's workload on the target, run the quick drills, "
        "compare every SLA figure with its noise; GO (exit 0) or NO-GO (exit 1). Exit 2 bad input, 3 harness "
        "failure, 4 no baseline yet (one is run and archived).",
    )
    p.add_argument("--baseline", help="the baseline run folder (default: the newest under --baselines-dir)")
    p.add_argument(
        "--baselines-dir",
        default=str(gate_baseline.BASELINES_DIR),
        help="archived baselines (default observability/baselines/, env COMFY_BASELINES_DIR)",
    )
    p.add_argument("--full", action="store_true", help="all five drills: adds OOM, crash and latency")
    p.add_argument("--drills", help="comma list of drills instead (none: no drill); default validation,network")
    p.add_argument("--promote", action="store_true", help="after a GO, archive the candidate as the new baseline")
    p.add_argument(
        "--accept-workflow-change",
        action="store_true",
        help="replay even though a workflow file differs from the baseline's (by sha256)",
    )
    p.add_argument(
        "--scenario",
        default="baseline",
        help="with no baseline yet: the scenario run and archived as the first one (default baseline)",
    )
    p.add_argument(
        "--inject-sleep",
        default=None,
        help="add a Sleep to the candidate's prompts, START-END:SECONDS (to check the gate catches a regression)",
    )
    p.add_argument("--sla", default=None, help="SLA file with the `compare:` thresholds (default: the baseline's)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default 0)")
    p.add_argument(
        "--host", "--server", default=os.environ.get("COMFY_HOST") or None, help="ComfyUI URL (env COMFY_HOST)"
    )
    p.add_argument("--port", type=int, default=_env_int("COMFY_PORT") or 8188, help="port for the local ComfyUI")
    p.add_argument("--crash-cmd", help="crash drill on a remote server: command that kills it")
    p.add_argument("--restart-cmd", help="crash drill on a remote server: command that starts it again")
    p.add_argument("--toxiproxy", help="network drill: a toxiproxy API URL instead of the built-in proxy")
    p.add_argument("--out", default=None, help="gate folder (default runs/<timestamp>-gate/)")
    return p


def run_args(gate, command: str = "run"):
    """The namespace `execute` takes, with the gate's target; every option unset (None)."""
    args = gate.comfyload_parser().parse_args([command, "--outputs", "delete"])
    for name in ("host", "port", "crash_cmd", "restart_cmd", "toxiproxy"):
        setattr(args, name, getattr(gate, name))
    args.command, args.workers, args.locust_args, args.output = "run", 0, [], None
    return args


def drills_of(gate) -> list[str]:
    known = sorted(p.stem for p in FAULTS_DIR.glob("*.yaml"))
    if gate.drills is not None:
        names = [] if gate.drills.strip() == "none" else [d for d in gate.drills.split(",") if d]
        unknown = sorted(set(names) - set(known))
        if unknown:
            raise UserError(f"--drills: unknown drill(s) {', '.join(unknown)} (known: {', '.join(known)}, or none)")
        return names
    return list(FULL_DRILLS if gate.full else QUICK_DRILLS)


def replay_plan(gate, baseline: Path):
    """(scenario, settings, plan) offering the candidate exactly the baseline's workload."""
    meta = gate_baseline.read_meta(baseline)
    changed = gate_baseline.workflow_changes(meta)
    if changed and not gate.accept_workflow_change:
        raise UserError(
            f"workflow changed since the baseline: {'; '.join(changed)} (--accept-workflow-change replays it anyway)"
        )
    args = run_args(gate)
    replay = gate_baseline.replay_settings(meta)
    for key, value in replay.items():
        setattr(args, key, value)
    if gate.inject_sleep:
        args.inject_sleep = gate.inject_sleep
    name = str(meta.get("scenario") or "baseline")
    scenario = {"_name": name, "_path": str(baseline / "meta.json")}  # the candidate's meta names it alike
    try:
        scenario["shape"] = load_scenario(name).get("shape")
    except UserError:
        pass
    settings = resolve_settings(args, scenario)
    return args, scenario, settings, plan_run(settings, {settings["user_class"]}), changed


def drill_plans(gate, names: list[str], server_managed: bool):
    """[(name, args, scenario, settings, plan) or (name, None, ..., skip reason)], checked before any run."""
    planned = []
    for name in names:
        if name == "crash" and not server_managed and not (gate.crash_cmd and gate.restart_cmd):
            planned.append(
                (name, None, None, None, "skipped: the suite cannot restart this server (--crash-cmd/--restart-cmd)")
            )
            continue
        args = run_args(gate)
        scenario = load_scenario(name)
        settings = resolve_settings(args, scenario)
        planned.append((name, args, scenario, settings, plan_run(settings, {settings["user_class"]})))
    return planned


def run_drills(planned, host, server) -> list[dict]:
    verdicts = []
    for name, args, scenario, settings, plan in planned:
        if args is None:
            verdicts.append({"scenario": name, "expected": "", "passed": None, "skipped": plan, "checks": []})
            continue
        print(f"\n=== gate drill: {name} ===", flush=True)
        started = time.monotonic()
        _code, run_dir = execute(args, scenario, settings, plan, host, server)
        verdict = read_drill_verdict(run_dir) or {
            "scenario": name,
            "expected": "",
            "passed": False,
            "checks": [{"check": "run", "expected": "the drill runs", "observed": "no verdict", "passed": False}],
        }
        verdicts.append({**verdict, "run_dir": str(run_dir), "duration_s": time.monotonic() - started})
    return verdicts


def first_baseline(gate, root: Path) -> int:
    """No baseline yet: run the scenario, archive it (README beside it), exit 4."""
    print(f"gate: no archived baseline under {root}: running scenario {gate.scenario} and archiving it", flush=True)
    args = run_args(gate)
    scenario = load_scenario(gate.scenario)
    settings = resolve_settings(args, scenario)
    plan = plan_run(settings, {settings["user_class"]})
    with comfy_target(args) as (host, server):
        code, run_dir = execute(args, scenario, settings, plan, host, server)
    if code in (EXIT_USER_ERROR, EXIT_HARNESS):
        return code
    if code != 0:  # a baseline that breaches its own SLA would make every later candidate look fine
        print(
            f"gate: NO BASELINE YET — the run breached its SLA ({run_dir}): not archived; "
            "fix the server (or pick a --scenario it can meet) and run the gate again"
        )
        return EXIT_NO_BASELINE
    archived = gate_baseline.archive(run_dir, root)
    print(f"gate: NO BASELINE YET — archived {archived} as the baseline; run the gate again to judge a candidate")
    return EXIT_NO_BASELINE


def main(argv, comfyload_parser) -> int:
    """`comfyload_parser` builds `comfyload`'s own parser (the cli above passes it): each run the
    gate makes gets the namespace `comfyload run` would."""

    def gate_from_argv() -> int:
        gate = build_parser().parse_args(argv)
        gate.comfyload_parser = comfyload_parser
        return run_gate(gate)

    return run_cli(gate_from_argv)


def run_gate(gate) -> int:
    started = time.monotonic()
    root = Path(gate.baselines_dir)
    if gate.baseline:
        baseline = Path(gate.baseline)
        if not gate_baseline.is_run_folder(baseline):
            raise UserError(f"--baseline {gate.baseline}: not a run folder (meta.json and comfyui_metrics.ndjson)")
    else:
        baseline = gate_baseline.newest_baseline(root)
        if baseline is None:
            return first_baseline(gate, root)
    args, scenario, settings, plan, workflow_changed = replay_plan(gate, baseline)
    names = drills_of(gate)
    sla_path = gate.sla or settings["sla"]
    load_compare(sla_path)  # bad thresholds refused before any load
    planned = drill_plans(gate, names, server_managed=not gate.host)
    print(f"gate: baseline {baseline}", flush=True)
    with comfy_target(args) as (host, server):
        replay_started = time.monotonic()
        code, candidate = execute(args, scenario, settings, plan, host, server)
        replay_s = time.monotonic() - replay_started
        if code in (EXIT_USER_ERROR, EXIT_HARNESS):
            print(f"gate: the replay did not run through (exit {code}): no verdict", file=sys.stderr)
            return code
        drills = run_drills(planned, host, server)
    from reports.gate_report import gate_result, write_gate

    result = gate_result(baseline, candidate, sla_path, drills, gate.seed, force=bool(workflow_changed))
    result.update(
        mode="full" if gate.full else "quick",
        injected=gate.inject_sleep,
        workflow_changed=workflow_changed,
        timings_s={"total": time.monotonic() - started, "replay": replay_s},
    )
    if gate.promote and result["verdict"] == "GO":
        result["promoted"] = str(gate_baseline.archive(candidate, root))
    out = Path(gate.out) if gate.out else new_run_dir("gate", RUNS_ROOT)  # made once there is a verdict
    head = write_gate(out, result)
    print("\n" + head, flush=True)
    return EXIT_GO if result["verdict"] == "GO" else EXIT_NO_GO
