"""Verifying the signed callbacks imageeditor sends (Standard Webhooks).

A receiver, e.g. in Flask:

    from clients.sdk import Unauthenticated, verify_webhook

    @app.post("/imageeditor-callback")
    def callback():
        try:
            verify_webhook(SECRET, request.headers, request.get_data())
        except Unauthenticated:
            return "", 401
        handle(request.get_json())
        return "", 204
"""

from __future__ import annotations

from collections.abc import Mapping

from editcore.webhooks import DEFAULT_TOLERANCE_SECONDS, verify


def verify_webhook(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Return if `body` was signed with `secret` within `tolerance` seconds of now.

    `secret` is your callback secret, with or without its `whsec_` prefix; `headers` the
    request's headers (any case); `body` the raw bytes, before any JSON parsing. Raises
    `Unauthenticated` with reason WEBHOOK_SIGNATURE_INVALID, WEBHOOK_TIMESTAMP_STALE or
    WEBHOOK_HEADERS_MISSING. Signatures are compared in constant time.
    """
    verify(secret, headers, body, tolerance=tolerance)
