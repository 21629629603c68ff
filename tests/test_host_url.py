"""Unit: --host / COMFY_HOST parsed before use (issue 20): the flag named as the mistake, not the
server; a reverse-proxy prefix stays valid."""

import pytest

from comfyload.common.errors import UserError
from comfyload.protocol.host_url import host_from, parse_host


@pytest.mark.parametrize(
    "text,url",
    [
        ("http://127.0.0.1:8188", "http://127.0.0.1:8188"),
        ("127.0.0.1:8188", "http://127.0.0.1:8188"),
        ("https://gpu.example/comfy/", "https://gpu.example/comfy"),  # a reverse-proxy prefix
        ("http://[::1]:8188", "http://[::1]:8188"),
    ],
)
def test_good_hosts(text, url):
    assert parse_host(text) == url


@pytest.mark.parametrize(
    "text,said",
    [
        ("ftp://host:8188", "the scheme must be http or https, not ftp"),
        ("http://host:70000", "port must be a number from 1 to 65535"),
        ("http://host:0", "port must be a number from 1 to 65535, not 0"),
        ("http://host:abc", "port must be a number from 1 to 65535"),
        (
            "http://host:8188/prompt",
            "ends in ComfyUI's endpoint /prompt: give the server's base URL (http://host:8188)",
        ),
        ("ws://host:8188/ws", "the scheme must be http or https"),
        ("http://host:8188/ws", "endpoint /ws"),
        ("https://gw/comfy/system_stats", "base URL (https://gw/comfy)"),
        ("http://a:8188,http://b:8188", "names more than one server"),
        ("nota url", "is not a URL"),
        ("", "is empty"),
    ],
)
def test_bad_hosts_name_the_flag(text, said):
    with pytest.raises(UserError, match="^--host ") as err:
        parse_host(text)
    assert said in str(err.value)


def test_the_env_var_is_named_when_the_value_came_from_it(monkeypatch):
    monkeypatch.setenv("COMFY_HOST", "http://host:99999")
    with pytest.raises(UserError, match="^env COMFY_HOST 'http://host:99999'"):
        host_from(None)
    assert host_from("http://other:1") == "http://other:1"
    monkeypatch.delenv("COMFY_HOST")
    assert host_from(None) is None
