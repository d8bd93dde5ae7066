"""A real Prometheus (Debian's `prometheus` package) on a free loopback port, scraping the
targets a test names every second, with the project's alert rules loaded."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import service_unavailable
from tests.e2e.harness import free_port

RULES = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "alerts.yaml"


class Prometheus:
    def __init__(self, root: Path, targets: Mapping[str, Sequence[str]]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            service_unavailable("prometheus is not installed (make test installs it)")
        self.binary = str(binary)
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = root / "prometheus.log"
        self.config = root / "prometheus.yml"
        self.config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "rule_files": [str(RULES)],
                    "scrape_configs": [
                        {"job_name": job, "static_configs": [{"targets": list(addresses)}]}
                        for job, addresses in targets.items()
                    ],
                }
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Prometheus:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config}",
                    f"--storage.tsdb.path={self.root / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log,
                stderr=log,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited:\n{self.log.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as reply:
                    if reply.status == 200:
                        return self
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"prometheus did not become ready:\n{self.log.read_text()}")

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=5) as reply:
            answer = json.load(reply)
        assert answer["status"] == "success", answer
        return answer["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector `promql` gives now."""
        result: list[dict[str, Any]] = self.api("query", query=promql)["result"]
        return result

    def wait_for(
        self,
        promql: str,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 60,
    ) -> list[dict[str, Any]]:
        """The result of `promql` once `done` accepts it."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(promql)
            if done(result):
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"{promql} gave {result} after {timeout}s")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
