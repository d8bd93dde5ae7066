"""Signing and verifying callbacks in the manner of the Standard Webhooks spec.

A signed request carries `webhook-id`, `webhook-timestamp` (Unix seconds) and
`webhook-signature`: space-separated `v1,<base64 HMAC-SHA256>` over `"{id}.{timestamp}." + body`,
one per secret, so that during a rotation the old and the new secret both sign. Secrets are
`whsec_` + base64 of random bytes; the HMAC key is the base64-decoded part.

Stdlib only: the SDK imports this module for `verify_webhook`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets as _random
import time
from collections.abc import Mapping, Sequence

from imageeditor.core.errors import Unauthenticated

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE_SECONDS = 300.0

WEBHOOK_SIGNATURE_INVALID = "WEBHOOK_SIGNATURE_INVALID"
WEBHOOK_TIMESTAMP_STALE = "WEBHOOK_TIMESTAMP_STALE"
WEBHOOK_HEADERS_MISSING = "WEBHOOK_HEADERS_MISSING"

_HEADER_ID = "webhook-id"
_HEADER_TIMESTAMP = "webhook-timestamp"
_HEADER_SIGNATURE = "webhook-signature"


def new_webhook_secret() -> str:
    """A fresh secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(32)).decode("ascii")


def _key(secret: str) -> bytes:
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            "a webhook secret must be base64, optionally prefixed with whsec_"
        ) from exc


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")


def sign(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,<base64 HMAC>` per secret, space-separated."""
    if not secrets:
        raise ValueError("at least one webhook secret is needed to sign")
    return " ".join(
        f"{SIGNATURE_VERSION},{_signature(_key(secret), msg_id, timestamp, body)}"
        for secret in secrets
    )


def signed_headers(secrets: Sequence[str], msg_id: str, body: bytes, now: float) -> dict[str, str]:
    """The three Standard Webhooks headers for one request sent at `now` (Unix seconds)."""
    timestamp = int(now)
    return {
        _HEADER_ID: msg_id,
        _HEADER_TIMESTAMP: str(timestamp),
        _HEADER_SIGNATURE: sign(secrets, msg_id, timestamp, body),
    }


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Return if one `v1` signature matches `secret` and the timestamp is within `tolerance`.

    Raises `Unauthenticated` with reason WEBHOOK_HEADERS_MISSING, WEBHOOK_TIMESTAMP_STALE or
    WEBHOOK_SIGNATURE_INVALID. Header names are matched case-insensitively.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get(_HEADER_ID)
    raw_timestamp = lowered.get(_HEADER_TIMESTAMP)
    signature_header = lowered.get(_HEADER_SIGNATURE)
    if not msg_id or not raw_timestamp or not signature_header:
        missing = [
            name
            for name, value in (
                (_HEADER_ID, msg_id),
                (_HEADER_TIMESTAMP, raw_timestamp),
                (_HEADER_SIGNATURE, signature_header),
            )
            if not value
        ]
        raise Unauthenticated(
            f"webhook headers missing: {', '.join(missing)}", reason=WEBHOOK_HEADERS_MISSING
        )
    try:
        timestamp = int(raw_timestamp)
    except ValueError:
        raise Unauthenticated(
            f"webhook-timestamp is not an integer: {raw_timestamp!r}",
            reason=WEBHOOK_SIGNATURE_INVALID,
        ) from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise Unauthenticated(
            f"webhook-timestamp {timestamp} is more than {tolerance:g} s from now",
            reason=WEBHOOK_TIMESTAMP_STALE,
        )
    expected = _signature(_key(secret), msg_id, timestamp, body).encode("ascii")
    for candidate in signature_header.split():
        version, _, value = candidate.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(
            value.encode("ascii", "replace"), expected
        ):
            return
    raise Unauthenticated(
        "no webhook signature matches the secret", reason=WEBHOOK_SIGNATURE_INVALID
    )
