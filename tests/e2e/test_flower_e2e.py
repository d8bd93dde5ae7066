"""`imageeditor flower` against a production cluster: a finished task is in its API under our
task id, behind basic auth."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imageeditor.sdk.operations import grayscale_operation
from tests.e2e.harness import CLI, free_port, jpeg_bytes
from tests.e2e.production_harness import Cluster, production_env, running_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

AUTH = "operator:flower-e2e-password"


@pytest.fixture
def cluster(tmp_path: Path, fresh_postgres_url: str, redis_url: str) -> Iterator[Cluster]:
    with running_cluster(
        tmp_path,
        fresh_postgres_url,
        redis_url,
        IMAGEEDITOR_FLOWER_PORT=str(free_port()),
        IMAGEEDITOR_FLOWER_BASIC_AUTH=AUTH,
    ) as cluster:
        yield cluster


def get(url: str, auth: str | None = AUTH) -> Any:
    request = urllib.request.Request(url)
    if auth is not None:
        token = base64.b64encode(auth.encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.load(reply)


@pytest.fixture
def flower(cluster: Cluster, tmp_path: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{cluster.env['IMAGEEDITOR_FLOWER_PORT']}"
    log = tmp_path / "flower.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CLI, "flower"], env=production_env(**cluster.env), stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                get(f"{url}/api/workers?refresh=1")
                break
            except (OSError, ValueError):
                assert time.monotonic() < deadline, f"flower did not start:\n{log.read_text()}"
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_flower_shows_a_finished_task_under_its_task_id(cluster: Cluster, flower: str) -> None:
    with cluster.client() as client:
        task = client.submit(jpeg_bytes(64, 48), operations=[grayscale_operation()])
    cluster.wait_until_finished([task.id], timeout=60)
    deadline = time.monotonic() + 20
    while True:
        try:
            info = get(f"{flower}/api/task/info/{task.id}")
            if info.get("state") == "SUCCESS":
                break
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
        assert time.monotonic() < deadline, "Flower never saw the task succeed"
        time.sleep(0.3)
    assert info["uuid"] == task.id
    assert info["name"] == "imageeditor.run_task"
    assert info["worker"].startswith("imageeditor-")

    with pytest.raises(urllib.error.HTTPError) as refused:
        get(f"{flower}/api/task/info/{task.id}", auth=None)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as wrong:
        get(f"{flower}/api/task/info/{task.id}", auth="operator:wrong")
    assert wrong.value.code == 401


def test_flower_refuses_to_start_without_credentials(cluster: Cluster) -> None:
    env = production_env(**{**cluster.env, "IMAGEEDITOR_FLOWER_BASIC_AUTH": ""})
    done = subprocess.run([CLI, "flower"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "IMAGEEDITOR_FLOWER_BASIC_AUTH" in done.stderr
