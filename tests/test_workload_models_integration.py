"""Integration (real local ComfyUI): closed loop against a Sleep of known cost, books with
retries, input uploads, open-loop arrivals, the step ramp's knee, SLA breach exit codes."""

import json
import re
import statistics
from pathlib import Path

import pytest
from conftest import only_run_dir, run_cli

pytestmark = pytest.mark.integration
TEST_WORKFLOWS = Path(__file__).resolve().parent / "workflows"


def records_of(runs_dir, kind=None, name=None):
    lines = (only_run_dir(runs_dir) / "comfyui_metrics.ndjson").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return [r for r in records if (kind is None or r["kind"] == kind) and (name is None or r.get("name") == name)]


def sleep_workflow(tmp_path, seconds):
    path = tmp_path / f"sleep_{seconds}.json"
    path.write_text(json.dumps({"1": {"class_type": "Sleep", "inputs": {"seconds": seconds}}}))
    return str(path)


def summary_of(runs_dir):
    return json.loads((only_run_dir(runs_dir) / "summary.json").read_text())["summary"]


def test_one_user_throughput_is_one_over_the_sleep(comfy, runs_dir, tmp_path):
    proc = run_cli(
        "run", "--host", comfy, "--workflow", sleep_workflow(tmp_path, 0.5), "--jobs", "8", "--concurrency", "1"
    )
    s = summary_of(runs_dir)
    # exit 1 only for the default SLA's verdict (>= 20 images/min: seen missed at 9/min when the
    # host starved the client for 9 s a prompt); the exit follows the verdict, not this machine
    assert proc.returncode == (0 if s["sla_pass"] else 1), proc.stderr[-2000:]
    prompts = records_of(runs_dir, "prompt")
    load_end = max(e["ts"] for e in records_of(runs_dir, "event") if e["name"] == "load.end")
    window = max(load_end, max(p["done_ts"] for p in prompts)) - min(p["intended_send_ts"] for p in prompts)
    assert s["images_per_minute"] == pytest.approx(len(prompts) / (window / 60), rel=1e-9), (
        "the figure is the records' count over the load window (first intended send to the end of load)"
    )
    # 1 user x 0.5 s Sleep: at most 120/min, and exactly one over its own latency, checked on the
    # server's clock and the records instead of a quiet machine's figures: the Sleep spans >= 500 ms
    # there, one prompt is created only after the previous one ended (nothing queues behind another
    # prompt), and the user cannot outrun its own end-to-end latency (the window holds every e2e)
    by_create = sorted(prompts, key=lambda p: p["create_time"])
    assert all(p["execution_ms"] >= 500 for p in prompts if p["outcome"] == "success")
    assert all(b["create_time"] >= a["execution_end"] for a, b in zip(by_create, by_create[1:])), "one at a time"
    ok = [p for p in prompts if p["outcome"] == "success"]
    assert all(p["e2e_ms"] >= p["execution_end"] - p["create_time"] - 2 for p in ok), "e2e holds the server span"
    assert s["images_per_minute"] <= 60_000 / statistics.mean(p["e2e_ms"] for p in prompts) + 1e-9
    assert s["images_per_minute"] <= 60_000 / 500


def test_n_users_on_one_server_wait_n_times_the_sleep(comfy, runs_dir, tmp_path):
    proc = run_cli(
        "run", "--host", comfy, "--workflow", sleep_workflow(tmp_path, 0.5), "--jobs", "15", "--concurrency", "3"
    )
    assert proc.returncode == (0 if summary_of(runs_dir)["sla_pass"] else 1), proc.stderr[-2000:]
    stamped = ("create_time", "execution_start", "execution_end")  # a prompt cut off while queued has none
    prompts = sorted(
        (r for r in records_of(runs_dir, "prompt") if all(r[k] is not None for k in stamped)),
        key=lambda r: r["execution_start"],
    )
    # on the server's own clock: it runs one prompt at a time, first come first served, so each
    # prompt waits for those ahead of it (created before it, not ended when it came): up to 2 of
    # them with 3 users, never more; its e2e holds that whole wait (+ 2 ms of ms rounding)
    assert all(b["execution_start"] >= a["execution_end"] for a, b in zip(prompts, prompts[1:])), "serial"
    ahead = {
        p["prompt_id"]: [q for q in prompts if q["create_time"] < p["create_time"] < q["execution_end"]]
        for p in prompts
    }
    for p in prompts:
        assert p["execution_start"] >= max([q["execution_end"] for q in ahead[p["prompt_id"]]], default=0)
        # a prompt still queued when load stopped is given up (cut off) and its interrupt lands later
        assert p["outcome"] != "success" or p["e2e_ms"] >= p["execution_end"] - p["create_time"] - 2, p
    assert max(len(a) for a in ahead.values()) == 2, "3 users: a prompt found the other two ahead of it"
    spans = statistics.mean(p["execution_ms"] for p in prompts)
    assert summary_of(runs_dir)["images_per_minute"] <= 60_000 / spans, "no faster than the server's serial capacity"


def book_args(comfy, profile, *extra):
    return (
        "run",
        "--host",
        comfy,
        "--user-class",
        "BookUser",
        "--book-profiles",
        str(TEST_WORKFLOWS / "books.yaml"),
        "--book-profile",
        profile,
        "--retry-backoff-sec",
        "0.2",
        "--concurrency",
        "1",
        *extra,
    )


def test_a_page_that_fails_once_is_retried_and_the_book_succeeds(comfy, runs_dir):
    proc = run_cli(*book_args(comfy, "fault_once_book", "--jobs", "1"))
    assert proc.returncode in (0, 1), proc.stderr[-2000:]  # 1 book < the SLA's 5 books: a concurrency breach
    pages = {p["page"]: p for p in records_of(runs_dir, "page")}
    assert set(pages) == {1, 2, 3} and all(p["outcome"] == "success" for p in pages.values())
    assert pages[2]["retry_count"] == 1 and pages[2]["attempts"] == 2 and not pages[2]["needs_regeneration"]
    assert pages[2]["image_error"][0]["outcome"] == "execution_error"
    assert pages[1]["retry_count"] == pages[3]["retry_count"] == 0
    [book] = records_of(runs_dir, "book")
    assert book["outcome"] == "success" and book["retries"] == 1
    names = [e["name"] for e in records_of(runs_dir, "event")]
    assert names.count("book.page.failed") == 1 and names.count("book.page.retry") == 1
    assert names.count("book.done") == 1 and "book.page.needs_regeneration" not in names
    retry = records_of(runs_dir, "event", "book.page.retry")[0]
    assert retry["page"] == 2 and retry["delay_s"] == 0.2
    prompts = records_of(runs_dir, "prompt")
    assert len(prompts) == 4 and sorted(p["attempt"] for p in prompts if p["page"] == 2) == [1, 2]
    s = summary_of(runs_dir)
    assert s["books"]["ok"] == 1 and s["books"]["retries"] == 1
    metrics = {v["metric"]: v for v in s["sla"]}
    assert metrics["error_rate"]["measured"] == 0, "a page that succeeded on retry is no failure after retries"


def test_a_page_that_always_fails_validation_is_retried_once_then_needs_regeneration(comfy, runs_dir):
    proc = run_cli(*book_args(comfy, "invalid_page_book", "--jobs", "1", "--max-retries", "3"))
    assert proc.returncode == 1, proc.stderr[-2000:]
    pages = {p["page"]: p for p in records_of(runs_dir, "page")}
    assert pages[2]["outcome"] == "validation_error" and pages[2]["needs_regeneration"] is True
    assert pages[2]["retry_count"] == 1 and pages[2]["attempts"] == 2, "validation errors are retried once only"
    assert [e["outcome"] for e in pages[2]["image_error"]] == ["validation_error", "validation_error"]
    assert pages[1]["outcome"] == pages[3]["outcome"] == "success", "other pages unaffected"
    [book] = records_of(runs_dir, "book")
    assert book["outcome"] == "failed" and book["pages_failed"] == [2]
    [flag] = records_of(runs_dir, "event", "book.page.needs_regeneration")
    assert flag["page"] == 2
    assert "error_rate" in proc.stdout and "SLA verdict: FAIL" in proc.stdout


def test_input_images_are_uploaded_once_or_per_request(comfy, runs_dir, tmp_path):
    proc = run_cli("run", "--host", comfy, "--workflow", "cpu_reference", "--jobs", "3", "--concurrency", "1")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert {r["outcome"] for r in records_of(runs_dir, "prompt")} == {"success"}
    # per request: a copy of the spec with per_request: true uploads a unique file each time
    src = Path("workflows")
    (tmp_path / "inputs").mkdir()
    (tmp_path / "inputs" / "character_ref.png").write_bytes((src / "inputs" / "character_ref.png").read_bytes())
    (tmp_path / "ref.json").write_text((src / "cpu_reference.json").read_text())
    (tmp_path / "ref.spec.yaml").write_text(
        (src / "cpu_reference.spec.yaml").read_text().replace("per_request: false", "per_request: true")
    )
    for d in runs_dir.iterdir():
        import shutil

        shutil.rmtree(d)
    proc = run_cli(
        "run", "--host", comfy, "--workflow", str(tmp_path / "ref.json"), "--jobs", "3", "--concurrency", "1"
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    prompts = records_of(runs_dir, "prompt")
    uploads = [name for p in prompts for name in p["uploads"]]
    assert len(uploads) == 3 and len(set(uploads)) == 3 and all(u.startswith("character_ref-") for u in uploads)
    assert {p["outcome"] for p in prompts} == {"success"}


def test_missing_input_file_is_one_clear_error(comfy, runs_dir, tmp_path):
    (tmp_path / "ref.json").write_text(Path("workflows/cpu_reference.json").read_text())
    (tmp_path / "ref.spec.yaml").write_text("inputs:\n  - {node: '1', input: image, file: nowhere/ref.png}\n")
    proc = run_cli("run", "--host", comfy, "--workflow", str(tmp_path / "ref.json"), "--jobs", "1", timeout=60)
    assert proc.returncode == 2 and "input file not found" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_model_is_named_before_load(comfy, runs_dir):
    proc = run_cli("run", "--host", comfy, "--workflow", "book_small", "--jobs", "1", timeout=60)
    assert proc.returncode == 2
    assert "missing model ckpt_name='v1-5-pruned-emaonly.safetensors'" in proc.stderr
    assert list(runs_dir.iterdir()) == []


def test_open_loop_above_capacity_counts_late_arrivals_and_latency_grows(comfy, runs_dir, tmp_path):
    proc = run_cli(
        "run",
        "--host",
        comfy,
        "--user-class",
        "OpenLoopUser",
        "--workflow",
        sleep_workflow(tmp_path, 0.5),
        "--arrival",
        "constant",
        "--arrival-rate",
        "5",
        "--max-in-flight",
        "2",
        "--jobs",
        "16",
        "--run-time",
        "60s",
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    prompts = sorted(records_of(runs_dir, "prompt"), key=lambda r: r["intended_send_ts"])
    assert len(prompts) == 16 and {p["outcome"] for p in prompts} == {"success"}
    gaps = [b["intended_send_ts"] - a["intended_send_ts"] for a, b in zip(prompts, prompts[1:])]
    assert statistics.median(gaps) == pytest.approx(1 / 5), "arrivals keep their schedule (5/s), as computed"
    first, last = prompts[:3], prompts[-3:]
    assert min(p["e2e_ms"] for p in last) > max(p["e2e_ms"] for p in first) + 3000, "queueing shows in latency"
    assert all(p["sent_ts"] - p["intended_send_ts"] > 2.0 for p in last), "late arrivals sent late, timed from intent"
    [arrivals] = records_of(runs_dir, "event", "arrivals.summary")
    assert arrivals["scheduled"] == 16 and arrivals["late"] >= 10 and arrivals["on_time"] + arrivals["late"] == 16
    assert summary_of(runs_dir)["arrivals"]["late"] == arrivals["late"]
    assert re.search(r"\d+ late \(p95 [\d.]+ s late\)", proc.stdout), proc.stdout[-2000:]


def test_step_ramp_stops_at_the_knee_the_sla_predicts(comfy, runs_dir, tmp_path):
    # Sleep 2 s on one serial server: N prompts in flight -> e2e ~ 2N s, plus up to ~1 s when ComfyUI's
    # periodic gc.collect() stalls it on a busy machine. With p95 <= 5.2 s, 2 in flight pass (4 s)
    # and 3 fail (6 s): the knee is 2. Levels: 1, 3 (breach), then bisection tries 2.
    sla = tmp_path / "sla.yaml"
    sla.write_text("latency_p95_s: 5.2\nthroughput_images_per_min: 10\nerror_budget_pct: 2\n")
    scenario = tmp_path / "ramp.yaml"
    scenario.write_text(
        f"user_class: PromptUser\nshape: step_ramp\nrun_time: 150s\nworkflow: {sleep_workflow(tmp_path, 2.0)}\n"
        f"sla: {sla}\nramp_start: 1\nramp_step: 2\nramp_hold: 14\nramp_max: 9\nper_prompt_timeout: 30\n"
    )
    proc = run_cli("run", "--host", comfy, "--scenario", str(scenario), timeout=300)
    steps = {s["users"]: s for s in records_of(runs_dir, "event", "ramp.step")}
    # each step is judged on this run's own p95 (a busy machine can fail even 1 in flight); the path
    # and the knee then follow from those verdicts by hand: up by 2 from 1 until a breach, then
    # bisection. Lower bounds hold on any machine (a serial 2-s Sleep): 3 in flight never pass.
    target_s = 5.2  # the SLA written above
    for step in steps.values():
        assert step["passed"] == (not step["breached"]), step
        assert ("latency_p95" in step["breached"]) == (step["p95_s"] > target_s), step
    if steps[1]["passed"]:
        levels, by_hand = [1, 2, 3], 2 if steps[2]["passed"] else 1
        assert steps[2]["p95_s"] >= 4.0 and steps[3]["p95_s"] >= 6.0 and not steps[3]["passed"]
    else:
        levels, by_hand = [1], 0
    assert sorted(steps) == levels, "up by 2 until the breach at 3, then bisection tried 2"
    [knee] = records_of(runs_dir, "event", "ramp.knee")
    assert knee["users"] == by_hand and knee["first_breach"] == min(n for n in levels if not steps[n]["passed"])
    assert proc.returncode in (0, 1) and f"ramp knee: {by_hand} prompts in flight within SLA" in proc.stdout


def test_latency_breach_makes_the_exit_code_non_zero_and_names_the_metric(comfy, runs_dir, tmp_path):
    sla = tmp_path / "sla.yaml"
    sla.write_text("latency_p95_s: 0.3\n")
    proc = run_cli(
        "run",
        "--host",
        comfy,
        "--workflow",
        sleep_workflow(tmp_path, 0.5),
        "--jobs",
        "3",
        "--concurrency",
        "1",
        "--sla",
        str(sla),
    )
    assert proc.returncode == 1
    assert "FAIL  latency_p95" in proc.stdout and "SLA verdict: FAIL (latency_p95)" in proc.stdout


def test_parallel_pages_are_sent_together(comfy, runs_dir, tmp_path):
    proc = run_cli(
        "run",
        "--host",
        comfy,
        "--user-class",
        "BookUser",
        "--book-profile",
        "cpu_small",
        "--allow-parallel-pages",
        "--jobs",
        "2",
        "--concurrency",
        "1",
    )
    assert proc.returncode in (0, 1), proc.stderr[-2000:]
    prompts = records_of(runs_dir, "prompt")
    for book in {p["book_id"] for p in prompts}:
        sent = sorted(p["sent_ts"] for p in prompts if p["book_id"] == book)
        assert len(sent) == 4 and sent[-1] - sent[0] < 0.5, "all four pages submitted at once"
    pages = records_of(runs_dir, "page")
    assert len(pages) == 8 and all(p["outcome"] == "success" for p in pages)
    assert max(p["queue_wait_ms"] for p in prompts) > 100, "they queue on the one server together"


def test_a_run_ended_by_its_run_time_with_prompts_in_flight_is_audited_once_and_cut_off(comfy, runs_dir, tmp_path):
    """The run time ends with work in flight (two users, Sleep-8-s prompts, 10 s: one running, one
    queued or running). On one serial server the second prompt cannot end before 16 s, past the run
    time and its STOP_GRACE_S (5 s). Each ends `cut_off`, not judged: the interrupt the client sends
    for the running one must not turn it into `interrupted`, a failure of the server. Locust fires
    test_stop a second time when the run time ends mid-stop; the audit was then written twice and
    every count doubled."""
    proc = run_cli(
        "run", "--host", comfy, "--workflow", sleep_workflow(tmp_path, 8.0), "--concurrency", "2", "--run-time", "10s"
    )
    prompts = records_of(runs_dir, "prompt")
    assert prompts, proc.stdout[-2000:] + proc.stderr[-2000:]
    audits = records_of(runs_dir, "event", "audit")
    assert len(audits) == 1, audits
    assert audits[0]["submitted"] == audits[0]["recorded"] == len(prompts)
    outcomes = [p["outcome"] for p in prompts]
    assert "cut_off" in outcomes and set(outcomes) <= {"success", "cut_off"}, outcomes
    assert "audit (submitted or started / recorded): prompts" in proc.stdout and "FAIL - " not in proc.stdout
