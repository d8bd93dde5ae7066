"""Standard-Webhooks signing (imageeditor/core/webhooks.py) and the SDK's `verify_webhook`."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from imageeditor.core.webhooks import new_webhook_secret, sign, signed_headers, verify
from imageeditor.sdk import Unauthenticated, verify_webhook

NOW = 1_700_000_000.0
BODY = b'{"type":"task.succeeded","task":{"id":"t-1"}}'
MSG_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"


def _reason(secret: str, headers: dict[str, str], body: bytes = BODY, now: float = NOW) -> str:
    with pytest.raises(Unauthenticated) as caught:
        verify(secret, headers, body, now=now)
    return caught.value.reason


def test_a_signed_request_verifies() -> None:
    secret = new_webhook_secret()
    verify(secret, signed_headers([secret], MSG_ID, BODY, NOW), BODY, now=NOW)


def test_the_sdk_helper_verifies_against_the_clock() -> None:
    import time

    secret = new_webhook_secret()
    verify_webhook(secret, signed_headers([secret], MSG_ID, BODY, time.time()), BODY)
    stale = signed_headers([secret], MSG_ID, BODY, time.time() - 600)
    with pytest.raises(Unauthenticated):
        verify_webhook(secret, stale, BODY)
    verify_webhook(secret, stale, BODY, tolerance=900)


def test_a_new_secret_is_whsec_and_32_random_bytes() -> None:
    secret = new_webhook_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"))) == 32
    assert new_webhook_secret() != secret


def test_a_tampered_body_is_refused() -> None:
    secret = new_webhook_secret()
    headers = signed_headers([secret], MSG_ID, BODY, NOW)
    assert _reason(secret, headers, body=BODY + b" ") == "WEBHOOK_SIGNATURE_INVALID"


def test_a_tampered_id_is_refused() -> None:
    secret = new_webhook_secret()
    headers = signed_headers([secret], MSG_ID, BODY, NOW) | {"webhook-id": "msg_other"}
    assert _reason(secret, headers) == "WEBHOOK_SIGNATURE_INVALID"


def test_a_wrong_secret_is_refused() -> None:
    headers = signed_headers([new_webhook_secret()], MSG_ID, BODY, NOW)
    assert _reason(new_webhook_secret(), headers) == "WEBHOOK_SIGNATURE_INVALID"


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_a_timestamp_outside_the_tolerance_is_refused(skew: int) -> None:
    secret = new_webhook_secret()
    headers = signed_headers([secret], MSG_ID, BODY, NOW + skew)
    assert _reason(secret, headers) == "WEBHOOK_TIMESTAMP_STALE"


def test_a_timestamp_just_inside_the_tolerance_is_accepted() -> None:
    secret = new_webhook_secret()
    for skew in (-299, 299):
        verify(secret, signed_headers([secret], MSG_ID, BODY, NOW + skew), BODY, now=NOW)


@pytest.mark.parametrize("dropped", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(dropped: str) -> None:
    secret = new_webhook_secret()
    headers = signed_headers([secret], MSG_ID, BODY, NOW)
    del headers[dropped]
    assert _reason(secret, headers) == "WEBHOOK_HEADERS_MISSING"


def test_a_non_numeric_timestamp_is_refused() -> None:
    secret = new_webhook_secret()
    headers = signed_headers([secret], MSG_ID, BODY, NOW) | {"webhook-timestamp": "soon"}
    assert _reason(secret, headers) == "WEBHOOK_SIGNATURE_INVALID"


def test_during_rotation_both_secrets_sign_and_each_alone_verifies() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    headers = signed_headers([old, new], MSG_ID, BODY, NOW)
    signatures = headers["webhook-signature"].split(" ")
    assert len(signatures) == 2
    assert all(s.startswith("v1,") for s in signatures)
    verify(old, headers, BODY, now=NOW)
    verify(new, headers, BODY, now=NOW)
    assert _reason(new_webhook_secret(), headers) == "WEBHOOK_SIGNATURE_INVALID"


def test_a_signature_of_another_version_is_not_accepted() -> None:
    secret = new_webhook_secret()
    headers = signed_headers([secret], MSG_ID, BODY, NOW)
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    assert _reason(secret, headers) == "WEBHOOK_SIGNATURE_INVALID"


def test_header_names_are_case_insensitive() -> None:
    secret = new_webhook_secret()
    headers = signed_headers([secret], MSG_ID, BODY, NOW)
    verify(secret, {k.upper(): v for k, v in headers.items()}, BODY, now=NOW)
    verify(secret, {k.title(): v for k, v in headers.items()}, BODY, now=NOW)


def test_known_answer_computed_independently() -> None:
    key = bytes(range(32))
    secret = "whsec_" + base64.b64encode(key).decode()
    timestamp = 1_614_265_330
    signed = f"{MSG_ID}.{timestamp}.".encode() + BODY
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()

    assert sign([secret], MSG_ID, timestamp, BODY) == expected
    headers = {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": expected,
    }
    verify(secret, headers, BODY, now=timestamp)


def test_the_whsec_prefix_is_optional() -> None:
    secret = new_webhook_secret()
    bare = secret.removeprefix("whsec_")
    assert sign([secret], MSG_ID, 1, BODY) == sign([bare], MSG_ID, 1, BODY)
    verify(bare, signed_headers([secret], MSG_ID, BODY, NOW), BODY, now=NOW)
    verify(secret, signed_headers([bare], MSG_ID, BODY, NOW), BODY, now=NOW)


def test_a_secret_that_is_not_base64_is_rejected() -> None:
    with pytest.raises(ValueError, match="base64"):
        sign(["whsec_not base64!"], MSG_ID, 1, BODY)
