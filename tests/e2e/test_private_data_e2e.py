"""What a server keeps private: its files are its own, its database keeps URLs and secrets
sealed, and its log shows no key, no secret and no URL token, even when a callback fails and
is retried."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from imageeditor.sdk import Client
from imageeditor.v1 import task_pb2
from tests.e2e.callback_receiver import Answer, Receiver
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes

pytestmark = pytest.mark.e2e

TOKEN = "tok3n-QUERY-9f8e7d"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_folder_and_what_is_in_it_are_private(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)  # an existing install, made before this was the rule
    data.chmod(0o755)
    server = ServerProcess(data, free_port()).start()
    try:
        with Client(server.address, server.api_key) as client:
            task = client.submit(jpeg_bytes(64, 48), resize=(32, 32), format="png")
            *_, done = client.watch(task.id)
        assert done.state == task_pb2.TASK_STATE_SUCCEEDED
        assert mode(data) == 0o700
        assert mode(data / "imageeditor.db") == 0o600
        assert mode(data / "dev-api-key") == 0o600
        assert mode(data / "blobs" / "results") == 0o700
        assert mode(data / "blobs" / "results" / f"{task.id}.png") == 0o600
    finally:
        server.stop()


def test_the_log_never_shows_a_key_a_secret_or_a_url_token(tmp_path: Path) -> None:
    receiver = Receiver().start()
    receiver.answer(Answer(status=500), Answer(status=500))
    server = ServerProcess(
        tmp_path / "data",
        free_port(),
        IMAGEEDITOR_CALLBACK_ALLOWED_HOSTS=receiver.allowlist_entry,
        IMAGEEDITOR_CALLBACK_RETRY_SCHEDULE="0.3,0.3,0.3",
        IMAGEEDITOR_CALLBACK_WINDOW_SECONDS="0.2",
        IMAGEEDITOR_S3_SECRET_ACCESS_KEY="s3-SECRET-value-42",
    ).start()
    try:
        hook = f"{receiver.url}?token={TOKEN}"
        with Client(server.address, server.api_key) as client:
            task = client.submit(jpeg_bytes(64, 48), resize=(32, 32), callback_url=hook)
            *_, done = client.watch(task.id)
            with pytest.raises(Exception):  # noqa: B017 (a bad key, to log a refusal)
                Client(server.address, "iek_not-a-real-key-0000").get_status(task.id)
        receiver.wait_for(3)  # two failures, then the delivery
        api_key = server.api_key
        webhook_secret = (tmp_path / "data" / "dev-webhook-secret").read_text().strip()
    finally:
        server.stop()
        receiver.stop()

    assert done.state == task_pb2.TASK_STATE_SUCCEEDED
    # The database (and its write-ahead log) keeps the callback URL sealed.
    stored = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("imageeditor.db*"))
    assert TOKEN.encode() not in stored and webhook_secret.encode() not in stored
    assert b"enc1." in stored
    log = server.log.read_text()
    assert "callback" in log and "127.0.0.1" in log  # the deliveries were logged
    for secret in (api_key, webhook_secret, TOKEN, "s3-SECRET-value-42", "iek_not-a-real-key"):
        assert secret not in log, secret
