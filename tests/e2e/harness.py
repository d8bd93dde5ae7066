"""End-to-end harness: a real `imageeditor serve` process on a free loopback port."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from PIL import Image

from imageeditor.core.adapters.sql.engine import create_engine_for
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.sealing import Sealer, embedded_key

CLI = str(Path(sys.executable).parent / "imageeditor")
# Settings of the machine rather than of one test: where `make` put the rembg model files.
PASSED_THROUGH = {"IMAGEEDITOR_MODELS_DIR"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ServerProcess:
    """One embedded-mode server; `start()` waits until its health check says SERVING."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        workers: int = 2,
        *,
        health_credentials: grpc.ChannelCredentials | None = None,
        **env: str,
    ) -> None:
        self.data_dir = data_dir
        self.health_credentials = health_credentials  # a server on TLS is checked over TLS
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self.workers = workers
        self.extra_env = env
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    @property
    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("IMAGEEDITOR_") or k in PASSED_THROUGH
        }
        env.update(
            IMAGEEDITOR_DATA_DIR=str(self.data_dir),
            IMAGEEDITOR_LISTEN_ADDRESS=self.address,
            IMAGEEDITOR_ADDRESS=self.address,
            IMAGEEDITOR_EMBEDDED_WORKERS=str(self.workers),
            **self.extra_env,
        )
        return env

    def start(self, workers: int | None = None) -> ServerProcess:
        if workers is not None:
            self.workers = workers
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([CLI, "serve"], env=self.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 60
        credentials = self.health_credentials
        channel = (
            grpc.secure_channel(self.address, credentials)
            if credentials is not None
            else grpc.insecure_channel(self.address)
        )
        with channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited:\n{self.log.read_text()}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return self
                except grpc.RpcError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    @property
    def api_key(self) -> str:
        return (self.data_dir / "dev-api-key").read_text().strip()

    def task_store(self) -> SqlTaskStore:
        """The server's own SQLite store, opened with the key it made (sealed values open)."""
        sealer = Sealer.from_texts([embedded_key(self.data_dir / "encryption-key")])
        engine = create_engine_for(f"sqlite:///{self.data_dir / 'imageeditor.db'}")
        return SqlTaskStore(engine, sealer)

    def cli(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [CLI, *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and result.returncode != 0:
            raise AssertionError(f"imageeditor {' '.join(args)} failed:\n{result.stderr}")
        return result


def jpeg_bytes(width: int = 800, height: int = 600, variant: int = 0) -> bytes:
    """A JPEG with some structure; each `variant` is another image (jobs that must run, not
    reuse an identical job's result, need images of their own)."""
    image = Image.new("RGB", (width, height))
    for x in range(0, width, 40):  # some structure, so the encoders have work to do
        image.paste((x % 256, 90 + variant % 160, 255 - x % 256), (x, 0, x + 20, height))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
