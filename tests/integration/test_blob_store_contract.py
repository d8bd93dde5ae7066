"""The BlobStore contract, run against local disk and against a real S3-compatible server
(moto's standalone server on loopback), then what only the S3 store does."""

from __future__ import annotations

import os
import secrets
import socket
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from imageeditor.core.adapters.blobs.factory import ResultLinks, blob_store_from_settings
from imageeditor.core.adapters.blobs.local import LocalBlobStore
from imageeditor.core.adapters.blobs.s3 import S3BlobStore, s3_client
from imageeditor.core.errors import Internal, InvalidArgument, NotFound, Unavailable
from imageeditor.core.ports import BlobStore
from imageeditor.core.settings import MIB, Settings
from imageeditor.core.task import ImageFormat, ResultInfo

if TYPE_CHECKING:
    from tests.conftest import MotoServer


def s3_settings(endpoint: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "s3_endpoint_url": endpoint,
        "s3_access_key_id": "test",
        "s3_secret_access_key": "test",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def new_s3_store(endpoint: str, prefix: str = "blobs", **client_options: float) -> S3BlobStore:
    store = S3BlobStore(
        f"test-{secrets.token_hex(6)}", prefix, s3_client(s3_settings(endpoint), **client_options)
    )
    store.ensure_bucket()
    return store


@dataclass
class Subject:
    """A store under test and the URI it should return for a key."""

    store: BlobStore
    uri_for: Callable[[str], str]


@pytest.fixture(params=["local", "s3"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    if request.param == "local":
        root = tmp_path / "blobs"
        return Subject(LocalBlobStore(root), lambda key: (root / key).resolve().as_uri())
    s3 = new_s3_store(request.getfixturevalue("s3_endpoint"))
    return Subject(s3, lambda key: f"s3://{s3.bucket}/blobs/{key}")


# -- the contract --------------------------------------------------------------------------------


def test_put_then_get_returns_the_bytes_and_the_uri(subject: Subject) -> None:
    uri = subject.store.put("results/a.png", b"\x89PNG result")

    assert uri == subject.uri_for("results/a.png")
    assert subject.store.get("results/a.png") == b"\x89PNG result"


def test_put_overwrites(subject: Subject) -> None:
    subject.store.put("inputs/x", b"first")
    subject.store.put("inputs/x", b"second")

    assert subject.store.get("inputs/x") == b"second"


def test_open_chunks_streams_a_large_blob_in_bounded_chunks(subject: Subject) -> None:
    data = os.urandom(3 * MIB + 1234)
    subject.store.put("results/big.webp", data)

    chunks = list(subject.store.open_chunks("results/big.webp", 256 * 1024))

    assert len(chunks) > 1
    assert all(0 < len(chunk) <= 256 * 1024 for chunk in chunks)
    assert b"".join(chunks) == data


def test_missing_blob_is_not_found(subject: Subject) -> None:
    with pytest.raises(NotFound) as got:
        subject.store.get("results/missing.png")
    assert got.value.reason == "BLOB_NOT_FOUND"
    with pytest.raises(NotFound):
        list(subject.store.open_chunks("results/missing.png", 1024))


def test_delete_is_idempotent(subject: Subject) -> None:
    subject.store.put("inputs/gone", b"data")

    subject.store.delete("inputs/gone")
    subject.store.delete("inputs/gone")
    subject.store.delete("inputs/never-existed")

    with pytest.raises(NotFound):
        subject.store.get("inputs/gone")


def test_a_copy_outlives_its_source_and_a_missing_source_is_not_found(subject: Subject) -> None:
    subject.store.put("results/a.png", b"the bytes")

    uri = subject.store.copy("results/a.png", "results/b/c.png")
    subject.store.delete("results/a.png")

    assert subject.store.get("results/b/c.png") == b"the bytes"
    assert uri.endswith("results/b/c.png")
    with pytest.raises(NotFound) as got:
        subject.store.copy("results/a.png", "results/d.png")
    assert got.value.reason == "BLOB_NOT_FOUND"
    with pytest.raises(NotFound):
        subject.store.get("results/d.png")


@pytest.mark.parametrize("key", ["", "../escape", "a/../../escape", "/etc/passwd"])
def test_keys_that_leave_the_store_are_refused(subject: Subject, key: str) -> None:
    for call in (
        lambda: subject.store.put(key, b"x"),
        lambda: subject.store.get(key),
        lambda: list(subject.store.open_chunks(key, 1024)),
        lambda: subject.store.delete(key),
    ):
        with pytest.raises(InvalidArgument) as got:
            call()
        assert got.value.reason == "BAD_BLOB_KEY"


# -- S3 only -------------------------------------------------------------------------------------


@pytest.fixture
def s3_store(s3_endpoint: str) -> S3BlobStore:
    return new_s3_store(s3_endpoint)


def test_objects_carry_the_content_type_of_their_extension(s3_store: S3BlobStore) -> None:
    s3_store.put("results/a.png", b"png")
    s3_store.put("inputs/raw", b"raw")

    client = s3_store._client
    head = client.head_object(Bucket=s3_store.bucket, Key="blobs/results/a.png")
    assert head["ContentType"] == "image/png"
    head = client.head_object(Bucket=s3_store.bucket, Key="blobs/inputs/raw")
    assert head["ContentType"] == "application/octet-stream"


def test_an_empty_prefix_keeps_keys_at_the_bucket_root(s3_endpoint: str) -> None:
    store = new_s3_store(s3_endpoint, prefix="")

    assert store.put("results/a.png", b"x") == f"s3://{store.bucket}/results/a.png"


def test_a_presigned_url_downloads_the_blob_without_credentials(s3_store: S3BlobStore) -> None:
    data = os.urandom(100_000)
    s3_store.put("results/a.jpg", data)

    with urllib.request.urlopen(s3_store.presigned_url("results/a.jpg", 60), timeout=10) as r:
        assert r.read() == data


def test_presigned_urls_have_a_bounded_lifetime(s3_store: S3BlobStore) -> None:
    for seconds in (0, 8 * 24 * 3600):
        with pytest.raises(InvalidArgument):
            s3_store.presigned_url("results/a.jpg", seconds)


def test_result_links_are_presigned_only_when_configured(s3_store: S3BlobStore) -> None:
    s3_store.put("results/a.png", b"png bytes")
    result = ResultInfo(
        width=1,
        height=1,
        format=ImageFormat.PNG,
        size_bytes=9,
        sha256="",
        uri="",
        key="results/a.png",
    )
    local = LocalBlobStore(Path("unused"))

    assert ResultLinks.for_store(s3_store, Settings()).download_url(result) == ""
    assert ResultLinks.for_store(local, Settings(s3_presign_seconds=60)).download_url(result) == ""
    url = ResultLinks.for_store(s3_store, Settings(s3_presign_seconds=60)).download_url(result)
    with urllib.request.urlopen(url, timeout=10) as r:
        assert r.read() == b"png bytes"
    assert ResultLinks(s3_store, 60).download_url(None) == ""


def test_a_missing_bucket_is_a_configuration_error(s3_endpoint: str) -> None:
    store = S3BlobStore("no-such-bucket", "", s3_client(s3_settings(s3_endpoint)))

    with pytest.raises(Internal) as got:
        store.put("results/a.png", b"x")
    assert got.value.reason == "STORAGE_ERROR"


def test_a_stopped_server_is_unavailable(moto_server: MotoServer) -> None:
    store = new_s3_store(moto_server.url)
    store.put("results/a.png", b"x")
    moto_server.stop()

    started = time.monotonic()
    with pytest.raises(Unavailable) as got:
        store.get("results/a.png")
    assert got.value.reason == "STORAGE_UNAVAILABLE"
    assert time.monotonic() - started < 15  # a few backed-off retries, no hang


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A port that accepts connections and never answers, like a wedged server."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def test_a_server_that_never_answers_times_out_as_unavailable(silent_endpoint: str) -> None:
    client = s3_client(s3_settings(silent_endpoint), connect_timeout=0.5, read_timeout=0.5)
    store = S3BlobStore("bucket", "", client)

    started = time.monotonic()
    with pytest.raises(Unavailable):
        store.get("results/a.png")
    assert time.monotonic() - started < 15


# -- choosing the store by URL -------------------------------------------------------------------


def test_file_urls_and_the_default_choose_local_disk(tmp_path: Path) -> None:
    chosen = blob_store_from_settings(Settings(storage_url=(tmp_path / "my blobs").as_uri()))
    assert isinstance(chosen, LocalBlobStore)
    chosen.put("inputs/a", b"x")
    assert (tmp_path / "my blobs" / "inputs" / "a").read_bytes() == b"x"

    default = blob_store_from_settings(Settings(data_dir=tmp_path / "data"))
    assert default.put("inputs/a", b"y") == (tmp_path / "data/blobs/inputs/a").as_uri()


def test_s3_urls_choose_s3_with_the_bucket_and_prefix(s3_endpoint: str) -> None:
    bucket = f"test-{secrets.token_hex(6)}"
    settings = s3_settings(s3_endpoint, storage_url=f"s3://{bucket}/some/prefix/")
    chosen = blob_store_from_settings(settings)
    assert isinstance(chosen, S3BlobStore)
    chosen.ensure_bucket()

    assert chosen.put("results/a.png", b"x") == f"s3://{bucket}/some/prefix/results/a.png"
    assert chosen.get("results/a.png") == b"x"


@pytest.mark.parametrize(
    "url", ["http://host/path", "s3://", "s3:///prefix", "file://host/path", "blobs", "s3://b?x=1"]
)
def test_other_storage_urls_are_refused_by_name(url: str) -> None:
    with pytest.raises(InvalidArgument) as got:
        blob_store_from_settings(Settings(storage_url=url))
    assert "IMAGEEDITOR_STORAGE_URL" in got.value.field_violations


def test_presign_seconds_beyond_seven_days_are_refused() -> None:
    settings = Settings(storage_url="s3://bucket", s3_presign_seconds=8 * 24 * 3600)
    with pytest.raises(InvalidArgument) as got:
        blob_store_from_settings(settings)
    assert "IMAGEEDITOR_S3_PRESIGN_SECONDS" in got.value.field_violations
