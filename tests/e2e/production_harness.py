"""Production-mode processes for end-to-end tests: servers, Celery workers, a private broker.

Servers are the embedded harness's ServerProcess with production settings in their
environment (`imageeditor serve` picks the mode from them). Workers are `imageeditor worker`
processes, each the leader of its own process group, so a test can SIGKILL a whole worker
(main process and pool) or only the pool process running a task.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis

from tests.e2e.harness import CLI, PASSED_THROUGH, free_port


def production_env(**settings: str) -> dict[str, str]:
    """This environment without any IMAGEEDITOR_ setting of its own, plus `settings`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("IMAGEEDITOR_") or k in PASSED_THROUGH
    }
    env.update(settings)
    return env


class WorkerProcess:
    """One `imageeditor worker`; `start()` waits until Celery says it is ready."""

    def __init__(self, log: Path, env: dict[str, str], queues: str = "edits") -> None:
        self.log = log
        self.env = env
        self.queues = queues
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60) -> WorkerProcess:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [CLI, "worker", "--queues", self.queues, "--concurrency", "1"],
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker exited:\n{self.log.read_text()}")
            if b" ready." in self.log.read_bytes()[offset:]:
                return self
            time.sleep(0.1)
        raise RuntimeError(f"worker did not become ready:\n{self.log.read_text()}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def pool_processes(self) -> list[int]:
        """The pool's child processes (with --concurrency 1: the one that runs tasks)."""
        return children_of(self.pid)

    def kill(self) -> None:
        """SIGKILL the whole worker, pool included: a machine that vanished."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        """Warm shutdown (running tasks finish), then a kill if that takes too long."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)
        self.kill()


def children_of(pid: int) -> list[int]:
    """The pids whose parent is `pid`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name, in parentheses, may itself contain spaces and parentheses.
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


class RedisBroker:
    """A private redis-server on a free loopback port, without persistence: stopping it
    loses every message, as a broker crash can. Tests stop and start it at will."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            reason = "redis-server is not installed"
            pytest.fail(reason) if os.environ.get("CI") == "true" else pytest.skip(reason)
        self.binary = str(binary)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisBroker:
        command = [
            self.binary,
            *("--port", str(self.port), "--bind", "127.0.0.1"),
            *("--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction"),
        ]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        deadline = time.monotonic() + 10
        try:
            while time.monotonic() < deadline:
                try:
                    client.ping()
                    return self
                except redis.ConnectionError:
                    time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None
