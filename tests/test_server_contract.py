"""ComfyUI's contract across versions (comfyload/protocol/server_contract.py): the rules encoded here
are read from the server's source, each cited with its file and commit (repo Comfy-Org/ComfyUI)."""

import uuid

import pytest

from comfyload.analysis.environment_diff import what_changed
from comfyload.orchestration.measuring_flags import measuring_flags
from comfyload.protocol.results import server_timings
from comfyload.protocol.server_contract import (
    ServerContract,
    history_entry_from_job,
    is_canonical_id,
    new_id,
    queue_holds,
)
from reports.metadata import server_mode_text


# comfy_execution/jobs.py @172be438576532bd3d7243c5608ddde8a31e2944 validate_job_id:
# `str(uuid.UUID(value)) != value` -> HTTP 400 invalid_prompt_id (server.py @002c3fb9 post_prompt)
@pytest.mark.parametrize(
    "value, accepted",
    [
        ("0b8f8c1e-1d7a-4d8e-9a57-3f7f1f2b9c10", True),
        ("0b8f8c1e1d7a4d8e9a573f7f1f2b9c10", False),  # uuid4().hex: what ComfyLoad sent before
        ("0B8F8C1E-1D7A-4D8E-9A57-3F7F1F2B9C10", False),  # upper case
        ("{0b8f8c1e-1d7a-4d8e-9a57-3f7f1f2b9c10}", False),
        ("urn:uuid:0b8f8c1e-1d7a-4d8e-9a57-3f7f1f2b9c10", False),
        ("prompt-1", False),
        (12, False),
    ],
)
def test_the_servers_prompt_id_rule(value, accepted):
    assert is_canonical_id(value) is accepted


def test_every_id_comfyload_makes_is_canonical():
    ids = {new_id() for _ in range(200)}
    assert len(ids) == 200 and all(is_canonical_id(i) and str(uuid.UUID(i)) == i for i in ids)


def test_the_client_makes_its_ids_canonical():
    from comfyload.protocol.client import ComfyClient

    client = ComfyClient("http://127.0.0.1:9", completion="poll:1")
    try:
        assert is_canonical_id(client.client_id)
    finally:
        client.close()


ARGV_0375 = ["main.py", "--listen", "127.0.0.1", "--port", "8188", "--cpu", "--cache-classic"]


def test_mode_of_the_pinned_server_as_comfyload_starts_it():
    mode = ServerContract(version="0.3.75", argv=ARGV_0375, features={"supports_preview_metadata": True}).mode()
    assert mode["cache"] == "classic" and mode["assets"] is False and mode["dynamic_vram"] is False
    assert mode["cpu"] is True and mode["attention"] == "default" and mode["jobs_api"] is False


def test_mode_of_a_current_server_left_at_its_defaults():
    """0.38.1: RAM-pressure cache by default (comfy/cli_args.py @03294572 `--cache-ram`, main.py), assets
    on by default and reported at /features (comfy_api/feature_flags.py @1924b05e `assets`)."""
    contract = ServerContract(version="0.38.1", argv=["main.py"], features={"assets": True}, jobs_api=True)
    mode = contract.mode()
    assert mode["cache"] == "ram_pressure" and mode["assets"] is True and mode["jobs_api"] is True
    assert mode["dynamic_vram"] is None, "on NVIDIA only: the flags alone do not tell"


@pytest.mark.parametrize(
    "argv, cache, attention",
    [
        (["main.py", "--cache-lru", "10"], "lru:10", "default"),
        (["main.py", "--cache-ram", "6"], "ram_pressure", "default"),
        (["main.py", "--cache-none", "--use-sage-attention"], "none", "sage-attention"),
        (["main.py", "--high-ram"], "classic", "default"),
    ],
)
def test_cache_and_attention_from_the_start_flags(argv, cache, attention):
    mode = ServerContract(version="0.38.1", argv=argv).mode()
    assert (mode["cache"], mode["attention"]) == (cache, attention)


def test_a_version_between_the_two_read_has_no_guessed_default():
    assert ServerContract(version="0.36.0", argv=["main.py"]).mode()["cache"] is None


def test_mode_differences_name_each_changed_field():
    a = ServerContract(version="0.3.75", argv=ARGV_0375).mode()
    b = ServerContract(version="0.38.1", argv=["main.py"], features={"assets": True}, jobs_api=True).mode()
    lines = [(c.what, c.baseline, c.candidate) for c in what_changed(meta_with(a), meta_with(b))]
    assert ("server mode cache", "classic", "ram_pressure") in lines and (
        "server mode assets",
        "False",
        "True",
    ) in lines
    assert what_changed(meta_with(a), meta_with(dict(a, argv=["main.py", "--port", "9999"]))) == [], (
        "argv is not a mode"
    )
    assert ("server mode cache", "absent", "classic") in [
        (c.what, c.baseline, c.candidate) for c in what_changed({}, meta_with(a))
    ]


def meta_with(mode):
    return {"comfyui": {"server_mode": mode}}


# comfy_execution/jobs.py @172be438 normalize_history_item / get_job(include_outputs=True): the job's
# timings in server epoch ms, its history status as `execution_status`, its outputs
JOB = {
    "id": "0b8f8c1e-1d7a-4d8e-9a57-3f7f1f2b9c10",
    "status": "completed",
    "priority": 3,
    "create_time": 1765000000100,
    "execution_start_time": 1765000000250,
    "execution_end_time": 1765000001250,
    "outputs_count": 1,
    "outputs": {"3": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}},
    "execution_status": {
        "status_str": "success",
        "completed": True,
        "messages": [
            ["execution_start", {"prompt_id": "x", "timestamp": 1765000000250}],
            ["execution_success", {"prompt_id": "x", "timestamp": 1765000001250}],
        ],
    },
}


def test_a_job_is_read_like_a_history_entry():
    entry = history_entry_from_job(JOB)
    assert server_timings(entry) == {
        "create_time": 1765000000100,
        "execution_start": 1765000000250,
        "execution_end": 1765000001250,
    }
    assert entry["outputs"]["3"]["images"][0]["filename"] == "a.png"


def test_a_history_entry_still_gives_create_time_from_extra_data():
    entry = {"prompt": [3, "x", {}, {"create_time": 5}, []], "status": {"messages": []}}
    assert server_timings(entry)["create_time"] == 5


CLI_ARGS_0381 = 'parser.add_argument("--disable-assets")\nparser.add_argument("--disable-dynamic-vram")\n'
CLI_ARGS_0375 = 'cache_group.add_argument("--cache-classic", action="store_true")\n'


def _checkout(tmp_path, text):
    (tmp_path / "comfy").mkdir()
    (tmp_path / "comfy" / "cli_args.py").write_text(text)
    return tmp_path


def test_measuring_flags_only_where_the_version_declares_them(tmp_path):
    assert measuring_flags(_checkout(tmp_path, CLI_ARGS_0375), []) == ["--cache-classic"]


def test_measuring_flags_on_a_current_checkout(tmp_path):
    code = _checkout(tmp_path, CLI_ARGS_0381 + CLI_ARGS_0375)
    assert measuring_flags(code, []) == ["--cache-classic", "--disable-assets", "--disable-dynamic-vram"]
    assert measuring_flags(code, ["--cache-ram", "4"]) == ["--disable-assets", "--disable-dynamic-vram"]


@pytest.mark.integration
def test_measuring_flags_of_the_pinned_install_read_from_its_own_source():
    """The pinned 0.3.75 (in the cache once `make setup` ran) has --cache-classic and neither newer flag."""
    from comfyload.orchestration.server import comfyui_command

    _base, code, _pinned = comfyui_command()
    assert measuring_flags(code, []) == ["--cache-classic"]


def test_the_report_names_the_mode():
    text = server_mode_text(ServerContract(version="0.3.75", argv=ARGV_0375).mode())
    assert text.startswith("cache classic, assets off, DynamicVRAM off, attention default, --cpu")
    assert "/api/jobs absent" in text and server_mode_text({}) is None


# server.py @002c3fb9 get_queue: {"queue_running": [...], "queue_pending": [...]}, each item the
# queue tuple without `sensitive` (number, prompt_id, prompt, extra_data, outputs_to_execute)
def test_the_queue_tuple_names_the_prompt_second():
    pid = "0b8f8c1e-1d7a-4d8e-9a57-3f7f1f2b9c10"
    item = [7, pid, {"1": {"class_type": "Sleep"}}, {"client_id": "c", "create_time": 1}, ["1"]]
    assert queue_holds({"queue_running": [item], "queue_pending": []}, pid)
    assert queue_holds({"queue_running": [], "queue_pending": [item]}, pid)
    assert not queue_holds({"queue_running": [], "queue_pending": [item]}, new_id())
    assert not queue_holds({}, pid)


def test_a_server_without_create_time_is_not_asked_again_after_each_prompt():
    """0.3.64 and 0.3.52 stamp no create_time (their server.py): once a finished entry shows none, the
    client hands each record on at once instead of reading /history for it."""
    from comfyload.protocol.client import ComfyClient
    from comfyload.protocol.results import PromptResult

    client = ComfyClient("http://127.0.0.1:9", completion="poll:1")
    try:
        running = PromptResult(prompt_id=new_id(), client_id="c", server="s", workflow="w", execution_start=1)
        running.outcome = "success"
        assert client._needs_create_time(running)
        client.stamps_create_time = False
        assert not client._needs_create_time(running)
    finally:
        client.close()
