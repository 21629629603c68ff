""" "What changed" between two runs' meta.json: the environment differences a release manager asks
about first, and nothing when nothing changed."""

from __future__ import annotations

import copy

from synthetic import meta_for

from comfyload.analysis.environment_diff import format_changes, what_changed


def full_meta() -> dict:
    meta = meta_for()
    meta["comfyui"]["system_stats"]["system"]["pytorch_version"] = "2.14.1+cu128"
    meta["comfyui"]["node_packs"]["modules"] = {"custom_nodes.comfyload_drills": 4, "nodes": 60}
    meta["gpu"] = {"gpus": ["NVIDIA H100 80GB HBM3"], "driver": "550.54.15"}
    meta["models"] = [{"folder": "checkpoints", "name": "sd15.safetensors", "size": 2_132_625_894, "modified": 1.0}]
    meta["workflows"] = [{"name": "sd15_gpu", "sha256": "a" * 64}]
    return meta


def test_an_unchanged_environment_lists_no_change():
    assert what_changed(full_meta(), full_meta()) == []
    assert format_changes([])[0].startswith("what changed: nothing")


def test_a_changed_custom_node_pack_and_checkpoint_are_named():
    a, b = full_meta(), full_meta()
    b["comfyui"]["node_packs"]["custom_node_packs"].append("custom_nodes.ComfyUI-Impact-Pack")
    b["comfyui"]["node_packs"]["modules"]["custom_nodes.ComfyUI-Impact-Pack"] = 120
    b["models"][0]["size"] = 4_265_146_304
    changes = {c.what: (c.baseline, c.candidate) for c in what_changed(a, b)}
    assert changes == {
        "custom node pack custom_nodes.ComfyUI-Impact-Pack": ("absent", "120 classes"),
        "model file checkpoints/sd15.safetensors": ("2,132,625,894 bytes", "4,265,146,304 bytes"),
    }


def test_driver_torch_comfyui_workflow_and_server_mode_are_named():
    a, b = full_meta(), copy.deepcopy(full_meta())
    b["gpu"]["driver"] = "560.28.03"
    b["comfyui"]["system_stats"]["system"]["pytorch_version"] = "2.15.0+cu129"
    b["comfyui"]["system_stats"]["system"]["comfyui_version"] = "0.3.76"
    b["workflows"][0]["sha256"] = "b" * 64
    a["comfyui"]["server_mode"] = {"cache": "classic", "attention": "sdpa"}
    b["comfyui"]["server_mode"] = {"cache": "lru", "attention": "sdpa"}
    lines = "\n".join(format_changes(what_changed(a, b)))
    assert "driver: 550.54.15 → 560.28.03" in lines
    assert "PyTorch (CUDA): 2.14.1+cu128 → 2.15.0+cu129" in lines
    assert "ComfyUI version: 0.3.75 → 0.3.76" in lines
    assert "workflow sd15_gpu: aaaaaaaaaaaa → bbbbbbbbbbbb" in lines
    assert "server mode cache: classic → lru" in lines and "attention" not in lines
