"""Choosing the blob store by URL, and the download links of results.

`IMAGEEDITOR_STORAGE_URL` names the store: `file:///path` keeps blobs on local disk (the
embedded default), `s3://bucket/prefix` in S3 or an S3-compatible store.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from imageeditor.core.adapters.blobs.local import LocalBlobStore
from imageeditor.core.adapters.blobs.s3 import MAX_PRESIGN_SECONDS, S3BlobStore, s3_client
from imageeditor.core.errors import InvalidArgument
from imageeditor.core.ports import BlobStore
from imageeditor.core.settings import Settings
from imageeditor.core.task import ResultInfo

STORAGE_VARIABLE = "IMAGEEDITOR_STORAGE_URL"


def blob_store_from_settings(settings: Settings) -> BlobStore:
    """The blob store `settings.effective_storage_url` names. An S3 bucket must already exist:
    nothing here creates one (see `S3BlobStore.ensure_bucket` for development)."""
    url = settings.effective_storage_url
    parts = urlsplit(url)
    if parts.scheme == "file" and parts.netloc in ("", "localhost") and parts.path:
        return LocalBlobStore(Path(unquote(parts.path)))
    if parts.scheme == "s3" and parts.netloc and not (parts.query or parts.fragment):
        _check_presign_seconds(settings.s3_presign_seconds)
        return S3BlobStore(parts.netloc, unquote(parts.path), s3_client(settings))
    raise InvalidArgument(
        f"{STORAGE_VARIABLE}={url!r}: expected file:///path or s3://bucket/prefix",
        field_violations={STORAGE_VARIABLE: "expected file:///path or s3://bucket/prefix"},
        reason="BAD_SETTING",
    )


def _check_presign_seconds(seconds: int) -> None:
    if not 0 <= seconds <= MAX_PRESIGN_SECONDS:
        variable = "IMAGEEDITOR_S3_PRESIGN_SECONDS"
        raise InvalidArgument(
            f"{variable}={seconds}: expected 0 (off) to {MAX_PRESIGN_SECONDS}",
            field_violations={variable: f"expected 0 to {MAX_PRESIGN_SECONDS}"},
            reason="BAD_SETTING",
        )


class ResultLinks:
    """Presigned download URLs for results, where the store can sign them and the settings
    ask for them; otherwise every link is "" and clients use GetResult."""

    def __init__(self, signer: S3BlobStore | None = None, seconds: int = 0) -> None:
        self._signer = signer if seconds > 0 else None
        self._seconds = seconds

    @classmethod
    def for_store(cls, blobs: BlobStore, settings: Settings) -> ResultLinks:
        """Links signed by `blobs` if it is an S3 store and `s3_presign_seconds` > 0."""
        signer = blobs if isinstance(blobs, S3BlobStore) else None
        return cls(signer, settings.s3_presign_seconds)

    def download_url(self, result: ResultInfo | None) -> str:
        """A URL that downloads `result` for the configured time, or "" when there is none."""
        if self._signer is None or result is None:
            return ""
        return self._signer.presigned_url(result.key, self._seconds)
