"""Verifying the signed callbacks imageeditor sends (Standard Webhooks).

A receiver, e.g. in Flask:

    from imageeditor.sdk import Unauthenticated, parse_webhook, verify_webhook

    @app.post("/imageeditor-callback")
    def callback():
        body = request.get_data()
        try:
            verify_webhook(SECRET, request.headers, body)
        except Unauthenticated:
            return "", 401
        for event in parse_webhook(body):  # several when events for this URL came together
            if not seen_before(event.id):  # retries repeat an event with the same id
                handle(event.type, event.task)  # or event.batch for batch.completed
        return "", 204
"""

from __future__ import annotations

from collections.abc import Mapping

from google.protobuf import json_format

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.webhooks import DEFAULT_TOLERANCE_SECONDS, verify
from imageeditor.v1 import callback_pb2


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


def parse_webhook(body: bytes) -> list[callback_pb2.CallbackEvent]:
    """The events a callback request carries (verify it first), as protobuf messages: each has
    `id`, `type`, `create_time` and either `task` (task.* events) or `batch`. Fields this
    SDK does not know yet are ignored, so a newer server does not break an older receiver.
    Raises InvalidArgument when the body is not a callback payload."""
    try:
        payload = json_format.Parse(
            body, callback_pb2.CallbackPayload(), ignore_unknown_fields=True
        )
    except json_format.ParseError as exc:
        raise InvalidArgument(
            f"not an imageeditor callback body: {exc}", reason="WEBHOOK_BODY_INVALID"
        ) from None
    return list(payload.events)
