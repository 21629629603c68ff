"""`comfyload plan` over a run folder whose records are written by hand: service times, the
server's gap and the harness overhead are read back as written, and the knee follows."""

import json

import pytest

from comfyload.analysis.capacity import measure, server_gap_s
from comfyload.orchestration.cli import main
from comfyload.orchestration.plan_command import book_mix_of, policy_of


def prompt(i, start_ms, exec_ms=1000, create_ms=None, overhead_ms=10, workflow="sleep1", outcome="success"):
    create = start_ms if create_ms is None else create_ms
    end = start_ms + exec_ms
    return {
        "kind": "prompt",
        "server": "http://s1",
        "workflow": workflow,
        "outcome": outcome,
        "prompt_id": str(i),
        "create_time": create,
        "execution_start": start_ms,
        "execution_end": end,
        "execution_ms": exec_ms,
        "queue_wait_ms": start_ms - create,
        "e2e_ms": (end - create) + overhead_ms + 50,
        "intended_send_ts": create / 1000,
        "done_ts": end / 1000 + 0.06,
    }


def queued_run(n=20, gap_ms=50):
    """One server, every prompt queued before the last ended: executions 1 s apart plus a 50 ms gap."""
    return [prompt(i, i * (1000 + gap_ms), create_ms=0) for i in range(n)]


def test_server_gap_counts_only_queued_successors():
    assert server_gap_s(queued_run()) == pytest.approx(0.05)
    idle = [prompt(i, i * 3000) for i in range(5)]  # each created when it started: the load made the gap
    assert server_gap_s(idle) == 0.0


def test_measure_reads_service_gap_overhead_and_policy():
    meta = {"parameters": {"max_retries": 2, "retry_backoff_sec": "5,10"}}
    m = measure(queued_run(), book_mix_of([], meta, "sleep_pages", None), policy_of(meta))
    assert m.service["sleep1"]["p50_s"] == pytest.approx(1.05)
    assert m.client_s == pytest.approx(0.01, abs=1e-6)  # e2e - queue - execution - gap
    assert m.workload.max_retries == 2 and m.workload.backoff_s == (5.0, 10.0)
    assert len(m.workload.profiles[0].pages) == 4


def write_run(tmp_path, records, meta):
    run = tmp_path / "run"
    run.mkdir()
    (run / "comfyui_metrics.ndjson").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "meta.json").write_text(json.dumps(meta))
    return run


def test_plan_command_prints_the_knee_and_writes_chart_and_json(tmp_path, capsys):
    sla = tmp_path / "sla.yaml"
    sla.write_text("latency_p95_s: 4.5\nerror_budget_pct: 2\n")
    run = write_run(tmp_path, queued_run(gap_ms=0), {"parameters": {}})
    code = main(
        [
            "plan",
            str(run),
            "--sla",
            str(sla),
            "--book-profile",
            "sleep_pages",
            "--max-books",
            "6",
            "--max-servers",
            "2",
            "--target-books",
            "5",
            "--pages",
            "300",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "1 server: 4 books" in out  # 4 books -> 4.01 s, 5 -> 5.01 s
    assert "servers for 5 simultaneous books: 2" in out
    doc = json.loads((run / "capacity.json").read_text())
    assert doc["knees"]["1"] == 4 and doc["servers_for_books"] == 2
    assert (run / "charts" / "capacity.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv,text",
    [
        (["--max-books", "0"], "--max-books must be >= 1"),
        (["--book-profile", "cpu_small"], "workflow cpu_smoke was not measured"),
        (["--target-per-hour", "-1"], "--target-per-hour must be > 0"),
        (["--json", "no/such/folder/capacity.json"], "--json no/such/folder/capacity.json: the folder"),  # issue 20
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, argv, text):
    run = write_run(tmp_path, queued_run(), {"parameters": {}})
    assert main(["plan", str(run), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert text in err and len(err.splitlines()) == 1


def test_not_a_run_folder(tmp_path, capsys):
    assert main(["plan", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_service_since_takes_recent_service_but_all_pauses():
    # executions 1 s for the first 20, 2 s after (the machine got busier); a 0.5 s pause every 10 prompts
    runs, t = [], 0
    for i in range(40):
        exec_ms = 1000 if i < 20 else 2000
        t += 500 if i % 10 == 0 and i else 0
        runs.append(prompt(i, t, exec_ms=exec_ms, create_ms=0))
        t += exec_ms
    for r in runs[20:]:
        r["intended_send_ts"] = 100.0  # sent after the first 20 (all were created at 0)
    m = measure(runs, service_since=100.0)
    assert m.service["sleep1"]["p50_s"] == pytest.approx(2.0)
    assert m.workload.pause_samples == (0.5, 0.5, 0.5) and m.workload.pause_every_s > 0


def test_prompts_cut_off_by_the_loads_end_are_no_failed_attempts():
    """A ramp stops with books in flight: their prompts end cut_off, which the outcome policy judges
    not at all. Counted as failures (3 of 66 seen: 4.5 %), the model retried them after 15-90 s and
    predicted a knee of 1 book where the run measured 4."""
    records = queued_run() + [dict(prompt(100 + i, 30000), outcome="cut_off", execution_end=None) for i in range(3)]
    assert measure(records).workload.fail_p == 0.0
    failed = records + [dict(prompt(200, 31000), outcome="execution_error")]
    assert measure(failed).workload.fail_p == pytest.approx(1 / 21)
