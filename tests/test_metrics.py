"""Unit: SLA file parsing and the metrics model (comfyload.analysis.metrics), checked against cases
computed by hand: the outcome policy, the load window, outages and recovery, dropped arrivals."""

import pytest

from comfyload.analysis.metrics import calculate_metrics, percentile, steady_state
from comfyload.analysis.sla import SlaTargets, load_sla
from comfyload.analysis.summary import format_summary, summarise
from comfyload.common.errors import UserError


def evaluate(records, targets):
    return calculate_metrics(records, targets).sla


def breaches(verdicts):
    return [v for v in verdicts if v.passed is False]


def prompt(i, send, done, outcome="success", **kw):
    return {
        "kind": "prompt",
        "prompt_id": str(i),
        "intended_send_ts": send,
        "done_ts": done,
        "e2e_ms": (done - send) * 1000,
        "outcome": outcome,
        **kw,
    }


def test_percentile_of_a_known_list():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == pytest.approx(50.5)
    assert percentile(values, 95) == pytest.approx(95.05)
    assert percentile([7], 95) == 7
    assert percentile([], 95) is None


def test_one_user_sleep_schedule_gives_one_over_duration():
    # one user, a 2-s Sleep back to back: 30 renders in 60 s -> 30 images/min, p95 = 2 s
    records = [prompt(i, i * 2.0, i * 2.0 + 2.0) for i in range(30)]
    v = {m.metric: m for m in evaluate(records, SlaTargets())}
    assert v["throughput"].measured == pytest.approx(30.0)
    assert v["latency_p95"].measured == pytest.approx(2.0)
    assert v["error_rate"].measured == 0
    assert v["concurrency"].passed is None and v["recovery"].passed is None


def test_error_budget_breach_is_named():
    records = [prompt(i, i, i + 1) for i in range(95)] + [prompt(100 + i, 100 + i, 101 + i, "oom") for i in range(5)]
    failed = breaches(evaluate(records, SlaTargets()))
    assert [m.metric for m in failed] == ["error_rate"]
    assert failed[0].measured == pytest.approx(5.0)


def test_work_cut_off_on_track_is_not_judged_but_overdue_or_failed_work_is():
    ok = [prompt(i, i, i + 1) for i in range(10)]
    on_track = prompt(99, 10, 10.5, "cut_off")  # 0.5 s old when load stopped
    overdue = prompt(98, 0, 50.0, "cut_off")  # waited 50 s > the 45 s target
    retried = prompt(97, 9, 10.0, "cut_off", attempt=2)  # its first attempt had failed
    m = calculate_metrics(ok + [on_track], SlaTargets())
    assert m.figures["error_rate_pct"] == 0 and m.population.excluded_cut_off == 1
    m = calculate_metrics(ok + [on_track, overdue, retried], SlaTargets())
    assert m.figures["error_rate_pct"] == pytest.approx(100 * 2 / 12)
    assert "error_rate" in m.breached


def test_a_server_dead_until_the_end_fails_recovery_throughput_window_and_cut_off_pages():
    # pages 1 s each from t=0 to 20 s, then the server dies at 20 s; load ends at 150 s
    pages = [
        {
            "kind": "page",
            "book_id": "b",
            "page": i,
            "intended_send_ts": float(i),
            "done_ts": i + 1.0,
            "e2e_ms": 1000.0,
            "outcome": "success",
            "image_error": [],
            "retry_count": 0,
        }
        for i in range(20)
    ]
    waiting = {
        "kind": "page",
        "book_id": "c",
        "page": 1,
        "intended_send_ts": 20.0,
        "done_ts": 150.0,
        "e2e_ms": None,
        "outcome": "cut_off",
        "image_error": [{"outcome": "lost"}],
        "retry_count": 2,
    }
    never_begun = {
        "kind": "page",
        "book_id": "c",
        "page": 2,
        "intended_send_ts": 150.0,
        "done_ts": 150.0,
        "e2e_ms": None,
        "outcome": "cut_off",
        "image_error": [],
        "retry_count": 0,
    }
    prompts = [dict(p, kind="prompt", server="s") for p in pages]
    events = [
        {"kind": "event", "name": "outage.start", "ts": 20.5, "server": "s"},
        {"kind": "event", "name": "load.end", "ts": 150.0},
    ]
    m = calculate_metrics(pages + [waiting, never_begun] + prompts + events, SlaTargets())
    v = {x.metric: x for x in m.sla}
    assert m.population.start_ts == 0 and m.population.end_ts == 150.0
    assert v["throughput"].measured == pytest.approx(20 / 2.5)  # 20 images over the 150-s load window
    assert v["error_rate"].measured == pytest.approx(100 * 2 / 22)  # both cut-off pages: the server was down
    assert v["recovery"].passed is False and v["recovery"].measured == pytest.approx(129.5)
    assert "not recovered" in v["recovery"].note
    assert m.verdict["passed"] is False and "recovery" in m.verdict["text"]


def test_recovery_is_measured_for_every_outage_from_its_start_to_the_first_success_after_it():
    prompts = [prompt(i, float(i), i + 1.0, server="s") for i in range(5)]  # done at 1..5
    prompts += [prompt(10 + i, 30.0 + i, 31.0 + i, server="s") for i in range(5)]  # done at 31..35
    events = [
        {"kind": "event", "name": "outage.start", "ts": 5.5, "server": "s"},
        {"kind": "event", "name": "outage.end", "ts": 25.0, "server": "s"},
    ]
    m = calculate_metrics(prompts + events, SlaTargets(recovery_s=20))
    [outage] = m.outages
    assert outage.recovery_s == pytest.approx(31.0 - 5.5)
    assert {v.metric: v.passed for v in m.sla}["recovery"] is False
    assert {v.metric: v.passed for v in calculate_metrics(prompts + events, SlaTargets()).sla}["recovery"] is True


def test_dropped_arrivals_are_failed_units():
    served = [prompt(i, float(i), i + 0.5) for i in range(24)]
    dropped = [
        {
            "kind": "arrival",
            "unit": "prompt",
            "outcome": "dropped",
            "intended_send_ts": 24.0 + i,
            "done_ts": 24.0 + i,
            "e2e_ms": None,
        }
        for i in range(16)
    ]
    m = calculate_metrics(served + dropped, SlaTargets())
    assert m.figures["error_rate_pct"] == pytest.approx(40.0)
    assert m.figures["units"]["dropped"] == 16 and "error_rate" in m.breached


def test_warmup_by_prompts_and_seconds():
    records = [prompt(i, float(i), i + 0.5) for i in range(10)]
    assert len(steady_state(records, SlaTargets(warmup_prompts=3))) == 7
    assert len(steady_state(records, SlaTargets(warmup_seconds=4))) == 6
    assert len(steady_state(records, SlaTargets(warmup_prompts=5, warmup_seconds=2))) == 5


def test_pages_are_the_unit_when_books_ran_and_concurrency_counts_books():
    pages = [{"kind": "page", "intended_send_ts": 0.0, "done_ts": 10.0, "e2e_ms": 10000, "outcome": "success"}]
    books = [{"kind": "book", "start_ts": s, "done_ts": e} for s, e in ((0, 10), (2, 8), (3, 12), (11, 20))]
    retried = [prompt(1, 0, 1, "oom", final=False)]
    v = {m.metric: m for m in evaluate(pages + books + retried, SlaTargets())}
    assert v["error_rate"].measured == 0
    assert v["concurrency"].measured == 3 and v["concurrency"].passed is False


def test_every_figure_names_the_population_it_covers():
    records = [prompt(i, float(i), i + 0.5) for i in range(20)]
    s = summarise(records, SlaTargets(warmup_prompts=10))
    assert s["population"]["judged"] == 10 and s["population"]["warmup_excluded"] == 10
    assert "warm-up" in s["population"]["label"]
    assert s["e2e_ms"]["count"] == 10, "the latency split covers the judged units, not all of them"
    assert "judged: 10 prompts" in format_summary(s)


@pytest.mark.parametrize(
    "text,match",
    [
        ("latency_p95_s: fast\n", "latency_p95_s must be a number"),
        ("latency_p95: 3\n", "unknown SLA key .latency_p95. \\(did you mean .latency_p95_s.\\?\\)"),
        ("[1, 2]\n", "expected a mapping"),
        ("a: [\n", "invalid YAML"),
        ("warmup: 5\n", "warmup must be a mapping"),
        ("error_budget_pct: -1\n", "must be a number >= 0"),
    ],
)
def test_bad_sla_file_is_one_clear_error(tmp_path, text, match):
    path = tmp_path / "sla.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=match):
        load_sla(path)


def test_repo_sla_file_matches_design_table():
    t = load_sla("sla.yaml")
    assert (t.throughput_images_per_min, t.concurrency_books, t.latency_p95_s, t.error_budget_pct, t.recovery_s) == (
        20,
        5,
        45,
        2,
        120,
    )


def test_summary_figures_and_text():
    records = [
        prompt(
            i,
            i * 2.0,
            i * 2.0 + 2.0,
            create_time=int(i * 2000 + 10),
            execution_start=int(i * 2000 + 110),
            execution_end=int(i * 2000 + 1910),
            queue_wait_ms=100,
            execution_ms=1800,
        )
        for i in range(30)
    ]
    s = summarise(records, SlaTargets())
    assert s["prompts_ok"] == 30 and s["prompts_failed"] == 0
    assert s["images_per_minute"] == pytest.approx(30.0)
    assert s["e2e_ms"]["p95"] == pytest.approx(2000.0)
    assert s["queue_wait_ms"]["p50"] == 100 and s["execution_ms"]["mean"] == 1800
    text = format_summary(s)
    assert "images per minute (judged window): 30.0" in text and "SLA verdict: PASS" in text


def test_audit_fails_the_verdict_when_a_record_is_dropped():
    from comfyload.analysis.audit import audit

    records = [prompt(i, i, i + 1) for i in range(10)] + [
        {"kind": "event", "name": "audit", "submitted": 10, "recorded": 10}
    ]
    assert audit(records)["ok"] is True
    assert summarise(records, SlaTargets())["sla_pass"] is True
    dropped = records[1:]  # one prompt record deliberately lost
    a = audit(dropped)
    assert a["ok"] is False and a["problem"] == "10 prompts submitted but 9 recorded"
    s = summarise(dropped, SlaTargets())
    assert s["sla_pass"] is False and s["breached"] == ["audit"]
    assert "audit (submitted or started / recorded): prompts 10/9: FAIL" in format_summary(s)


def test_audit_fails_on_a_record_counted_twice_and_sums_processes():
    from comfyload.analysis.audit import audit

    records = [prompt(i, i, i + 1) for i in range(4)]
    events = [{"kind": "event", "name": "audit", "submitted": 2}, {"kind": "event", "name": "audit", "submitted": 2}]
    assert audit(records + events)["ok"] is True, "two worker processes, 2 prompts each"
    doubled = audit(records + [records[0]] + events)
    assert doubled["ok"] is False and doubled["duplicated"] == ["0"]
    assert audit(records)["ok"] is None, "no audit event: not audited, shown as such"


def test_fleet_figures_per_server_and_imbalance_by_hand():
    # server a: 6 successes, 1 s apart, e2e 1..6 s; server b: 2 successes and 1 lost
    a = [prompt(i, float(i), i + 1.0 + i, server="a", queue_wait_ms=100 * i) for i in range(6)]
    b = [prompt(10 + i, float(i), i + 2.0, server="b", queue_wait_ms=50) for i in range(2)]
    b.append(prompt(20, 2.0, 2.5, "lost", server="b"))
    fleet = summarise(a + b, SlaTargets())["servers"]
    sa, sb = fleet["by_server"]["a"], fleet["by_server"]["b"]
    assert (sa["prompts"], sa["ok"], sa["failed"], sb["prompts"], sb["ok"], sb["failed"]) == (6, 6, 0, 3, 2, 1)
    assert sa["p95_ms"] == pytest.approx(5750.0)  # e2e 1000..6000 ms: 5000 + 0.75 * 1000
    assert sa["images_per_minute"] == pytest.approx(6 / (11 / 60))  # first send 0 s, last done 11 s
    # b is judged over the run's load window (0 s to the last completion, 11 s), not over its own
    # 3 s of life: a server that stopped early must not look fast
    assert sb["images_per_minute"] == pytest.approx(2 / (11 / 60))
    assert sa["queue_wait_p50_ms"] == pytest.approx(250.0)
    assert fleet["imbalance"] == pytest.approx(6 / 4)  # busiest 6 over an even share of 8 / 2


def test_a_fleet_server_that_died_shows_its_cut_off_work_as_failed_and_its_rate_over_the_whole_window():
    a = [prompt(i, float(i), i + 1.0, server="a") for i in range(20)]  # done 1..20 s
    b = [prompt(100 + i, float(i), i + 1.0, server="b") for i in range(5)]  # b died at 5.5 s
    b.append(prompt(199, 5.0, 20.0, "cut_off", server="b"))  # its last prompt, cut off at the end
    events = [
        {"kind": "event", "name": "outage.start", "ts": 5.5, "server": "b"},
        {"kind": "event", "name": "load.end", "ts": 20.0},
    ]
    fleet = summarise(a + b + events, SlaTargets())["servers"]["by_server"]
    assert fleet["b"]["failed"] == 1, "in flight on a dead server at the end is a failure"
    assert fleet["b"]["images_per_minute"] == pytest.approx(5 / (20 / 60)), "over the load window, not 5 s of life"
