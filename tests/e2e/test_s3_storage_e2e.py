"""An embedded server that keeps its blobs in S3 (moto's standalone server on loopback)."""

from __future__ import annotations

import hashlib
import secrets
import urllib.request
from pathlib import Path

import pytest

from imageeditor.core.adapters.blobs.s3 import S3BlobStore, s3_client
from imageeditor.core.settings import Settings
from imageeditor.sdk import Client
from imageeditor.v1 import task_pb2
from tests.e2e.harness import ServerProcess, free_port

pytestmark = pytest.mark.e2e


def test_results_are_stored_in_s3_and_downloadable_by_presigned_url(
    tmp_path: Path, s3_endpoint: str, photo: Path
) -> None:
    credentials = {"s3_access_key_id": "test", "s3_secret_access_key": "test"}
    bucket = S3BlobStore(
        f"e2e-{secrets.token_hex(6)}",
        "",
        s3_client(Settings(s3_endpoint_url=s3_endpoint, **credentials)),
    )
    bucket.ensure_bucket()  # production buckets exist beforehand; the server never makes one
    server = ServerProcess(
        tmp_path / "data",
        free_port(),
        IMAGEEDITOR_STORAGE_URL=f"s3://{bucket.bucket}/imageeditor",
        IMAGEEDITOR_S3_ENDPOINT_URL=s3_endpoint,
        IMAGEEDITOR_S3_ACCESS_KEY_ID="test",
        IMAGEEDITOR_S3_SECRET_ACCESS_KEY="test",
        IMAGEEDITOR_S3_PRESIGN_SECONDS="300",
    ).start()
    try:
        with Client(server.address, server.api_key) as client:
            task = client.submit(photo, resize=(128, 128), format="png")
            final = list(client.watch(task.id))[-1]
            info, data = client.get_result(task.id)
    finally:
        server.stop()

    assert final.state == task_pb2.TASK_STATE_SUCCEEDED
    assert final.result.uri == f"s3://{bucket.bucket}/imageeditor/results/{task.id}.png"
    assert info.uri == final.result.uri
    assert hashlib.sha256(data).hexdigest() == info.sha256
    assert bucket.get(f"imageeditor/results/{task.id}.png") == data
    assert not (tmp_path / "data" / "blobs").exists()
    for url in (final.result.download_url, info.download_url):
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == data
