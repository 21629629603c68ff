"""Integration: the five fault drills of the reliability roadmap against the real local ComfyUI,
each checked for its expected behaviour in the records (not only the drill's own verdict)."""

import json
import re

import pytest
import yaml
from conftest import REPO, only_run_dir, run_cli

from comfyload.analysis.metrics import percentile
from comfyload.protocol.workload import INJECTED_SLEEP_NODE

pytestmark = pytest.mark.integration


def drill(runs_dir, *args, env=None, timeout=400):
    proc = run_cli("run", *args, env=env, timeout=timeout)
    run_dir = only_run_dir(runs_dir)
    records = [json.loads(line) for line in (run_dir / "comfyui_metrics.ndjson").read_text().splitlines()]
    verdict = json.loads((run_dir / "fault_verdict.json").read_text())
    return proc, records, verdict, run_dir


def of(records, kind, name=None):
    return [r for r in records if r["kind"] == kind and (name is None or r.get("name") == name)]


def test_validation_drill(comfy, runs_dir):
    proc, records, verdict, _ = drill(runs_dir, "--host", comfy, "--scenario", "validation")
    assert proc.returncode == 0 and verdict["passed"], proc.stdout[-3000:]
    invalid = [p for p in of(records, "page") if p["workflow"] == "page_empty"]
    assert invalid and all(p["attempts"] == 2 and p["needs_regeneration"] for p in invalid)
    assert all(p["outcome"] == "success" and p["attempts"] == 1 for p in of(records, "page") if p["workflow"] == "page")
    assert len(of(records, "event", "book.page.needs_regeneration")) == len(invalid)


def test_oom_drill(comfy, runs_dir):
    proc, records, verdict, _ = drill(runs_dir, "--host", comfy, "--scenario", "oom")
    assert proc.returncode == 0 and verdict["passed"], proc.stdout[-3000:]
    ooms = [p for p in of(records, "prompt") if p["outcome"] == "oom"]
    assert ooms and all("OutOfMemoryError" in p["error_type"] for p in ooms)
    retried = [p for p in of(records, "page") if p["retry_count"]]
    assert retried and all(p["outcome"] == "success" and p["e2e_ms"] >= 1000 for p in retried), "backoff wait visible"
    assert [e["delay_s"] for e in of(records, "event", "book.page.retry")] == [1.0] * len(retried)


def test_network_drill(comfy, runs_dir):
    proc, records, verdict, _ = drill(runs_dir, "--host", comfy, "--scenario", "network")
    assert proc.returncode == 0 and verdict["passed"], proc.stdout[-3000:]
    assert "fault proxy http://127.0.0.1:" in proc.stderr
    faults = {e["fault"] for e in of(records, "event", "fault.start")}
    assert faults == {"proxy.latency", "proxy.reset_peer", "proxy.timeout", "proxy.slicer"}
    pages = of(records, "page")
    assert len(pages) == 40 and all(p["outcome"] == "success" for p in pages)
    prompt_ids = [r["prompt_id"] for r in of(records, "prompt")]
    assert len(prompt_ids) == len(set(prompt_ids)), "nothing counted twice"
    assert of(records, "event", "alert.connection_lost"), "the reset dropped the websocket"
    assert len(of(records, "event", "alert.connection_lost")) <= 10, "a resetting link is not hammered"


def test_latency_drill(comfy, runs_dir):
    proc, records, verdict, run_dir = drill(runs_dir, "--host", comfy, "--scenario", "latency")
    [start] = of(records, "event", "fault.start")
    [end] = of(records, "event", "fault.end")
    # The drill judges end-to-end latency against an absolute SLA (2 s): its subject, and what a busy
    # machine can fail (seen: a first prompt at 3.8 s, a 3.5-s stall of the whole host). So the test
    # works each judgment out by hand from this run's records and holds the drill to it, instead of
    # asking this machine to be quick enough to pass.
    checks = {c["check"]: c for c in verdict["checks"]}
    ok = [p for p in of(records, "prompt") if p["outcome"] == "success"]
    before = [p["e2e_ms"] for p in ok if p["intended_send_ts"] < start["ts"]]
    during = [p["e2e_ms"] for p in ok if start["ts"] <= p["intended_send_ts"] < end["ts"]]
    p_before, p_during = percentile(before, 95) / 1000, percentile(during, 95) / 1000
    target_s = yaml.safe_load((REPO / "scenarios/faults/sla/latency.yaml").read_text())["latency_p95_s"]
    assert checks["p95_rises_by_injection"]["passed"] == (abs(p_during - p_before - 3.0) <= 1.0), checks
    assert checks["sla_reacts"]["passed"] == (p_before <= target_s < p_during), (checks, p_before, p_during)
    assert checks["nothing_counted_twice"]["passed"], checks
    assert verdict["passed"] == all(c["passed"] for c in checks.values())
    assert proc.returncode == (0 if verdict["passed"] else 1), proc.stdout[-3000:]
    headline = f"Drill verdict: {'PASS' if verdict['passed'] else 'FAIL'} (latency"
    assert any(line.startswith(headline) for line in proc.stdout.splitlines()), proc.stdout[-3000:]
    if verdict["passed"]:  # a drill that passes is headlined by its own verdict, the SLA as information
        assert "SLA verdict: FAIL" not in proc.stdout
        page = (run_dir / "report.html").read_text()
        assert page.index("Drill verdict: PASS") < page.index("The SLA below is information")
    assert start["fault"] == "inject_sleep" and start["seconds"] == 3.0
    # which prompts carry the injected node is read from each graph, not guessed from a clock: on
    # the server's clock those run both Sleeps (3 s + the page's 0.5 s), the others the page's only
    prompts = sorted(of(records, "prompt"), key=lambda p: p["intended_send_ts"])
    injected = [INJECTED_SLEEP_NODE in p["node_classes"] for p in prompts]
    inside = [p for p, hit in zip(prompts, injected) if hit]
    assert inside and all(p["execution_ms"] >= 3450 for p in inside), "the injected Sleep ran in those prompts"
    assert all(
        p["execution_ms"] >= 500 and list(p["node_classes"]) == ["1"] for p, hit in zip(prompts, injected) if not hit
    )
    first, last = injected.index(True), len(injected) - 1 - injected[::-1].index(True)
    assert all(injected[first : last + 1]) and not injected[0] and not injected[-1], "one window, load before and after"
    assert all(p["intended_send_ts"] < end["ts"] for p in inside), "nothing injected after the window closed"


def test_crash_drill_kills_and_restarts_its_own_local_comfyui(runs_dir, tmp_path):
    from comfyload.orchestration.server import free_port, port_in_use

    port = free_port()
    # recovery is judged against a target no restart misses (this machine's start-up time is not
    # under test); "never recovered" still fails the drill's recovery check
    sla = tmp_path / "sla.yaml"
    sla.write_text(re.sub(r"(?m)^recovery_s: *\d+", "recovery_s: 3600", (REPO / "sla.yaml").read_text()))
    proc, records, verdict, run_dir = drill(
        runs_dir, "--scenario", "crash", "--sla", str(sla), env={"COMFY_HOST": "", "COMFY_PORT": str(port)}, timeout=600
    )
    assert proc.returncode == 0 and verdict["passed"], proc.stdout[-3000:] + proc.stderr[-2000:]
    assert proc.stderr.count(f"starting on http://127.0.0.1:{port}") == 2, "started, then restarted after the kill"
    assert not port_in_use(port), "stopped at the end"
    [crash] = of(records, "event", "fault.start")
    [restarted] = of(records, "event", "fault.end")
    lost = [p for p in of(records, "prompt") if p["outcome"] in ("lost", "timeout")]
    assert lost and all(p["sent_ts"] < restarted["ts"] for p in lost), "only what was sent while it was down is lost"
    assert not of(records, "event", "fault.recovered"), "the judge writes nothing back into the records"
    summary = json.loads((run_dir / "summary.json").read_text())["summary"]
    [outage] = summary["outages"]
    # the outage is bracketed by causes, not by a stopwatch: it begins after the last success the
    # killed server gave and before the restart was done; recovery is a success after it came back
    last_before = max(
        p["done_ts"] for p in of(records, "prompt") if p["outcome"] == "success" and p["done_ts"] < crash["ts"]
    )
    assert last_before < outage["start_ts"] <= restarted["ts"], (last_before, outage, restarted)
    # recovery is the first success after the kill (the monitor's end is its next /system_stats probe,
    # which a retried page can beat, so recovery need not exceed the outage's duration)
    assert outage["recovered"] and outage["start_ts"] + outage["recovery_s"] > crash["ts"] and outage["duration_s"] > 0
    assert {v["metric"]: v for v in summary["sla"]}["recovery"]["measured"] == pytest.approx(outage["recovery_s"])
    assert "Drill verdict: PASS" in proc.stdout and "SLA verdict" not in proc.stdout
    assert all(p["outcome"] == "success" for p in of(records, "page"))
    assert "Drill <b>crash</b>" in (run_dir / "report.html").read_text()
