"""The model files a run's workflows use, with their sizes, as the real ComfyUI lists them
(GET /experiment/models/{folder}: ComfyUI 0.3.75 app/model_manager.py,
ModelFileManager.recursive_search_models_ gives name, size, modified). "What changed" names a
replaced checkpoint by these."""

from __future__ import annotations

import pytest

from comfyload.orchestration.sd15_paths import CHECKPOINT_NAME
from comfyload.protocol.model_files import model_files
from comfyload.protocol.workload import load_workflow

pytestmark = pytest.mark.integration


def test_the_sd15_workflows_checkpoint_is_listed_with_its_size(comfy):
    [entry] = model_files(comfy, [load_workflow("sd15_cpu_small"), load_workflow("sd15_cpu_medium")])
    assert (entry["folder"], entry["name"]) == ("checkpoints", CHECKPOINT_NAME)
    assert isinstance(entry["size"], int) and entry["size"] > 1_000_000_000  # fp16 SD1.5: about 2 GB
    assert model_files(comfy, [load_workflow("sleep1")]) == []  # no model: nothing to list


def test_a_model_the_server_lacks_has_no_size(comfy):
    workflow = load_workflow("sd15_cpu_small")
    workflow.models = [{"folder": "checkpoints", "name": "not_there.safetensors"}]
    assert model_files(comfy, [workflow]) == [
        {"folder": "checkpoints", "name": "not_there.safetensors", "size": None, "modified": None}
    ]
