"""A Redis primary, a replica and three Sentinels on free loopback ports (redis-server, and
redis-server in its --sentinel mode, which is what Debian's redis-sentinel runs)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.conftest import service_unavailable
from tests.e2e.harness import free_port

SERVICE = "mymaster"


class SentinelSetup:
    def __init__(self, root: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_unavailable("redis-server is not installed")
        self.binary = str(binary)
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.primary_port, self.replica_port = free_port(), free_port()
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def _start(self, port: int, *arguments: str) -> None:
        log = (self.root / f"redis-{port}.log").open("ab")
        self.processes[port] = subprocess.Popen(
            [self.binary, *arguments], stdout=log, stderr=log, cwd=self.root
        )

    def start(self) -> SentinelSetup:
        common = ("--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
        self._start(self.primary_port, "--port", str(self.primary_port), *common)
        self._start(
            self.replica_port,
            *("--port", str(self.replica_port), *common),
            *("--replicaof", "127.0.0.1", str(self.primary_port)),
        )
        for port in self.sentinel_ports:
            config = self.root / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\n"
                f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 10000\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self._start(port, str(config), "--sentinel")
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        """The replica in sync, and every Sentinel knowing the replica and the two others
        (what a failover needs)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                replication = self.client(self.replica_port).info("replication")
                synced = replication.get("master_link_status") == "up"
                views = [
                    (
                        len(self.client(port).sentinel_slaves(SERVICE)),
                        len(self.client(port).sentinel_sentinels(SERVICE)),
                    )
                    for port in self.sentinel_ports
                ]
                if synced and all(view == (1, 2) for view in views):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.2)
        raise RuntimeError("the Sentinel setup did not come up")

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=2, socket_connect_timeout=1)

    def primary(self) -> int:
        """The primary's port, as the first Sentinel that answers sees it."""
        for port in self.sentinel_ports:
            try:
                _, primary = self.client(port).sentinel_get_master_addr_by_name(SERVICE)
                return int(primary)
            except redis.RedisError:
                continue
        raise RuntimeError("no Sentinel answers")

    def kill_primary(self) -> None:
        process = self.processes[self.primary_port]
        process.send_signal(signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()
