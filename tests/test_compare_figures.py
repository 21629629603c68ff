"""`compare` judges every SLA figure with its noise, and refuses runs offered different load."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
from conftest import REPO
from synthetic import meta_for, prompt_record, write_run_folder

from comfyload.common.errors import UserError
from reports.compare import compare_runs

SLA = {
    "throughput_images_per_min": 1,
    "concurrency_books": 0,
    "latency_p95_s": 45,
    "error_budget_pct": 50,
    "recovery_s": 120,
    "warmup_seconds": 0,
    "warmup_prompts": 0,
}


def steady(seed=0, n=300, failed_every=0):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        send = 1000.0 + i
        failed = failed_every and i % failed_every == 0
        out.append(
            prompt_record(send, send + rng.uniform(1.0, 2.0), outcome="execution_error" if failed else "success")
        )
    return out


def folder(tmp_path, name, records, **parameters):
    meta = meta_for(sla=SLA)
    meta["parameters"].update(parameters)
    return write_run_folder(tmp_path / name, records, meta=meta)


def by_metric(result) -> dict:
    return {j.metric: j for j in result["judged"]}


def cli(*args):
    return subprocess.run([sys.executable, "-m", "reports", *args], cwd=str(REPO), capture_output=True, text=True)


def test_every_sla_figure_is_judged_and_the_noise_method_is_stated(tmp_path):
    a, b = folder(tmp_path, "a", steady(0)), folder(tmp_path, "b", steady(1))
    result = compare_runs(a, b, REPO / "sla.yaml")
    judged = by_metric(result)
    assert set(judged) == {"throughput", "p95 latency", "p99 latency", "p50 latency", "error rate", "recovery", "books"}
    for name in ("throughput", "p95 latency", "p99 latency"):
        low, high = judged[name].diff_ci
        assert low < 0 < high and judged[name].verdict == "no change", name  # same process, other seed: noise
    assert judged["recovery"].verdict == "not measured"
    proc = cli("compare", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    assert "per-request bootstrap" in proc.stdout and "p99 latency" in proc.stdout and "error rate" in proc.stdout


def test_a_rise_in_the_error_rate_is_a_regression_named_by_its_figure(tmp_path):
    a, b = folder(tmp_path, "a", steady(0)), folder(tmp_path, "b", steady(0, failed_every=10))
    judged = by_metric(compare_runs(a, b, REPO / "sla.yaml"))
    assert judged["error rate"].candidate == pytest.approx(10.0)
    assert judged["error rate"].diff_ci[0] > 0 and judged["error rate"].verdict == "regression"
    proc = cli("compare", str(a), str(b))
    assert proc.returncode == 1 and "error rate" in proc.stdout and "regression" in proc.stdout


def test_a_longer_tail_is_a_p99_regression(tmp_path):
    base = steady(0)
    tail = [dict(r) for r in base]
    for r in tail[::25]:  # 4 % of requests 3x slower: p99 moves, p95 does not
        r["e2e_ms"] *= 3
        r["done_ts"] = r["intended_send_ts"] + r["e2e_ms"] / 1000.0
    judged = by_metric(compare_runs(folder(tmp_path, "a", base), folder(tmp_path, "b", tail), REPO / "sla.yaml"))
    assert judged["p99 latency"].verdict == "regression"
    assert judged["p95 latency"].verdict == "no change"


@pytest.mark.parametrize(
    "changed,named",
    [({"num_users": 4}, "users 2 vs 4"), ({"jobs": 12}, "jobs None vs 12"), ({"run_time": 30}, "run time 60 vs 30")],
)
def test_compare_refuses_runs_offered_different_load_in_one_line_unless_forced(tmp_path, changed, named):
    a, b = folder(tmp_path, "a", steady(0)), folder(tmp_path, "b", steady(0), **changed)
    proc = cli("compare", str(a), str(b))
    assert proc.returncode == 2 and proc.stdout == ""
    [line] = proc.stderr.strip().splitlines()
    assert "different load" in line and named in line and "--force" in line
    forced = cli("compare", str(a), str(b), "--force")
    assert forced.returncode == 0 and "offered load differs" in forced.stdout


def test_arrival_rate_counts_for_open_loop_runs_only(tmp_path):
    closed = [folder(tmp_path, n, steady(0), arrival_rate=r) for n, r in (("a", 1.0), ("b", 2.0))]
    compare_runs(*closed, REPO / "sla.yaml")  # PromptUser: the rate was never used
    open_ = [
        folder(tmp_path, n, steady(0), arrival_rate=r, user_classes=["OpenLoopUser"])
        for n, r in (("c", 1.0), ("d", 2.0))
    ]
    with pytest.raises(UserError, match="arrival rate 1.0 vs 2.0"):
        compare_runs(*open_, REPO / "sla.yaml")


def sample(recovery=(), books=None):
    import numpy as np

    from reports.bootstrap import Sample

    return Sample(np.array([1000.0]), np.array([1.0]), 0.0, np.array([1.0]), list(recovery), books)


def test_recovery_and_books_are_judged_without_an_interval_and_say_why():
    from comfyload.analysis.sla import CompareThresholds
    from reports.compare import judge_books, judge_recovery

    limits = CompareThresholds()
    assert judge_recovery(sample([10.0]), sample([11.0]), limits).verdict == "no change"
    slower = judge_recovery(sample([10.0]), sample([14.0]), limits)
    assert slower.verdict == "regression" and slower.delta_pct == pytest.approx(40.0)
    assert slower.diff_ci is None and slower.method == "no interval: 1 vs 1 outage(s)"
    assert judge_recovery(sample([10.0]), sample([None]), limits).verdict == "regression"  # never recovered
    assert judge_books(sample(books=5), sample(books=4)).verdict == "regression"
    assert judge_books(sample(books=5), sample(books=5)).verdict == "no change"
    assert judge_books(sample(), sample()).verdict == "not measured"


def test_a_tail_figure_with_too_few_requests_beyond_it_is_not_judged(tmp_path):
    """40 requests: one or two lie beyond the p99, whose resamples then sit on one value (an
    interval too narrow to trust); p95 has two beyond it and is judged."""
    base = steady(0, n=40)
    slow_tail = [dict(r) for r in base]
    for r in sorted(slow_tail, key=lambda r: r["e2e_ms"])[-1:]:
        r["e2e_ms"] *= 3
        r["done_ts"] = r["intended_send_ts"] + r["e2e_ms"] / 1000.0
    judged = by_metric(compare_runs(folder(tmp_path, "a", base), folder(tmp_path, "b", slow_tail), REPO / "sla.yaml"))
    assert judged["p99 latency"].verdict == "not judged"
    assert judged["p99 latency"].method == "too few requests for its interval (40 < 200)"
    assert judged["p95 latency"].method == "bootstrap"
