"""The fault proxy against a real HTTP server on loopback: toxics on, off, per direction."""

import socket
import threading
import time

import pytest
import requests
from loopback_http import routes_handler, serving

from comfyload.common.errors import UserError
from comfyload.orchestration.faultproxy import FaultProxy


@pytest.fixture(scope="module")
def upstream():
    with serving(routes_handler({}, default=(200, "application/octet-stream", b"x" * 20000))) as (_, url):
        yield url.removeprefix("http://")


@pytest.fixture
def proxy(upstream):
    p = FaultProxy(upstream).start()
    yield p
    p.stop()


def timed_get(url, **kw):
    started = time.monotonic()
    response = requests.get(url, **kw)
    return response, time.monotonic() - started


def test_clean_proxy_passes_data_and_binds_loopback(proxy):
    response, _ = timed_get(proxy.url)
    assert response.status_code == 200 and len(response.content) == 20000
    assert proxy.url.startswith("http://127.0.0.1:")


def test_latency_toxic_on_and_off(proxy):
    """On: a response cannot come sooner than the latency (a lower bound, true on any machine).
    Off: told by what happens, not by a stopwatch: a 10-minute latency holds a request past a
    1-s read timeout; once removed, the same request is answered (a 60-s guard, ten times
    shorter than the hold it would meet if the removal did nothing)."""
    name = proxy.add_toxic("latency", stream="downstream", latency=300)
    time.sleep(0.05)
    response, slow = timed_get(proxy.url, headers={"Connection": "close"})
    assert response.status_code == 200 and slow >= 0.3
    proxy.remove_toxic(name)
    hold = proxy.add_toxic("latency", stream="downstream", latency=600_000)
    time.sleep(0.05)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(proxy.url, timeout=(10, 1))
    proxy.remove_toxic(hold)
    time.sleep(0.05)
    again = requests.get(proxy.url, timeout=(10, 60))
    assert again.status_code == 200 and len(again.content) == 20000


def test_bandwidth_and_slicer_keep_the_data_intact(proxy):
    proxy.add_toxic("bandwidth", rate=100)  # 100 KB/s: 20 KB takes ~0.2 s
    proxy.add_toxic("slicer", average_size=100, size_variation=50, delay=100)
    time.sleep(0.05)
    response, took = timed_get(proxy.url)
    assert response.content == b"x" * 20000 and took >= 0.15


def test_timeout_toxic_stalls_until_removed(proxy):
    name = proxy.add_toxic("timeout", stream="upstream", timeout=0)
    time.sleep(0.05)
    result = {}
    t = threading.Thread(target=lambda: result.setdefault("r", timed_get(proxy.url, timeout=10)))
    t.start()
    time.sleep(0.5)
    assert "r" not in result, "held while the toxic is on"
    proxy.remove_toxic(name)
    t.join(5)
    assert result["r"][0].status_code == 200 and result["r"][1] >= 0.5


def test_reset_peer_resets_live_connections(proxy):
    """The connection must be reset (RST: ConnectionResetError). A socket timeout is an OSError
    too, so it is told apart: a toxic that does nothing leaves recv waiting and fails here."""
    sock = socket.create_connection((proxy.listen_host, proxy.listen_port))
    proxy.add_toxic("reset_peer", timeout=100)
    sock.settimeout(5)
    try:
        data = sock.recv(10)
        what = "closed without a reset" if data == b"" else f"data {data!r}"
    except ConnectionResetError:
        what = "reset"
    except TimeoutError:
        what = "nothing happened (recv timed out)"
    finally:
        sock.close()
    assert what == "reset"


def test_unknown_toxic_is_one_clear_error(proxy):
    with pytest.raises(UserError, match="unknown toxic 'loss'"):
        proxy.add_toxic("loss", percent=10)
    with pytest.raises(UserError, match="unknown attribute"):
        proxy.add_toxic("latency", delay=10)
