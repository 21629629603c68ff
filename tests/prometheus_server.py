"""A real Prometheus for the exporter's tests: Debian's /usr/bin/prometheus (`make prometheus`),
on a free loopback port, scraping ComfyLoad's /metrics every second, stopped by its pid."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import requests

from comfyload.orchestration.server import free_port

BINARY = Path("/usr/bin/prometheus")
READY_S = 60
CONFIG = """global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: comfyload
    static_configs:
      - targets: ["{target}"]
"""


class RealPrometheus:
    def __init__(self, work: Path, target: str):
        self.work, self.target = work, target
        self.url = f"http://127.0.0.1:{free_port()}"
        self.process = None

    def start(self) -> RealPrometheus:
        (self.work / "data").mkdir(parents=True, exist_ok=True)
        config = self.work / "prometheus.yml"
        config.write_text(CONFIG.format(target=self.target))
        self.log = open(self.work / "prometheus.log", "w")
        self.process = subprocess.Popen(
            [
                str(BINARY),
                f"--config.file={config}",
                f"--storage.tsdb.path={self.work / 'data'}",
                f"--web.listen-address={self.url.split('://')[1]}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + READY_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, (self.work / "prometheus.log").read_text()[-3000:]
            try:
                # ready, and already scraping the target (`up` 0 while nothing listens there):
                # Prometheus applies a new target only after its scrape manager's first reload (up
                # to 5 s), and a short run would be over before its first scrape
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200 and self.query("up"):
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError(f"Prometheus pid {self.process.pid} not scraping in {READY_S} s")

    def query(self, expr: str) -> list[dict]:
        """The instant vector of `expr`: [{"metric": {labels}, "value": float}, ...]."""
        answer = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10).json()
        assert answer["status"] == "success", answer
        return [{"metric": r["metric"], "value": float(r["value"][1])} for r in answer["data"]["result"]]

    def series(self, expr: str, start: float, end: float) -> list[float]:
        """The values of a one-series `expr`, at every second from start to end (query_range)."""
        answer = requests.get(
            f"{self.url}/api/v1/query_range",
            params={"query": expr, "start": start, "end": end, "step": "1s"},
            timeout=10,
        ).json()
        assert answer["status"] == "success", answer
        found = answer["data"]["result"]
        assert len(found) <= 1, found
        return [float(v) for _, v in found[0]["values"]] if found else []

    def value(self, expr: str) -> float | None:
        found = self.query(expr)
        assert len(found) <= 1, found
        return found[0]["value"] if found else None

    def wait_for(self, expr: str, timeout: float = 60) -> list[dict]:
        """Polls until `expr` has a result (a scrape has brought it in)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.query(expr)
            if found:
                return found
            time.sleep(0.5)
        raise AssertionError(f"no result for {expr} in {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        if self.process is not None:
            self.log.close()
