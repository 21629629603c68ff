"""The adaptive ramp's statistics against values computed by hand or by a closed form."""

import math

import pytest

from comfyload.analysis.adaptive import (
    binom_cdf,
    completions_needed,
    exceedance_interval,
    knee_interval,
    next_level,
    quantile_interval,
    step_verdict,
)


def test_binom_cdf_small_cases():
    assert binom_cdf(0, 3, 0.5) == pytest.approx(1 / 8)
    assert binom_cdf(1, 3, 0.5) == pytest.approx(4 / 8)
    assert binom_cdf(2, 10, 0.1) == pytest.approx(sum(math.comb(10, k) * 0.1**k * 0.9 ** (10 - k) for k in range(3)))


def test_clopper_pearson_closed_forms():
    # m = 0: upper = 1 - (a)^(1/n); m = n: lower = a^(1/n), with a = (1 - confidence) / 2
    lo, hi = exceedance_interval(0, 20, 0.9)
    assert lo == 0 and hi == pytest.approx(1 - 0.05 ** (1 / 20), abs=1e-9)
    lo, hi = exceedance_interval(5, 5, 0.9)
    assert lo == pytest.approx(0.05 ** (1 / 5), abs=1e-9) and hi == 1


def test_step_verdict_decides_failure_fast_and_pass_after_enough_pages():
    assert step_verdict([5.0, 5.1], target=4.5, confidence=0.9) is False  # 2/2 over: lower bound 0.22 > 0.05
    # all under: decided once 1 - 0.05^(1/n) < 0.05, i.e. n >= 59 at 90 % two-sided
    assert step_verdict([4.0] * 58, 4.5, 0.9) is None
    assert step_verdict([4.0] * 59, 4.5, 0.9) is True
    mixed = [4.0] * 90 + [4.6] * 10  # 10 % over: p95 breached, decided at this n
    assert step_verdict(mixed, 4.5, 0.9) is False
    assert step_verdict([4.0] * 19 + [4.6], 4.5, 0.9) is None  # 1 of 20 over: cannot tell yet


def test_completions_needed_matches_the_normal_approximation():
    # (2z)^2 q(1-q) / w^2 with z(90 %) = 1.645: 10.82 * 0.0475 / 0.01 = 51.4 -> 52
    assert completions_needed(0.1, 0.9) == 52
    assert completions_needed(0.05, 0.9) == 4 * 52 - 2  # quarter the width -> 4x the pages (ceil aside)


def test_quantile_interval_brackets_the_p95_rank():
    xs = list(range(1, 101))  # p95 ~ 95
    lo, hi = quantile_interval(xs, 0.9)
    assert lo <= 95 <= hi and hi - lo <= 8


@pytest.mark.parametrize(
    "passed,expected",
    [
        ({}, 4),  # start at the prediction
        ({4: True}, 5),
        ({4: True, 5: False}, None),  # prediction right: two steps
        ({4: False}, 3),
        ({4: False, 3: True}, None),
        ({4: False, 3: False}, 1),
        ({4: False, 3: False, 1: True}, 2),  # far off: down by 1, 2, 4 ..., then bisect
        ({4: True, 5: True}, 7),
        ({4: True, 5: True, 7: True}, 11),
        ({4: True, 5: True, 7: True, 11: False}, 9),
        ({4: True, 9: False}, 6),  # bisect a wide bracket
        ({1: False}, None),  # nothing passes
    ],
)
def test_next_level_starts_at_the_prediction(passed, expected):
    pred = 1 if 1 in passed else 4
    assert next_level(passed, pred, maximum=20) == expected


@pytest.mark.parametrize(
    "passed,hint,expected",
    [
        ({9: False}, 3, 3),  # the service time rose: the new prediction jumps down
        ({9: False, 3: True}, 3, 4),  # a pass at the hint: the next level up inside the bracket
        ({9: False, 3: True, 4: False}, 3, None),
        ({4: True}, 12, 12),
        ({4: True}, 30, 20),  # a jump up, capped at the maximum
        ({4: True}, 2, 5),  # a hint the steps already refute is moved inside the bracket
    ],
)
def test_next_level_follows_a_fresh_prediction_inside_the_bracket(passed, hint, expected):
    assert next_level(passed, 9, maximum=20, hint=hint) == expected


def test_knee_interval_widens_for_undecided_steps():
    decided = {4: {"passed": True, "decided": True}, 5: {"passed": False, "decided": True}}
    assert knee_interval(decided) == (4, 4)
    soft = {
        4: {"passed": True, "decided": False},
        5: {"passed": False, "decided": True},
        3: {"passed": True, "decided": True},
    }
    assert knee_interval(soft) == (3, 4)
