"""Unit: ComfyUI's type rule across a link and the cycle finder of comfyload.protocol.graph_check.
The type cases are the docstring examples of `validate_node_input` in Comfy-Org/ComfyUI
comfy_execution/validation.py (commit a125cd84b054a57729b5eecab930ca9408719832; the `*` and
MatchType rules from commit 503745c94c75896cfac4419f651a6993098fecc5)."""

import pytest

from comfyload.protocol.graph_check import graph_problems, types_match


@pytest.mark.parametrize(
    "received,expected,ok",
    [
        ("IMAGE", "IMAGE", True),
        ("LATENT", "IMAGE", False),
        ("STRING", "STRING,INT", True),  # a union input takes any of its members
        ("STRING,BOOLEAN", "STRING,INT", True),  # non-strict: the unions overlap
        ("FLOAT", "INT, STRING", False),
        ("*", "MODEL", True),  # the Any type
        ("VAE", "*", True),
        ("INT,*", "MODEL", True),
        ("COMFY_MATCHTYPE_V3", "IMAGE", True),  # checked by the frontend only
        (["a", "b"], "COMBO", True),  # a custom node's list of options into a COMBO
        (["a", "b"], "STRING", False),
    ],
)
def test_link_types_follow_comfyui_validate_node_input(received, expected, ok):
    assert types_match(received, expected) is ok


INFO = {
    "Src": {"input": {"required": {}}, "output": ["IMAGE", "MASK"]},
    "Mid": {"input": {"required": {"image": ["IMAGE"]}, "optional": {"mask": ["MASK"]}}, "output": ["IMAGE"]},
    "Out": {"input": {"required": {"images": ["IMAGE"]}}, "output": [], "output_node": True},
}


def test_a_clean_graph_has_no_problems_and_optional_inputs_may_be_left_out():
    graph = {
        "1": {"class_type": "Src", "inputs": {}},
        "2": {"class_type": "Mid", "inputs": {"image": ["1", 0]}},
        "3": {"class_type": "Out", "inputs": {"images": ["2", 0]}},
    }
    assert graph_problems(graph, INFO) == []


def test_every_problem_is_listed_at_once():
    graph = {
        "1": {"class_type": "Src", "inputs": {}},
        "2": {"class_type": "Mid", "inputs": {"image": ["1", 1], "mask": ["1", 5]}},
        "3": {"class_type": "Mid", "inputs": {"image": ["4", 0]}},
        "4": {"class_type": "Mid", "inputs": {"image": ["3", 0]}},
        "5": {"class_type": "Out", "inputs": {}},
    }
    problems = graph_problems(graph, INFO)
    assert problems == [
        "node 2 (Mid) input image: expects IMAGE but node 1 (Src) slot 1 gives MASK",
        "node 2 (Mid) input mask: links to output slot 5 of node 1 (Src), which has outputs 0-1",
        "node 5 (Out) input images: required input missing",
        "nodes 3 -> 4 -> 3 form a cycle (a node waits on itself)",
    ]


def test_no_output_node_is_named():
    problems = graph_problems({"1": {"class_type": "Src", "inputs": {}}}, INFO)
    assert problems and problems[0].startswith("no output node")
