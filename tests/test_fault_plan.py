"""Unit: a fault scenario's schedule is checked before anything runs."""

import pytest

from comfyload.common.errors import UserError
from comfyload.orchestration.faults import parse_fault_plan


def plan(*items):
    return parse_fault_plan({"schedule": list(items)}, "drill.yaml")


def test_a_good_schedule_and_the_injection_option():
    p = plan(
        {"at": 4, "inject_sleep": 3.0, "for": 15},
        {"at": 1, "crash": {"restart_after": 2}},
        {"at": 2, "proxy": {"type": "latency", "latency": 200, "jitter": 50}, "for": 3},
    )
    assert [s.action for s in p.steps] == ["crash", "proxy", "inject_sleep"]
    assert p.inject_sleep_option() == "4-19:3" and p.uses_proxy and p.uses_crash


@pytest.mark.parametrize(
    "item,message",
    [
        ({"at": 1, "crash": "now"}, "must be a mapping"),
        ({"at": 1, "inject_sleep": "soon"}, "inject_sleep seconds must be a number"),
        ({"at": 1, "proxy": {"type": "latency", "latency": 10}, "for": "x"}, "for must be a number"),
        ({"at": -1, "crash": {}}, "needs `at`"),
        ({"at": 1, "crash": {"restart_after": "later"}}, "restart_after must be a number"),
        ({"at": 1, "proxy": {"type": "loss", "percent": 5}}, "unknown toxic 'loss'"),
        ({"at": 1, "crash": {}, "proxy": {"type": "latency"}}, "one of proxy, crash, inject_sleep"),
    ],
)
def test_a_bad_schedule_item_is_one_clear_error(item, message):
    with pytest.raises(UserError, match=message):
        plan(item)
