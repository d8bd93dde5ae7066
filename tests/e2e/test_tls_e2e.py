"""TLS end to end: a real server with a certificate the test makes, called by the SDK (sync
and async) and the CLI; refused in plain text and under a CA that did not sign it; with a
client CA, mutual TLS: only clients with a certificate it signed get in."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from imageeditor.sdk import AsyncClient, Client, Unavailable
from imageeditor.v1 import task_pb2
from tests.e2e.harness import CLI, ServerProcess, free_port, jpeg_bytes
from tests.e2e.tls_certs import Authority

pytestmark = pytest.mark.e2e


@pytest.fixture
def authority(tmp_path: Path) -> Authority:
    return Authority(tmp_path)


def tls_server(tmp_path: Path, authority: Authority, *, mutual: bool = False) -> ServerProcess:
    server_pair = authority.issue("server", server=True)
    env = {
        "IMAGEEDITOR_TLS_CERT_FILE": str(server_pair.cert),
        "IMAGEEDITOR_TLS_KEY_FILE": str(server_pair.key),
    }
    client = None
    if mutual:
        env["IMAGEEDITOR_TLS_CLIENT_CA_FILE"] = str(authority.pair.cert)
        client = authority.issue("health-checker", server=False)
    credentials = grpc.ssl_channel_credentials(
        authority.pair.cert.read_bytes(),
        client.key.read_bytes() if client else None,
        client.cert.read_bytes() if client else None,
    )
    return ServerProcess(
        tmp_path / "data", free_port(), health_credentials=credentials, **env
    ).start()


@pytest.fixture
def server(tmp_path: Path, authority: Authority) -> Iterator[ServerProcess]:
    started = tls_server(tmp_path, authority)
    yield started
    started.stop()


def test_the_sdk_and_the_cli_work_over_tls(
    server: ServerProcess, authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMAGEEDITOR_TLS_CA_FILE", str(authority.pair.cert))
    with Client(server.address, server.api_key) as client:
        task = client.submit(jpeg_bytes(64, 48), resize=(32, 32))
        *_, done = client.watch(task.id)
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED

    async def over_aio() -> int:
        async with AsyncClient(server.address, server.api_key) as client:
            return (await client.get_status(task.id)).version

    assert asyncio.run(over_aio()) == done.version

    env = {**server.env, "IMAGEEDITOR_TLS_CA_FILE": str(authority.pair.cert)}
    listed = subprocess.run(
        [CLI, "status", task.id, "--tls"], env=env, capture_output=True, text=True, timeout=60
    )
    assert listed.returncode == 0, listed.stderr
    assert "SUCCEEDED" in listed.stdout


def test_a_ca_file_given_to_the_client_is_enough(
    server: ServerProcess, authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("IMAGEEDITOR_TLS_CA_FILE", raising=False)
    monkeypatch.delenv("IMAGEEDITOR_TLS", raising=False)
    with Client(server.address, server.api_key, ca_file=authority.pair.cert) as client:
        batch = client.batch_submit([jpeg_bytes(32, 32), jpeg_bytes(40, 30)], format="png")
    assert [r.WhichOneof("outcome") for r in batch.results] == ["task", "task"]
    assert refused(Client(server.address, server.api_key, timeout=5))  # plain text: refused


def refused(client: Client) -> bool:
    """Whether a call over `client` fails to connect (and the client is closed after)."""
    with client:
        try:
            client.get_status("00000000-0000-4000-8000-000000000000")
        except Unavailable:
            return True
    return False


def test_plain_text_and_an_unknown_ca_are_refused(
    server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert refused(Client(server.address, server.api_key, tls=False, timeout=5))
    (tmp_path / "other").mkdir()
    stranger = Authority(tmp_path / "other", name="another CA")
    monkeypatch.setenv("IMAGEEDITOR_TLS_CA_FILE", str(stranger.pair.cert))
    assert refused(Client(server.address, server.api_key, timeout=5))


def test_mutual_tls_lets_in_only_clients_with_a_certificate(
    tmp_path: Path, authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = tls_server(tmp_path, authority, mutual=True)
    try:
        monkeypatch.setenv("IMAGEEDITOR_TLS_CA_FILE", str(authority.pair.cert))
        assert refused(Client(server.address, server.api_key, timeout=5))
        client_pair = authority.issue("reporting-service", server=False)
        monkeypatch.setenv("IMAGEEDITOR_TLS_CLIENT_CERT_FILE", str(client_pair.cert))
        monkeypatch.setenv("IMAGEEDITOR_TLS_CLIENT_KEY_FILE", str(client_pair.key))
        with Client(server.address, server.api_key) as known:
            assert list(known.list_tasks()) == []
    finally:
        server.stop()
