"""Fault drills: the crash controller, the drill's checks over the records (fault_verdict.json,
beside the records, never in them), the table of verdicts. `comfyload faults` (cli.py) runs them all."""

from __future__ import annotations

import json
from pathlib import Path

from comfyload.analysis.fault_checks import run_checks
from comfyload.analysis.sla import load_sla
from comfyload.common.errors import UserError
from comfyload.common.recorder import read_records
from comfyload.orchestration.faults import HookCrash, LocalCrash


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
    verdict = {
        "scenario": scenario["_name"],
        "expected": fault.expected,
        "passed": passed,
        "checks": [{k: v for k, v in r.__dict__.items() if k not in ("value", "at")} for r in rows],
    }
    (run_dir / "fault_verdict.json").write_text(json.dumps(verdict, indent=2))  # a judgement, beside the records
    print(format_drill_table([verdict]))
    return passed


def format_drill_table(verdicts: list[dict]) -> str:
    """Scenario, check, verdict; what was expected and observed under each (fits 100 columns)."""
    lines = [f"{'scenario':<12} {'check':<78} verdict"]
    for v in verdicts:
        for i, c in enumerate(v["checks"]):
            lines.append(
                f"{v['scenario'] if i == 0 else '':<12} {c['check'][:78]:<78} {'PASS' if c['passed'] else 'FAIL'}"
            )
            lines.append(f"{'':<14}expected: {c['expected'][:74]}")
            lines.append(f"{'':<14}observed: {c['observed'][:74]}")
        lines.append(f"{'':<12} {'=> ' + v['expected'][:75]:<78} {'PASS' if v['passed'] else 'FAIL'}")
    return "\n".join(lines)
