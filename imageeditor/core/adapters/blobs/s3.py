"""Blob storage in S3 or an S3-compatible store (MinIO, Ceph, moto): `s3://` URIs.

boto3's exceptions are translated here, at the boundary, into the domain error tree: a missing
object is NotFound, an unreachable or failing store is Unavailable (a worker retries it), any
other refusal (no bucket, access denied) is Internal: configuration, not the caller's fault.
"""

from __future__ import annotations

import mimetypes
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from imageeditor.core.errors import (
    ImageEditorError,
    Internal,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from imageeditor.core.settings import Settings

# SigV4 presigned URLs cannot live longer than seven days.
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
# Answers S3 gives when it is overloaded or briefly failing: worth a retry, like a 5xx.
TRANSIENT_CODES = frozenset({"SlowDown", "Throttling", "RequestTimeout", "ServiceUnavailable"})


def s3_client(settings: Settings, *, connect_timeout: float = 5, read_timeout: float = 30) -> Any:
    """A boto3 S3 client from the settings, with bounded timeouts and standard retries, so an
    unreachable store fails a call in seconds instead of hanging a worker or an RPC."""
    endpoint = settings.s3_endpoint_url or None
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"mode": "standard", "max_attempts": 3},
        signature_version="s3v4",
        # S3-compatible servers on a plain host:port have no per-bucket DNS names.
        s3={"addressing_style": "path"} if endpoint else {},
    )
    # A session per client: boto3's default session is not safe to share between threads.
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=settings.s3_region or None,
        aws_access_key_id=settings.s3_access_key_id or None,
        aws_secret_access_key=settings.s3_secret_access_key or None,
        config=config,
    )


class S3BlobStore:
    """Keeps each blob as the object `<prefix>/<key>` in `bucket`; `client` is a boto3 S3
    client (thread-safe, shared by every thread of the process)."""

    def __init__(self, bucket: str, prefix: str, client: Any) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    def _object_key(self, key: str) -> str:
        normal = posixpath.normpath(key) if key else ""
        if not normal or normal == "." or normal.startswith(("/", "..")):
            raise InvalidArgument(f"blob key {key!r} leaves the store", reason="BAD_BLOB_KEY")
        return f"{self.prefix}/{normal}" if self.prefix else normal

    def put(self, key: str, data: bytes) -> str:
        """Store `data` with one PutObject (atomic in S3) and return its `s3://` URI."""
        name = self._object_key(key)
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        with _storage_errors(key):
            self._client.put_object(
                Bucket=self.bucket, Key=name, Body=data, ContentType=content_type
            )
        return f"s3://{self.bucket}/{name}"

    def get(self, key: str) -> bytes:
        """The whole blob; for results, prefer `open_chunks`."""
        name = self._object_key(key)
        with _storage_errors(key):
            body = self._client.get_object(Bucket=self.bucket, Key=name)["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
        return data

    def open_chunks(self, key: str, chunk_size: int) -> Iterator[bytes]:
        """Stream the blob in chunks of at most `chunk_size` bytes, never holding all of it."""
        name = self._object_key(key)
        with _storage_errors(key):
            body = self._client.get_object(Bucket=self.bucket, Key=name)["Body"]
        try:
            chunks = body.iter_chunks(chunk_size)
            while True:
                # Only the read is translated: an exception thrown into the generator at
                # `yield` (a closed stream) is the consumer's, not the store's.
                with _storage_errors(key):
                    chunk = next(chunks, b"")
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def delete(self, key: str) -> None:
        """Remove the blob; removing a missing blob is not an error (S3 answers 204 too)."""
        name = self._object_key(key)
        with _storage_errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=name)

    def copy(self, source: str, target: str) -> str:
        """CopyObject: the store copies the bytes itself (objects up to 5 GB)."""
        name = self._object_key(target)
        with _storage_errors(source):
            self._client.copy_object(
                Bucket=self.bucket,
                Key=name,
                CopySource={"Bucket": self.bucket, "Key": self._object_key(source)},
            )
        return f"s3://{self.bucket}/{name}"

    def presigned_url(self, key: str, seconds: int) -> str:
        """A URL that GETs the blob without credentials for `seconds`. Signed locally: no call
        to the store, and no check that the blob exists."""
        if not 0 < seconds <= MAX_PRESIGN_SECONDS:
            raise InvalidArgument(
                f"presigned URLs live 1 to {MAX_PRESIGN_SECONDS} seconds, not {seconds}",
                reason="BAD_PRESIGN_SECONDS",
            )
        url: str = self._client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": self._object_key(key)},
            ExpiresIn=seconds,
        )
        return url

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing. For development and tests only: production
        buckets are provisioned (with their policies and lifecycle rules) outside the service."""
        with _storage_errors(self.bucket):
            try:
                self._client.head_bucket(Bucket=self.bucket)
                return
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
            region = self._client.meta.region_name
            if region in (None, "us-east-1"):
                self._client.create_bucket(Bucket=self.bucket)
            else:
                self._client.create_bucket(
                    Bucket=self.bucket,
                    CreateBucketConfiguration={"LocationConstraint": region},
                )


def _status(exc: ClientError) -> int:
    status: int = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return status


@contextmanager
def _storage_errors(key: str) -> Iterator[None]:
    try:
        yield
    except ClientError as exc:
        raise _translate(exc, key) from exc
    except (BotoConnectionError, HTTPClientError) as exc:
        raise Unavailable(
            f"object storage unreachable: {exc}", reason="STORAGE_UNAVAILABLE"
        ) from exc


def _translate(exc: ClientError, key: str) -> ImageEditorError:
    code = exc.response.get("Error", {}).get("Code", "")
    status = _status(exc)
    if code in ("NoSuchKey", "NotFound") or (status == 404 and code != "NoSuchBucket"):
        return NotFound(f"blob {key} not found", reason="BLOB_NOT_FOUND")
    if status >= 500 or code in TRANSIENT_CODES:
        return Unavailable(f"object storage failed: {code}", reason="STORAGE_UNAVAILABLE")
    return Internal(f"object storage refused {key}: {code}", reason="STORAGE_ERROR")
