"""API-key authentication: `authorization: Bearer <key>` → the calling user's id.

Keys are looked up by their SHA-256 hash; a short in-process cache keeps the store off the
hot path, so a revoked key (`imageeditor keys revoke`) stops working within CACHE_SECONDS. A
key that is not cached costs a store lookup, so failures are throttled per peer
(imageeditor.server.quotas.FailureThrottle): a peer guessing keys is refused before its guesses
reach the
store. When a key was last used is written at most every TOUCH_SECONDS.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

from grpc.aio import Metadata

from imageeditor.core.apikeys import hash_api_key
from imageeditor.core.errors import ImageEditorError, Unauthenticated
from imageeditor.core.ports import ApiKeyStore
from imageeditor.core.task import utcnow
from imageeditor.server.quotas import FailureThrottle

CACHE_SECONDS = 5.0
CACHE_ENTRIES = 10_000
TOUCH_SECONDS = 60.0


def bearer_token(metadata: Metadata | None) -> str:
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            break
    raise Unauthenticated(
        "send `authorization: Bearer <api key>` metadata", reason="API_KEY_MISSING"
    )


class Authenticator:
    def __init__(
        self,
        keys: ApiKeyStore,
        failures: FailureThrottle | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = keys
        self._failures = failures or FailureThrottle(rate=0, burst=0)  # 0: unthrottled
        self._clock = clock
        self._cache: dict[str, tuple[float, str]] = {}
        self._touched: dict[str, float] = {}  # key id -> when its last use was written
        self._lock = threading.Lock()

    def cached_user(self, metadata: Metadata | None) -> str | None:
        """The user id of the request's API key when it was checked within CACHE_SECONDS,
        else None (then `authenticate` must ask the store). Never blocks: for the event loop."""
        try:
            key_hash = hash_api_key(bearer_token(metadata))
        except Unauthenticated:
            return None
        return self._cached(key_hash, self._clock())

    def _cached(self, key_hash: str, now: float) -> str | None:
        with self._lock:
            cached = self._cache.get(key_hash)
        return cached[1] if cached is not None and cached[0] > now else None

    def authenticate(self, metadata: Metadata | None, peer: str = "") -> str:
        """The user id the request's API key belongs to; Unauthenticated otherwise, and
        ResourceExhausted (AUTH_THROTTLED) for a `peer` that failed too often of late."""
        try:
            key_hash = hash_api_key(bearer_token(metadata))
        except Unauthenticated:
            self._failures.failed(peer)
            raise
        now = self._clock()
        if (user := self._cached(key_hash, now)) is not None:
            return user
        self._failures.check(peer)
        record = self._keys.find_api_key(key_hash)
        if record is None:
            self._failures.failed(peer)
            raise Unauthenticated("the API key is not valid", reason="API_KEY_INVALID")
        if record.revoked_at is not None:
            self._failures.failed(peer)
            raise Unauthenticated("the API key was revoked", reason="API_KEY_REVOKED")
        self._touch(record.id, now)
        with self._lock:
            if len(self._cache) >= CACHE_ENTRIES:
                self._cache.clear()
            self._cache[key_hash] = (now + CACHE_SECONDS, record.user_id)
        return record.user_id

    def _touch(self, key_id: str, now: float) -> None:
        """Record the key's use, at most once per TOUCH_SECONDS (a failed write is no error:
        the time of last use is for operators, not for deciding anything)."""
        with self._lock:
            if now - self._touched.get(key_id, -TOUCH_SECONDS) < TOUCH_SECONDS:
                return
            if len(self._touched) >= CACHE_ENTRIES:
                self._touched.clear()
            self._touched[key_id] = now
        with contextlib.suppress(ImageEditorError):
            self._keys.touch_api_key(key_id, utcnow())
