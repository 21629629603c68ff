"""Unit: retry policy, arrival processes, book profiles, the ramp's bisection."""

import random
import statistics
from types import SimpleNamespace

import pytest

from comfyload.common.errors import UserError
from comfyload.workloads.book import load_book_mix
from comfyload.workloads.open_loop import arrival_model
from comfyload.workloads.retry import RetryPolicy, parse_backoff


def test_backoff_last_value_repeats():
    policy = RetryPolicy(max_retries=5, backoff_s=(15, 45, 90))
    assert [policy.delay(k) for k in range(1, 6)] == [15, 45, 90, 90, 90]


def test_validation_error_is_retried_once_then_needs_regeneration():
    policy = RetryPolicy(max_retries=3, backoff_s=(1,))
    first = policy.decide("validation_error", retries_so_far=0, validation_failures=1)
    assert first.retry and first.delay_s == 1
    second = policy.decide("validation_error", retries_so_far=1, validation_failures=2)
    assert not second.retry and second.needs_regeneration


@pytest.mark.parametrize("outcome", ["oom", "execution_error", "timeout", "lost", "interrupted"])
def test_other_failures_retry_up_to_max_then_need_regeneration(outcome):
    policy = RetryPolicy(max_retries=2, backoff_s=(15, 45))
    assert policy.decide(outcome, 0, 0).delay_s == 15
    assert policy.decide(outcome, 1, 0).delay_s == 45
    final = policy.decide(outcome, 2, 0)
    assert not final.retry and final.needs_regeneration
    assert not policy.decide("success", 0, 0).retry


def test_parse_backoff():
    assert parse_backoff("15,45,90") == (15.0, 45.0, 90.0)
    for bad in ("", "a,b", "-1"):
        with pytest.raises(UserError, match="--retry-backoff-sec"):
            parse_backoff(bad)


@pytest.mark.parametrize("kind", ["poisson", "constant", "gamma"])
def test_every_arrival_model_has_mean_one_over_rate(kind):
    gaps = arrival_model(kind, rate=4.0, gamma_cv=2.0).gaps(random.Random(1))
    sample = [next(gaps) for _ in range(20000)]
    assert statistics.mean(sample) == pytest.approx(0.25, rel=0.05)


def test_gamma_is_burstier_than_poisson():
    def cv(kind):
        gaps = arrival_model(kind, 1.0, 3.0).gaps(random.Random(2))
        sample = [next(gaps) for _ in range(20000)]
        return statistics.pstdev(sample) / statistics.mean(sample)

    assert cv("constant") == 0
    assert cv("poisson") == pytest.approx(1.0, rel=0.05)
    assert cv("gamma") == pytest.approx(3.0, rel=0.1)


def test_bad_arrival_settings():
    with pytest.raises(UserError, match="--arrival must be"):
        arrival_model("burst", 1, 1)
    with pytest.raises(UserError, match="--arrival-rate"):
        arrival_model("poisson", 0, 1)


def test_book_mix_weights_and_errors(tmp_path):
    mix = load_book_mix("cpu_small:3,cpu_medium:1")
    picks = [mix.pick(random.Random(i)).name for i in range(2000)]
    assert picks.count("cpu_small") / len(picks) == pytest.approx(0.75, abs=0.04)
    assert mix.profiles[1].pages == 12
    with pytest.raises(UserError, match="unknown profile 'huge'"):
        load_book_mix("huge")
    with pytest.raises(UserError, match="weight of small must be a number > 0"):
        load_book_mix("small:x")
    bad = tmp_path / "books.yaml"
    bad.write_text("p: {pages: 0, workflow: cpu_smoke}\n")
    with pytest.raises(UserError, match="pages must be an integer >= 1"):
        load_book_mix("p", bad)


def test_per_page_workflows_cycle():
    mix = load_book_mix("fault_once_book", "tests/workflows/books.yaml")
    profile = mix.profiles[0]
    assert [profile.workflow_for(n).name for n in (1, 2, 3)] == ["sleep_short", "fault_once", "sleep_short"]


@pytest.mark.parametrize(
    "passed,level,expected",
    [
        ({}, 2, 4),  # nothing judged yet: up a step
        ({2: True, 4: True}, 4, 6),
        ({2: True, 4: True, 6: False}, 6, 5),  # bisect between 4 and 6
        ({2: True, 4: True, 6: False, 5: False}, 5, None),  # 4 and 5 adjacent: done, knee 4
        ({2: True, 4: True, 6: False, 5: True}, 5, None),
        ({2: False}, 2, None),  # the first step already breaches
        ({2: True, 10: True, 12: True}, 12, None),  # ramp_max reached
        ({2: True, 10: False}, 10, 6),
    ],
)
def test_ramp_next_level(passed, level, expected):
    from comfyload.analysis.ramp import next_level

    assert next_level(passed, level, step=2, maximum=12) == expected


def test_knee_is_the_most_users_that_passed():
    from comfyload.analysis.ramp import knee_event

    steps = {
        u: {
            "users": u,
            "passed": ok,
            "start_ts": u - 1,
            "settled_ts": u,
            "end_ts": u + 1,
            "images_per_min": u * 10.0,
            "p95_s": u / 2,
        }
        for u, ok in ((2, True), (4, True), (6, False), (5, False))
    }
    knee = knee_event(steps, "books")
    assert (knee["users"], knee["first_breach"], knee["window"], knee["images_per_min"]) == (4, 5, [4, 5], 40.0)
    assert knee_event({2: {**steps[2], "passed": False}}, "books")["users"] == 0


def test_step_judged_on_its_own_window_after_settling():
    from comfyload.analysis.ramp import judge_step
    from comfyload.analysis.sla import SlaTargets

    early = [{"kind": "prompt", "intended_send_ts": 100.5, "done_ts": 110, "e2e_ms": 9500, "outcome": "success"}]
    steady = [
        {"kind": "prompt", "intended_send_ts": 103 + i, "done_ts": 104 + i, "e2e_ms": 1000, "outcome": "success"}
        for i in range(5)
    ]
    late = [{"kind": "prompt", "intended_send_ts": 109, "done_ts": 115, "e2e_ms": 6000, "outcome": "success"}]
    harness = SimpleNamespace(recent=early + steady + late, sla=SlaTargets(latency_p95_s=2))
    step = judge_step(harness, users=3, start=100.0, end=110.0)
    assert step["renders"] == 5 and step["passed"] and step["p95_s"] == pytest.approx(1.0)
    harness.recent.append({"kind": "gpu", "ts": 105, "util_gpu": 97})
    assert judge_step(harness, 3, 100.0, 110.0)["breached"] == ["gpu_saturated"]


def test_step_window_opens_when_the_previous_levels_work_is_done():
    from comfyload.analysis.ramp import judge_step
    from comfyload.analysis.sla import SlaTargets

    # sent at the previous level, still queued until 105.5: prompts sent before then waited behind it
    carried = [{"kind": "prompt", "intended_send_ts": 99.0, "done_ts": 105.5, "e2e_ms": 6500, "outcome": "success"}]
    behind = [{"kind": "prompt", "intended_send_ts": 103.0, "done_ts": 109.0, "e2e_ms": 6000, "outcome": "success"}]
    steady = [
        {"kind": "prompt", "intended_send_ts": 106 + i, "done_ts": 107 + i, "e2e_ms": 1000, "outcome": "success"}
        for i in range(3)
    ]
    harness = SimpleNamespace(recent=carried + behind + steady, sla=SlaTargets(latency_p95_s=2))
    step = judge_step(harness, users=2, start=100.0, end=110.0)
    assert step["settled_ts"] == 105.5 and step["renders"] == 3 and step["passed"]
