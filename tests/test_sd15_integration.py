"""A real diffusion workload at CPU sizes: the locally made SD1.5 checkpoint loaded by the real
ComfyUI, text encoding, KSampler steps, VAE decode, with sampler previews on (latent2rgb), so
binary preview frames and `progress` messages cross the websocket like on a GPU box.

One ComfyUI of this module's own (its log is read; it holds the ~4 GB fp32 model on a CPU and is
stopped at the end of the module, by its pid). No timed thresholds: only orderings of the same
work measured side by side (A B B A)."""

import hashlib
import io
import json
import random
import struct
import time
import uuid

import psutil
import pytest
import requests
import websocket
from PIL import Image

from comfyload.orchestration.sd15_checkpoint import ensure_checkpoint
from comfyload.orchestration.sd15_paths import checkpoint_path
from comfyload.orchestration.server import LocalComfyUI, comfyui_command, free_port
from comfyload.protocol.client import ComfyClient
from comfyload.protocol.workload import load_workflow
from reports.nodes import NodeTimes

pytestmark = pytest.mark.integration
TIMEOUT = 300


@pytest.fixture(scope="module")
def sd15_server(tmp_path_factory):
    base, code, _pinned = comfyui_command()
    ensure_checkpoint(base[0], code)
    server = LocalComfyUI(
        port=free_port(),
        work_dir=tmp_path_factory.mktemp("comfyui_sd15"),
        extra_args=["--preview-method", "latent2rgb"],
    )
    server.start(ready_timeout=300)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(sd15_server):
    c = ComfyClient(sd15_server.url).start()
    yield c
    c.close()


@pytest.fixture(scope="module")
def first_two(client):
    """The module's first two prompts on a fresh server: the first loads the checkpoint."""
    wf, rng = load_workflow("sd15_cpu_small"), random.Random(13)
    return [client.run_prompt(wf.parameterise(rng), wf.name, timeout=TIMEOUT, download=True) for _ in range(2)]


def sized(px: int, steps: int, rng) -> dict:
    graph = load_workflow("sd15_cpu_small").parameterise(rng)
    graph["4"]["inputs"].update(width=px, height=px)
    graph["5"]["inputs"]["steps"] = steps
    return graph


def test_checkpoint_has_the_keys_checkpoint_loader_simple_expects():
    path = checkpoint_path()
    with open(path, "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    prefixes = {k.split(".")[0] + "." + k.split(".")[1] + "." for k in header if k != "__metadata__"}
    assert prefixes == {
        "model.diffusion_model.",
        "cond_stage_model.transformer.",
        "first_stage_model.encoder.",
        "first_stage_model.decoder.",
        "first_stage_model.quant_conv.",
        "first_stage_model.post_quant_conv.",
    }
    assert {v["dtype"] for k, v in header.items() if k != "__metadata__"} == {"F16"}


def test_comfyui_detects_sd15_and_the_first_prompt_pays_the_load(sd15_server, first_two):
    assert [r.outcome for r in first_two] == ["success", "success"]
    log = sd15_server.log_path.read_text(errors="replace")
    assert "model_type EPS" in log  # SD1.5 is an epsilon-prediction model
    assert "Requested to load SD1ClipModel" in log  # the SD15 config's text encoder
    assert "Requested to load BaseModel" in log
    first, second = first_two
    assert first.node_classes["1"] == "CheckpointLoaderSimple"
    assert "1" in first.node_ms and "1" not in second.node_ms  # loaded once, then cached by ComfyUI
    assert "1" in second.cached_nodes
    assert first.node_ms["1"] > 0  # the load is in the first prompt's time


def test_every_request_gives_a_different_image(sd15_server, first_two):
    """Pixels, not files: a PNG from SaveImage carries the prompt text in its metadata."""
    digests = []
    for result in first_two:
        [output] = result.outputs
        png = requests.get(
            sd15_server.url + "/view", params={k: output[k] for k in ("filename", "subfolder", "type")}, timeout=30
        ).content
        image = Image.open(io.BytesIO(png)).convert("RGB")
        assert image.size == (64, 64)
        assert len(image.getcolors(maxcolors=64 * 64)) > 100  # not a flat or black frame
        digests.append(hashlib.sha256(image.tobytes()).hexdigest())
    assert digests[0] != digests[1]


def test_node_profile_names_the_sampler_and_adds_up_to_the_execution_span(first_two):
    warm = first_two[1]
    times = NodeTimes()
    times.add(warm.to_record())
    table = times.table()
    classes = [row["class_type"] for row in table]
    assert "KSampler" in classes and "VAEDecode" in classes
    assert table[0]["class_type"] == "KSampler"  # the bottleneck of a warm prompt
    total = sum(warm.node_ms.values())
    assert abs(total - warm.execution_ms) <= 0.1 * warm.execution_ms + 100, (total, warm.execution_ms)


def test_sampling_progress_is_recorded_step_by_step(first_two):
    for result in first_two:
        assert result.progress == {"node": "5", "value": 2, "max": 2}
        assert result.progress_messages == 2


def test_execution_grows_with_steps_and_pixels(sd15_server, client):
    """The server's CPU seconds per prompt, which other processes on a shared machine barely
    change (its wall time they do, tenfold at times: bench/sd15_scaling.py measures that), for
    the same work side by side, A B B A."""
    server_process = psutil.Process(sd15_server.process.pid)
    rng = random.Random(7)

    def cpu_seconds(px, steps):
        before = sum(server_process.cpu_times()[:2])
        r = client.run_prompt(sized(px, steps, rng), "sd15_scaling", timeout=TIMEOUT)
        assert r.outcome == "success", r.error_message
        assert r.progress["max"] == steps and r.progress_messages == steps
        return sum(server_process.cpu_times()[:2]) - before

    one, six = {}, {}
    for label, steps in (("a", 1), ("b", 6), ("c", 6), ("d", 1)):
        (one if steps == 1 else six)[label] = cpu_seconds(64, steps)
    assert sum(six.values()) > 1.2 * sum(one.values()), (one, six)  # measured ~1.6x: text encoding and decode stay
    small, large = {}, {}
    for label, px in (("a", 64), ("b", 192), ("c", 192), ("d", 64)):
        (small if px == 64 else large)[label] = cpu_seconds(px, 1)
    assert sum(large.values()) > 1.2 * sum(small.values()), (small, large)  # 9x the pixels (weights traffic is fixed)


def test_preview_frames_and_progress_flow_on_the_socket(sd15_server, client):
    """A raw socket sees what --preview-method sends: binary preview frames and `progress`; the
    shared-socket client on the same server still completes its prompts meanwhile."""
    client_id = str(uuid.uuid4())
    ws = websocket.create_connection(sd15_server.url.replace("http", "ws") + f"/ws?clientId={client_id}", timeout=30)
    try:
        graph = sized(64, 3, random.Random(3))
        prompt_id = requests.post(
            sd15_server.url + "/prompt", json={"prompt": graph, "client_id": client_id}, timeout=30
        ).json()["prompt_id"]
        binary, progress, deadline = 0, [], time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            opcode, frame = ws.recv_data_frame(True)
            if opcode == websocket.ABNF.OPCODE_BINARY:
                binary += 1
            elif opcode == websocket.ABNF.OPCODE_TEXT:
                message = json.loads(frame.data)
                data = message.get("data") or {}
                if message["type"] == "progress" and data.get("prompt_id") == prompt_id:
                    progress.append(data["value"])
                if message["type"] == "executing" and data.get("prompt_id") == prompt_id and data.get("node") is None:
                    break
    finally:
        ws.close()
    assert progress == [1, 2, 3]
    assert binary >= 3  # a latent2rgb preview per step
    result = client.run_prompt(sized(64, 1, random.Random(4)), "sd15_cpu_small", timeout=TIMEOUT)
    assert result.outcome == "success" and result.progress["value"] == 1
