"""End-to-end fixtures: real server processes, started and stopped per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.callback_receiver import Receiver
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data", free_port()).start()
    yield process
    process.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[type[ServerProcess]]:
    """For tests that start and stop servers themselves; all are stopped at the end."""
    started: list[ServerProcess] = []

    class Tracked(ServerProcess):
        def start(self, workers: int | None = None) -> ServerProcess:
            started.append(self)
            return super().start(workers)

    yield Tracked
    for process in started:
        process.stop()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_bytes())
    return path


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A callback receiver on a loopback port (answering 204 unless scripted otherwise)."""
    started = Receiver().start()
    yield started
    started.stop()
