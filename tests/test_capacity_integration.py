"""Integration (real local ComfyUI): the capacity model's knee against the adaptive ramp's measured
knee on Sleep pages whose answer is known by hand, and least_queue on a fleet of two servers."""

import json

import pytest
import yaml
from conftest import REPO, only_run_dir, run_cli

from comfyload.analysis.fleet_figures import format_balance, server_balance
from comfyload.orchestration.server import LocalComfyUI, free_port

pytestmark = pytest.mark.integration


def records_of(run_dir, kind=None, name=None):
    records = [json.loads(line) for line in (run_dir / "comfyui_metrics.ndjson").read_text().splitlines()]
    return [r for r in records if (kind is None or r["kind"] == kind) and (name is None or r.get("name") == name)]


def test_predicted_and_measured_knee_agree_within_one_book(comfy, runs_dir, tmp_path):
    # Books of Sleep-1-s pages on one ComfyUI: N books -> page latency N x 1 s, never less, +0.3-0.7 s
    # when ComfyUI's gc pause (every ~10 s) falls in the wait. SLA p95 4.95 s (scenarios/sla/sleep.yaml):
    # 5 books always fail (>= 5.0 s), 4 pass unless pauses exceed ~0.9 s: the knee by hand is 4.
    # Tolerance: one book, each way. The model sees the probe's service times and the pause it
    # measured; the ramp judges each level on ~10-20 pages, and pauses longer than usual on a busy
    # machine (0.7 s seen, typical 0.3 s) can fail the 4-book step: measured 3. Predicted and measured two books
    # apart would need a model error of a whole page time (1 s): that is what this test catches.
    scenario = tmp_path / "ramp.yaml"
    scenario.write_text(
        "user_class: BookUser\nshape: adaptive_ramp\nbook_profile: sleep_pages\n"
        "sla: scenarios/sla/sleep.yaml\nramp_start: 3\nramp_hold: 40\nramp_max: 8\n"
        "ramp_ci_width: 0.25\nrun_time: 100s\nper_prompt_timeout: 30\n"
    )
    proc = run_cli("run", "--host", comfy, "--scenario", str(scenario), timeout=200)
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]
    run = only_run_dir(runs_dir)
    [prediction] = records_of(run, "event", "ramp.prediction")
    [knee] = records_of(run, "event", "ramp.knee")
    # the knee by hand, from this run's own records rather than a quiet machine's 1.0 s: N books
    # wait at least N pages of the server's own execution span, so no more than target / span can
    # pass (4 on a quiet machine, 3 where a 1-s Sleep spans 1.3 s). The server's pauses between
    # prompts (measured by the probe: `pause_s`) come on top: only where they fit in what is left
    # of the target must the knee reach that bound, less one book.
    target_s = yaml.safe_load((REPO / "scenarios/sla/sleep.yaml").read_text())["latency_p95_s"]
    spans = sorted(r["execution_ms"] for r in records_of(run, "prompt") if r["outcome"] == "success")
    span_s = spans[len(spans) // 2] / 1000
    by_hand = int(target_s // span_s)
    assert knee["users"] <= by_hand and prediction["knee"] <= by_hand + 1, (prediction, knee, by_hand)
    if prediction["pause_s"] < target_s - by_hand * span_s:
        assert knee["users"] >= by_hand - 1, (knee, by_hand, prediction["pause_s"])
    assert abs(prediction["knee"] - knee["users"]) <= 1, (prediction["knee"], knee)
    assert knee["knee_low"] <= knee["users"] <= knee["knee_high"], knee
    steps = {s["users"]: s for s in records_of(run, "event", "ramp.step")}
    assert knee["users"] == 0 or steps[knee["users"]]["passed"]
    assert not steps[knee["first_breach"]]["passed"]
    # the plan command agrees with the prediction made inside the run, from the same records
    plan = run_cli("plan", str(run), "--max-books", "8", "--max-servers", "1", "--pages", "1500")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert abs(json.loads((run / "capacity.json").read_text())["knees"]["1"] - knee["users"]) <= 1


def test_least_queue_keeps_two_in_flight_on_each_of_two_servers(comfy, runs_dir, tmp_path):
    sleep = tmp_path / "sleep_half.json"
    sleep.write_text(json.dumps({"1": {"class_type": "Sleep", "inputs": {"seconds": 0.5}}}))
    second = LocalComfyUI(port=free_port(), work_dir=tmp_path / "comfyui2").start(ready_timeout=300)
    try:
        proc = run_cli(
            "run",
            "--host",
            comfy,
            "--comfy-hosts",
            f"{comfy},{second.url}",
            "--route",
            "least_queue",
            "--workflow",
            str(sleep),
            "--jobs",
            "40",
            "--concurrency",
            "4",
            timeout=200,
        )
    finally:
        second.stop()
    assert proc.returncode in (0, 1), proc.stdout[-3000:] + proc.stderr[-2000:]
    prompts = records_of(only_run_dir(runs_dir), "prompt")
    balance = server_balance(prompts)
    print("\n".join(format_balance(balance)))
    servers = list(balance["by_server"].values())
    assert len(servers) == 2
    for s in servers:  # 2 of the 4 in flight on each server: one runs, one waits behind it
        assert s["max_in_flight"] <= 3, servers
    # shares of the same run, not seconds: however slow the machine, least_queue keeps the two
    # servers evenly loaded (random or sticky routing of 4 users over 2 servers drifts from even).
    # Their latencies are not compared: that ratio is how differently a busy host treats two
    # server processes (seen: 8.7 under load), not routing
    assert balance["in_flight_imbalance"] < 1.2, balance
    # and on each server's own clock, prompts did queue behind one another (two in flight there)
    for url in balance["by_server"]:
        mine = [r for r in prompts if r["server"] == url and r["outcome"] == "success"]
        behind = [
            p
            for p in mine
            if any(q is not p and q["execution_start"] <= p["create_time"] < q["execution_end"] for q in mine)
        ]
        assert behind, (url, len(mine))


def test_trace_replay_reproduces_a_recorded_runs_arrival_times(comfy, runs_dir, tmp_path):
    sleep = tmp_path / "sleep_tenth.json"
    sleep.write_text(json.dumps({"1": {"class_type": "Sleep", "inputs": {"seconds": 0.1}}}))
    common = ("--host", comfy, "--user-class", "OpenLoopUser", "--workflow", str(sleep), "--run-time", "60s")
    first = run_cli("run", *common, "--arrival", "poisson", "--arrival-rate", "4", "--jobs", "12", "--seed", "5")
    assert first.returncode in (0, 1), first.stderr[-2000:]
    recorded = only_run_dir(runs_dir)
    original = sorted(r["intended_send_ts"] for r in records_of(recorded, "prompt"))
    recorded.rename(tmp_path / "recorded")
    trace = tmp_path / "recorded" / "comfyui_metrics.ndjson"
    replay = run_cli("run", *common, "--arrivals-trace", str(trace))
    assert replay.returncode in (0, 1), replay.stdout[-2000:] + replay.stderr[-2000:]
    prompts = sorted(records_of(only_run_dir(runs_dir), "prompt"), key=lambda r: r["intended_send_ts"])
    assert len(prompts) == len(original) == 12
    # the schedule is the recorded one, exactly (computed, not measured); each send follows its
    # intended time and never precedes it (5 ms for the timer's wake-up, not for speed). How late
    # a send may be on a busy machine is a speed goal: bench/replay_precision.py, against a reference
    intended = [p["intended_send_ts"] - prompts[0]["intended_send_ts"] for p in prompts]
    wanted = [t - original[0] for t in original]
    assert intended == pytest.approx(wanted, abs=1e-6), (intended, wanted)
    assert all(p["sent_ts"] >= p["intended_send_ts"] - 0.005 for p in prompts), "no prompt sent before its time"
    late_ms = sorted((p["sent_ts"] - p["intended_send_ts"]) * 1000 for p in prompts)
    print(f"replay send lateness: median {late_ms[len(late_ms) // 2]:.2f} ms, max {late_ms[-1]:.2f} ms")
    [arrivals] = records_of(only_run_dir(runs_dir), "event", "arrivals.summary")
    assert arrivals["model"] == "trace" and arrivals["scheduled"] == 12 and arrivals["dropped"] == 0
