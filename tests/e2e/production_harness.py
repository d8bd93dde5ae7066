"""Production-mode processes for end-to-end tests: servers, Celery workers, a private broker.

Servers are the embedded harness's ServerProcess with production settings in their
environment (`imageeditor serve` picks the mode from them). Workers are `imageeditor worker`
processes, each the leader of its own process group, so a test can SIGKILL a whole worker
(main process and pool) or only the pool process running a task.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import redis

from imageeditor.core.adapters.sql.engine import create_engine_for
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.sealing import Sealer, new_key
from imageeditor.core.task import Task
from imageeditor.sdk import Client
from tests.conftest import service_unavailable
from tests.e2e.harness import CLI, PASSED_THROUGH, ServerProcess, free_port


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
        """The pool's child processes (with --concurrency 1: the one that runs tasks); none
        for a worker that was killed."""
        return children_of(self.pid) if self.process is not None else []

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
    """The live pids whose parent is `pid`, read from /proc (a killed child its parent has
    not reaped yet is a zombie: dead, though /proc still lists it)."""
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
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


class RedisBroker:
    """A private redis-server on a free loopback port, without persistence: stopping it
    loses every message, as a broker crash can. Tests stop and start it at will."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            service_unavailable("redis-server is not installed")
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


# Recoveries within seconds: a lost message is published again after 3 s, a task without
# progress for 25 s is requeued. Time limits stay below the lease, as in production, and far
# above what the slowest task here needs (~2 s on an idle machine, more on a busy one).
SHORT_TIMINGS = {
    "IMAGEEDITOR_RECONCILE_INTERVAL_SECONDS": "1",
    "IMAGEEDITOR_QUEUED_REDISPATCH_SECONDS": "3",
    "IMAGEEDITOR_RUNNING_LEASE_SECONDS": "25",
    "IMAGEEDITOR_TASK_SOFT_TIME_LIMIT_SECONDS": "20",
    "IMAGEEDITOR_TASK_HARD_TIME_LIMIT_SECONDS": "21",
    "IMAGEEDITOR_SUBMIT_RATE": "1000",
    "IMAGEEDITOR_SUBMIT_BURST": "1000",
}


# One key for every process of a test cluster, as production shares them (imageeditor.core.sealing).
CLUSTER_KEY = new_key()


def cluster_env(
    database_url: str, redis_url: str, broker_url: str, root: Path, **more: str
) -> dict[str, str]:
    """The settings every process of a test cluster shares: its services, results under
    `root`, SHORT_TIMINGS, and `more`."""
    return {
        "IMAGEEDITOR_DATABASE_URL": database_url,
        "IMAGEEDITOR_REDIS_URL": redis_url,
        "IMAGEEDITOR_ENCRYPTION_KEYS": CLUSTER_KEY,
        "IMAGEEDITOR_BROKER_URL": broker_url,
        "IMAGEEDITOR_STORAGE_URL": (root / "blobs").as_uri(),
        **SHORT_TIMINGS,
        **more,
    }


@dataclass
class Cluster:
    env: dict[str, str]
    root: Path
    api_key: str
    store: SqlTaskStore
    webhook_secret: str = ""
    servers: list[ServerProcess] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    def client(self, server: int = 0) -> Client:
        return Client(self.servers[server].address, self.api_key)

    def add_server(self) -> ServerProcess:
        server = ServerProcess(self.root / f"server-{len(self.servers)}", free_port(), **self.env)
        self.servers.append(server)
        return server

    def add_worker(self) -> WorkerProcess:
        worker = WorkerProcess(self.root / f"worker-{len(self.workers)}.log", self.env)
        self.workers.append(worker)
        return worker

    def wait_until_finished(self, task_ids: Sequence[str], timeout: float) -> list[Task]:
        """Poll the store until every task is terminal; the tasks as they ended."""
        deadline = time.monotonic() + timeout
        while True:
            tasks = [self.store.get_task(task_id) for task_id in task_ids]
            if all(t is not None and t.state.terminal for t in tasks):
                return [t for t in tasks if t is not None]
            if time.monotonic() > deadline:
                states = sorted(str(t.state if t else None) for t in tasks)
                raise AssertionError(f"tasks still unfinished after {timeout}s: {states}")
            time.sleep(0.2)

    def result_files(self, task_id: str) -> list[Path]:
        return sorted((self.root / "blobs" / "results").glob(f"{task_id}*"))

    def stop(self) -> None:
        processes: list[WorkerProcess | ServerProcess] = [*self.workers, *self.servers]
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(lambda process: process.stop(), processes))
        self.store.close()


def start_cluster(root: Path, env: dict[str, str], servers: int, workers: int) -> Cluster:
    """Create an API key in the cluster's database, then start its processes in parallel."""
    name = f"e2e-{secrets.token_hex(4)}"  # also the user: its own rate limits
    created = subprocess.run(
        [CLI, "keys", "create", name],
        env=production_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    sealer = Sealer.from_texts(env["IMAGEEDITOR_ENCRYPTION_KEYS"].split(","))
    store = SqlTaskStore(create_engine_for(env["IMAGEEDITOR_DATABASE_URL"]), sealer)
    key_line, secret_line = created.stdout.splitlines()[:2]
    api_key, webhook_secret = key_line.strip(), secret_line.split(":", 1)[1].strip()
    cluster = Cluster(env, root, api_key, store, webhook_secret)
    starting: list[WorkerProcess | ServerProcess] = [cluster.add_server() for _ in range(servers)]
    starting += [cluster.add_worker() for _ in range(workers)]
    with ThreadPoolExecutor(len(starting)) as pool:
        list(pool.map(lambda process: process.start(), starting))
    return cluster


@contextlib.contextmanager
def running_cluster(
    root: Path, database_url: str, redis_url: str, servers: int = 1, workers: int = 1, **more: str
) -> Iterator[Cluster]:
    """A cluster (cluster_env with `more`) on a private Redis broker, both stopped at the end."""
    broker = RedisBroker().start()
    try:
        env = cluster_env(database_url, redis_url, broker.url, root, **more)
        cluster = start_cluster(root, env, servers=servers, workers=workers)
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        broker.stop()
