"""Integration: `comfyload check` and preflight's graph check against the real local ComfyUI's
/object_info. Each broken graph is also POSTed to the same server's /prompt, which must refuse
it too (HTTP 400: ComfyUI's execution.validate_prompt, Comfy-Org/ComfyUI execution.py at
a125cd84b054a57729b5eecab930ca9408719832), so the check says what the server would say; and every
shipped workflow passes (a model the spec lists but this server lacks is the only thing named)."""

import copy
import json

import pytest
import requests
from conftest import run_cli

from comfyload.protocol.graph_check import graph_problems
from comfyload.protocol.workload import WORKFLOWS_DIR, load_workflow

pytestmark = pytest.mark.integration

SMOKE = {
    "1": {"class_type": "EmptyImage", "inputs": {"width": 64, "height": 64, "batch_size": 1, "color": 0}},
    "2": {"class_type": "ImageBlur", "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.0}},
    "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": "comfyload/check"}},
}


def edited(*edits):
    """SMOKE with (node, input, value) set (value None: the input removed; input None: the node
    set to `value`, or removed when None)."""
    graph = copy.deepcopy(SMOKE)
    for node, name, value in edits:
        if name is None:
            graph.pop(node) if value is None else graph.__setitem__(node, value)
        elif value is None:
            graph[node]["inputs"].pop(name)
        else:
            graph[node]["inputs"][name] = value
    return graph


BROKEN = {
    "link to a missing node": (
        edited(("2", "image", ["9", 0])),
        "node 2 (ImageBlur) input image: links to node 9, which is not in the workflow",
    ),
    "link to a missing output slot": (
        edited(("2", "image", ["1", 3])),
        "node 2 (ImageBlur) input image: links to output slot 3 of node 1 (EmptyImage), which has outputs 0-0",
    ),
    "LATENT wired into IMAGE": (
        edited(("4", None, {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}))
        | {"2": {**SMOKE["2"], "inputs": {**SMOKE["2"]["inputs"], "image": ["4", 0]}}},
        "node 2 (ImageBlur) input image: expects IMAGE but node 4 (EmptyLatentImage) slot 0 gives LATENT",
    ),
    "output node missing its required input": (
        edited(("3", "images", None)),
        "node 3 (SaveImage) input images: required input missing",
    ),
    "no output node": (edited(("3", None, None)), "no output node"),
    "a cycle": (
        edited(("2", "image", ["5", 0]), ("5", None, {"class_type": "ImageInvert", "inputs": {"image": ["2", 0]}})),
        "nodes 2 -> 5 -> 2 form a cycle",
    ),
    "COMBO value not offered": (
        edited(
            (
                "4",
                None,
                {
                    "class_type": "ImageScale",
                    "inputs": {
                        "image": ["1", 0],
                        "upscale_method": "bogus",
                        "width": 32,
                        "height": 32,
                        "crop": "disabled",
                    },
                },
            ),
            ("3", "images", ["4", 0]),
        ),
        "node 4 (ImageScale): upscale_method='bogus' is not one of the server's choices",
    ),
    "number below the minimum": (
        edited(("1", "width", 0)),
        "node 1 (EmptyImage): width=0 is below the server's minimum 1",
    ),
    "INT given as text": (edited(("1", "width", "twelve")), "node 1 (EmptyImage): width='twelve' must be INT"),
    "missing model": (
        edited(
            ("4", None, {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "nope.safetensors"}}),
            ("5", None, {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}),
            ("6", None, {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["4", 2]}}),
            ("3", "images", ["6", 0]),
        ),
        "node 4 (CheckpointLoaderSimple): missing model ckpt_name='nope.safetensors' on the server",
    ),
    "missing input file": (
        edited(("4", None, {"class_type": "LoadImage", "inputs": {"image": "nope.png"}}), ("2", "image", ["4", 0])),
        "node 4 (LoadImage): input file image='nope.png' is not on the server",
    ),
    "unknown node class": (
        edited(("4", None, {"class_type": "NoSuchNode", "inputs": {}})),
        "node 4: unknown node class 'NoSuchNode' (not installed on the server)",
    ),
    "a link that is not [node, slot]": (
        edited(("2", "image", ["1"])),
        "node 2 (ImageBlur) input image: a link must be [node_id, output_slot], not ['1']",
    ),
}


@pytest.fixture(scope="module")
def object_info(comfy):
    return requests.get(comfy + "/object_info", timeout=60).json()


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_each_broken_graph_is_named_as_the_server_refuses_it(comfy, object_info, case):
    graph, said = BROKEN[case]
    problems = graph_problems(graph, object_info)
    assert len(problems) == 1 and problems[0].startswith(said), problems
    if case != "a cycle":  # a cycle is refused only when it runs (dependency_cycle): not queued here
        answer = requests.post(comfy + "/prompt", json={"prompt": graph}, timeout=30)
        assert answer.status_code == 400, f"the server accepted {case}: {answer.text[:300]}"


def test_every_problem_of_one_graph_in_one_line_exit_2(comfy, tmp_path):
    graph = edited(("1", "width", 0), ("2", "image", ["9", 0]), ("3", "images", None), ("3", "filename_prefix", 5))
    graph["4"] = {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}}
    graph["5"] = {"class_type": "SaveImage", "inputs": {"images": ["4", 0], "filename_prefix": "x"}}
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(graph))
    proc = run_cli("check", str(path), "--host", comfy)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for said in (
        "4 problems",
        "node 1 (EmptyImage): width=0 is below the server's minimum 1",
        "node 2 (ImageBlur) input image: links to node 9",
        "node 3 (SaveImage) input images: required input missing",
        "node 5 (SaveImage) input images: expects IMAGE but node 4 (EmptyLatentImage) slot 0 gives LATENT",
        f"checked against {comfy}",
    ):
        assert said in lines[0], said
    run = run_cli("run", "--host", comfy, "--workflow", str(path), "--jobs", "1")
    assert run.returncode == 2 and "4 problems" in run.stderr, "preflight refuses it before any load"
    assert "Traceback" not in proc.stderr + run.stderr


def test_ui_format_is_refused_with_how_to_export(comfy, tmp_path):
    path = tmp_path / "ui.json"
    path.write_text(json.dumps({"nodes": [{"id": 1}], "links": []}))
    proc = run_cli("check", str(path), "--host", comfy)
    assert proc.returncode == 2 and "Export (API)" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


SHIPPED = sorted(str(p.relative_to(WORKFLOWS_DIR).with_suffix("")) for p in WORKFLOWS_DIR.rglob("*.json"))


def test_every_shipped_workflow_passes(comfy, object_info):
    """Nothing but a model this server lacks (one the spec's `models:` lists) may be named."""
    assert len(SHIPPED) >= 10
    for name in SHIPPED:
        wf = load_workflow(name)
        problems = graph_problems(wf.graph, object_info, {i.key for i in wf.inputs})
        if wf.expect_invalid:
            assert problems, f"{name} says expect_invalid but passes"
            continue
        listed = {m["name"] for m in wf.models}
        left = [p for p in problems if not any("missing model" in p and f"'{m}'" in p for m in listed)]
        assert not left, f"{name}: {left}"


def test_check_command_says_ok_and_which_server(comfy):
    proc = run_cli("check", "cpu_smoke", "--host", comfy)
    assert proc.returncode == 0, proc.stderr
    assert "workflow cpu_smoke: OK" in proc.stdout and comfy in proc.stdout and "ComfyUI 0.3.75" in proc.stdout
    drill = run_cli("check", "drills/page_empty", "--host", comfy)
    assert drill.returncode == 0 and "refused as its spec expects" in drill.stdout and "no output node" in drill.stdout
