"""Unit: workflow loading, cache-busting parameters, validation against /object_info."""

import json
import random

import pytest

from comfyload.common.errors import UserError
from comfyload.protocol.workload import WORKFLOWS_DIR, load_workflow, validate_against_server


def test_cpu_smoke_varies_its_nonce_and_keeps_the_rest():
    wf = load_workflow("cpu_smoke")
    a, b = wf.parameterise(random.Random(1)), wf.parameterise(random.Random(2))
    assert a["1"]["inputs"]["color"] != b["1"]["inputs"]["color"]
    assert a["2"] == b["2"] and a["3"] == b["3"]
    assert wf.graph["1"]["inputs"]["color"] == 0, "the template itself is never modified"
    assert len(wf.sha256) == 64


def test_sampler_seeds_are_always_varied(tmp_path):
    path = tmp_path / "wf.json"
    path.write_text(
        json.dumps(
            {
                "1": {"class_type": "KSampler", "inputs": {"seed": 5, "model": ["2", 0]}},
                "2": {"class_type": "RandomNoise", "inputs": {"noise_seed": 5}},
            }
        )
    )
    wf = load_workflow(str(path))
    g = wf.parameterise(random.Random(7))
    assert g["1"]["inputs"]["seed"] != 5 and g["2"]["inputs"]["noise_seed"] != 5
    assert g["1"]["inputs"]["model"] == ["2", 0], "links are never touched"
    assert wf.parameterise(random.Random(7)) == g, "same rng seed, same parameters"


def test_spec_pool_and_suffix(tmp_path):
    (tmp_path / "wf.json").write_text(
        json.dumps(
            {
                "1": {"class_type": "CLIPTextEncode", "inputs": {"text": "a cat"}},
                "2": {"class_type": "X", "inputs": {"style": "a"}},
            }
        )
    )
    (tmp_path / "wf.spec.yaml").write_text(
        "varying:\n  - {node: 1, input: text, kind: suffix}\n"
        "  - {node: '2', input: style, kind: pool, values: [b, c]}\n"
    )
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
    with pytest.raises(UserError, match="Export \\(API\\)"):
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
    "SaveImage": {"input": {"required": {}}, "output": [], "output_node": True},
}
SAVE = {"9": {"class_type": "SaveImage", "inputs": {}}}


def test_validation_names_unknown_class_and_missing_model_in_one_error():
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "missing.safetensors"}},
        "2": {"class_type": "NoSuchNode", "inputs": {}},
        "3": {"class_type": "KSampler", "inputs": {"sampler_name": "euler"}},
    }
    with pytest.raises(UserError) as err:
        validate_against_server(graph, OBJECT_INFO, "wf")
    text = str(err.value)
    assert "unknown node class 'NoSuchNode'" in text
    assert "missing model ckpt_name='missing.safetensors'" in text
    assert "\n" not in text


def test_validation_passes_known_values():
    validate_against_server(
        {"3": {"class_type": "KSampler", "inputs": {"sampler_name": "dpmpp_2m"}}, **SAVE}, OBJECT_INFO, "wf"
    )


SHIPPED = sorted(p for p in WORKFLOWS_DIR.rglob("*.json"))


def test_every_shipped_workflow_is_found():
    """The parametrised test below covers what the glob finds: an empty or partial glob fails here."""
    names = {str(p.relative_to(WORKFLOWS_DIR).with_suffix("")) for p in SHIPPED}
    assert {
        "cpu_smoke",
        "cpu_reference",
        "sleep",
        "book_small",
        "book_medium",
        "book_large",
        "drills/page",
        "drills/page_empty",
        "drills/page_oom_once",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(WORKFLOWS_DIR)))
def test_shipped_workflow_loads_with_its_spec(path):
    wf = load_workflow(str(path))
    assert wf.graph and wf.path == path
    graph = wf.parameterise(random.Random(1))
    assert set(graph) == set(wf.graph), "parameters change values, never the nodes"
    for v in wf.varying:
        assert v.node in graph and v.input in graph[v.node]["inputs"]


PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63000100000500010d0a2db40000000049454e44ae426082"
)


def workflow_with_input(folder, file_entry):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wf.json").write_text(json.dumps({"1": {"class_type": "LoadImage", "inputs": {"image": "x.png"}}}))
    (folder / "wf.spec.yaml").write_text(f"inputs:\n  - {{node: '1', input: image, file: {json.dumps(file_entry)}}}\n")
    return str(folder / "wf.json")


def test_spec_input_outside_its_folder_is_refused_before_any_upload(tmp_path):
    secret = tmp_path / "secret" / "id_rsa"
    secret.parent.mkdir()
    secret.write_bytes(PNG_1PX)  # even an image: it is not the spec's to send
    path = workflow_with_input(tmp_path / "wf", "../secret/id_rsa")
    with pytest.raises(UserError, match="outside the spec's folder"):
        load_workflow(path)
    with pytest.raises(UserError, match="outside the spec's folder"):
        load_workflow(workflow_with_input(tmp_path / "wf2", str(secret)))


def test_spec_input_symlink_out_of_its_folder_is_refused(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(PNG_1PX)
    folder = tmp_path / "wf"
    path = workflow_with_input(folder, "ref.png")
    (folder / "ref.png").symlink_to(secret)
    with pytest.raises(UserError, match="outside the spec's folder"):
        load_workflow(path)


def test_spec_input_that_is_not_an_image_is_refused(tmp_path):
    folder = tmp_path / "wf"
    path = workflow_with_input(folder, "notes.png")
    (folder / "notes.png").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    with pytest.raises(UserError, match="not an image ComfyUI accepts"):
        load_workflow(path)
    (folder / "notes.png").write_bytes(PNG_1PX)
    assert load_workflow(path).inputs[0].file == (folder / "notes.png").resolve()


INT_INFO = {
    "EmptyImage": {
        "input": {
            "required": {"width": ["INT", {"min": 1, "max": 16384}], "color": ["INT", {"min": 0, "max": 16777215}]}
        },
        "output": ["IMAGE"],
    },
    "SaveImage": OBJECT_INFO["SaveImage"],
}


@pytest.mark.parametrize(
    "value,said",
    [
        ("twelve", "width='twelve' must be INT"),
        (0, "below the server's minimum 1"),
        (True, "must be INT"),
        (99999, "above the server's maximum"),
    ],
)
def test_validation_checks_literal_inputs_against_declared_types(value, said):
    graph = {"1": {"class_type": "EmptyImage", "inputs": {"width": value, "color": 0}}}
    with pytest.raises(UserError, match=said):
        validate_against_server(graph, INT_INFO, "wf")
    validate_against_server(
        {"1": {"class_type": "EmptyImage", "inputs": {"width": 64, "color": 0}}, **SAVE}, INT_INFO, "wf"
    )
