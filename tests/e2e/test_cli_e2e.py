"""The `imageeditor` CLI against a real server process, as a user would run it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from PIL import Image

from imageeditor.v1 import task_pb2
from tests.e2e.harness import CLI, ServerProcess

pytestmark = pytest.mark.e2e


def test_submit_watch_writes_the_result(server: ServerProcess, photo: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = server.cli(
        "submit", str(photo), "--resize", "256x256", "--format", "png", "--watch", "-o", str(out)
    )
    assert result.returncode == 0, result.stderr
    with Image.open(out) as image:
        assert image.format == "PNG"
        assert image.width <= 256 and image.height <= 256


def test_avif_output_with_quality_and_effort(
    server: ServerProcess, photo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.avif"
    options = ("--format", "avif", "--quality", "50", "--effort", "4")
    result = server.cli("submit", str(photo), "--resize", "200x200", *options, "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "avif" in result.stderr  # wrote … (WxH avif N KiB)
    with Image.open(out) as image:
        assert image.format == "AVIF"
        assert max(image.size) == 200
    refused = server.cli("submit", str(photo), "--format", "avif", "--effort", "11")
    assert refused.returncode == 1 and "output.effort" in refused.stderr


def test_json_output_is_the_protobuf_mapping_one_object_per_line(
    server: ServerProcess, photo: Path
) -> None:
    submitted = server.cli("submit", str(photo), "--json", check=True)
    task = json.loads(submitted.stdout)
    assert task["state"] == "TASK_STATE_QUEUED"
    server.cli("watch", task["id"], "--json", check=True)
    status = json.loads(server.cli("status", task["id"], "--json", check=True).stdout)
    assert status["id"] == task["id"]
    assert status["state"] == "TASK_STATE_SUCCEEDED"
    listed = server.cli("list", "--json", check=True).stdout.splitlines()
    assert task["id"] in {json.loads(line)["id"] for line in listed}


def test_batch_with_watch_reports_every_item(
    server: ServerProcess, photo: Path, tmp_path: Path
) -> None:
    second = tmp_path / "second.jpg"
    second.write_bytes(photo.read_bytes())
    result = server.cli("batch", str(photo), str(second), "--resize", "64x64", "--watch", "--json")
    assert result.returncode == 0, result.stderr
    states = {json.loads(line)["state"] for line in result.stdout.splitlines()}
    assert states == {"TASK_STATE_SUCCEEDED"}
    # One bar for the batch, drawn from WatchBatch's aggregate.
    assert result.stderr.splitlines()[-1].endswith("2/2 done: 2 succeeded"), result.stderr


def test_errors_are_one_clear_line_and_a_failing_exit(server: ServerProcess) -> None:
    missing = server.cli("status", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode != 0
    assert "NOT_FOUND" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1

    malformed = server.cli("status", "not-a-task-id")
    assert malformed.returncode != 0
    assert "task_id" in malformed.stderr


def test_an_unreachable_server_is_reported(server: ServerProcess) -> None:
    env_address = server.address
    server.stop()
    result = server.cli("status", "00000000-0000-0000-0000-000000000000")
    assert result.returncode != 0
    assert env_address in result.stderr


def test_a_revoked_key_stops_working_within_seconds(server: ServerProcess) -> None:
    created = server.cli("keys", "create", "reporting", "--json", check=True)
    key = json.loads(created.stdout)
    env = {**server.env, "IMAGEEDITOR_API_KEY": key["key"]}

    def status() -> subprocess.CompletedProcess[str]:
        command = [CLI, "list", "--limit", "1"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    assert status().returncode == 0
    listed = [
        json.loads(line) for line in server.cli("keys", "list", "--json").stdout.split("\n") if line
    ]
    mine = next(k for k in listed if k["id"] == key["id"])
    assert mine["last_used_at"] is not None and mine["revoked_at"] is None

    revoked = server.cli("keys", "revoke", key["id"], check=True)
    assert "revoked" in revoked.stdout
    deadline = time.monotonic() + 10
    while (result := status()).returncode == 0:
        assert time.monotonic() < deadline, "the revoked key still works"
        time.sleep(0.5)
    assert "UNAUTHENTICATED" in result.stderr
    table = server.cli("keys", "list", check=True).stdout
    assert "REVOKED" in table and "reporting" in table


def test_rotating_the_encryption_key_with_db_reencrypt(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGEEDITOR_")}
    env["IMAGEEDITOR_DATA_DIR"] = str(tmp_path)

    def cli(*args: str, keys: str = "") -> subprocess.CompletedProcess[str]:
        run_env = {**env, "IMAGEEDITOR_ENCRYPTION_KEYS": keys} if keys else env
        result = subprocess.run(
            [CLI, *args], env=run_env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
        return result

    cli("keys", "create", "reporting")  # its webhook secret is sealed under the embedded key
    old = (tmp_path / "encryption-key").read_text().strip()
    new = cli("keys", "encryption-key").stdout.strip()
    assert new != old and len(new) > 40

    rotated = cli("db", "reencrypt", keys=f"{new},{old}")
    assert "sealed 1 value(s) again under the newest key: 1 webhook_secrets" in rotated.stdout
    assert re.search(r"100% \d+\.\ds webhook_secrets 1/1 rows", rotated.stderr)  # progress
    # The old key can go: with the new one alone everything opens, and nothing is left to do.
    again = cli("db", "reencrypt", keys=new)
    assert again.stdout.startswith("sealed 0 value(s)")
    assert "whsec_" in cli("keys", "webhook-secret", "reporting", keys=new).stdout


def test_health_exits_zero_only_while_the_server_is_serving(server: ServerProcess) -> None:
    serving = server.cli("health")
    assert (serving.returncode, serving.stdout.strip()) == (0, f"{server.address}: SERVING")
    assert server.cli("health", "imageeditor.v1.ImageEditorService").returncode == 0
    unknown = server.cli("health", "no.such.Service")
    assert unknown.returncode == 1 and "NOT_FOUND" in unknown.stderr
    server.stop()
    gone = server.cli("health", "--timeout", "1")
    assert gone.returncode == 1 and "UNAVAILABLE" in gone.stderr


def test_status_shows_the_time_of_each_stage(server: ServerProcess, photo: Path) -> None:
    from imageeditor.sdk import Client

    with Client(server.address, server.api_key) as client:
        task = client.submit(photo, resize=(64, 64))
        *_, done = client.watch(task.id)
        watched = done.stage_timings
        stored = client.get_status(task.id).stage_timings
    assert [t.stage for t in stored] == [t.stage for t in watched]
    names = [task_pb2.Stage.Name(t.stage) for t in stored]
    order = ["STAGE_FETCH", "STAGE_VALIDATE", "STAGE_EDIT", "STAGE_STYLE", "STAGE_ENCODE"]
    assert names[0] == "STAGE_FETCH" and names[-1] == "STAGE_STORE"
    assert names[:-1] == [name for name in order if name in names]
    assert all(t.HasField("duration") for t in stored)
    starts = [t.start_time.ToDatetime() for t in stored]
    assert starts == sorted(starts)
    shown = server.cli("status", task.id)
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"stages: fetch \d+ ms · validate \d+ ms · edit \d+ ms", shown.stdout)
