"""Unit: workflow loading, cache-busting parameters, validation against /object_info."""
import json
import random

import pytest

from comfyload.common.errors import UserError
from comfyload.protocol.workload import load_workflow, validate_against_server


def test_cpu_smoke_varies_its_nonce_and_keeps_the_rest():
    wf = load_workflow("cpu_smoke")
    a, b = wf.parameterise(random.Random(1)), wf.parameterise(random.Random(2))
    assert a["1"]["inputs"]["color"] != b["1"]["inputs"]["color"]
    assert a["2"] == b["2"] and a["3"] == b["3"]
    assert wf.graph["1"]["inputs"]["color"] == 0, "the template itself is never modified"
    assert len(wf.sha256) == 64


def test_sampler_seeds_are_always_varied(tmp_path):
    path = tmp_path / "wf.json"
    path.write_text(json.dumps({"1": {"class_type": "KSampler", "inputs": {"seed": 5, "model": ["2", 0]}},
                                "2": {"class_type": "RandomNoise", "inputs": {"noise_seed": 5}}}))
    wf = load_workflow(str(path))
    g = wf.parameterise(random.Random(7))
    assert g["1"]["inputs"]["seed"] != 5 and g["2"]["inputs"]["noise_seed"] != 5
    assert g["1"]["inputs"]["model"] == ["2", 0], "links are never touched"
    assert wf.parameterise(random.Random(7)) == g, "same rng seed, same parameters"


def test_spec_pool_and_suffix(tmp_path):
    (tmp_path / "wf.json").write_text(json.dumps({"1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat"}},
                                                  "2": {"class_type": "X", "inputs": {"style": "a"}}}))
    (tmp_path / "wf.spec.yaml").write_text("varying:\n  - {node: 1, input: text, kind: suffix}\n"
                                           "  - {node: '2', input: style, kind: pool, values: [b, c]}\n")
    g = load_workflow(str(tmp_path / "wf.json")).parameterise(random.Random(3))
    assert g["1"]["inputs"]["text"].startswith("a cat ") and len(g["1"]["inputs"]["text"]) > 8
    assert g["2"]["inputs"]["style"] in ("b", "c")


def test_invalid_json_names_the_position(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"1": {"class_type": "A",\n "inputs": {}}')
    with pytest.raises(UserError, match=r"invalid JSON at line 2 column"):
        load_workflow(str(path))


def test_ui_format_is_named(tmp_path):
    path = tmp_path / "ui.json"
    path.write_text(json.dumps({"nodes": [], "links": []}))
    with pytest.raises(UserError, match="Save \\(API Format\\)"):
        load_workflow(str(path))


def test_missing_file_and_bad_spec(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_workflow("no_such_workflow")
    (tmp_path / "wf.json").write_text(json.dumps({"1": {"class_type": "A", "inputs": {}}}))
    (tmp_path / "wf.spec.yaml").write_text("varying:\n  - {node: '1', input: nope}\n")
    with pytest.raises(UserError, match="1.nope is not in the workflow"):
        load_workflow(str(tmp_path / "wf.json"))


OBJECT_INFO = {
    "CheckpointLoaderSimple": {"input": {"required": {"ckpt_name": [["sd15.safetensors"], {}]}}},
    "KSampler": {"input": {"required": {"sampler_name": ["COMBO", {"options": ["euler", "dpmpp_2m"]}]}}},
}


def test_validation_names_unknown_class_and_missing_model_in_one_error():
    graph = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "missing.safetensors"}},
             "2": {"class_type": "NoSuchNode", "inputs": {}},
             "3": {"class_type": "KSampler", "inputs": {"sampler_name": "euler"}}}
    with pytest.raises(UserError) as err:
        validate_against_server(graph, OBJECT_INFO, "wf")
    text = str(err.value)
    assert "unknown node class 'NoSuchNode'" in text
    assert "missing model ckpt_name='missing.safetensors'" in text
    assert "\n" not in text


def test_validation_passes_known_values():
    validate_against_server({"3": {"class_type": "KSampler", "inputs": {"sampler_name": "dpmpp_2m"}}}, OBJECT_INFO, "wf")


def test_shipped_workflows_load():
    for name in ("cpu_smoke",):
        assert load_workflow(name).graph
