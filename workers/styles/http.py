"""The `http` style backend: an OpenAI-compatible images/edits API restyles the image.

One request per image: POST multipart/form-data to settings.style_http_url with the parts
`image` (the image as a PNG file), `prompt`, `model` (when configured), `n=1` and
`response_format=b64_json` (left out for OpenAI's gpt-image models, which refuse the field
and always answer in base64), with `Authorization: Bearer <style_http_api_key>` when a key
is set. The answer must be JSON `{"data": [{"b64_json": "..."}]}`; URL answers are refused
rather than fetched, so the backend cannot point the worker at another address. The image is
decoded by workers.imaging.decode under the same limits as any input.

Errors, each with a stable reason:
    STYLE_BACKEND_UNAVAILABLE  Unavailable: connection errors, timeouts, 408, 429 and 5xx,
                               still failing after style_http_retries retries (exponential
                               backoff with jitter, or the server's Retry-After)
    STYLE_BACKEND_REJECTED     InvalidArgument for other 4xx answers (the image or prompt);
                               FailedPrecondition for 401/403/404/405 and redirects (our
                               configuration)
    STYLE_BACKEND_BAD_RESPONSE FailedPrecondition: not JSON, no b64_json, not base64, too
                               large, or not a usable image
The API key never appears in errors, logs or repr; neither does the URL (it may carry a
secret in its query), only its host.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import http.client
import json
import logging
import random
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import urlsplit

from PIL import Image

from editcore.errors import FailedPrecondition, InvalidArgument, Unavailable
from editcore.settings import Settings
from editcore.spec import ImageFormat, OutputOptions
from editcore.styles import StyleCapability
from workers.imaging import decode, encode

log = logging.getLogger(__name__)

UNAVAILABLE = "STYLE_BACKEND_UNAVAILABLE"
REJECTED = "STYLE_BACKEND_REJECTED"
BAD_RESPONSE = "STYLE_BACKEND_BAD_RESPONSE"

BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 20.0
# A Retry-After longer than this is not waited out in the worker: the task goes back to the
# queue (Unavailable.retry_after) and the worker thread serves other tasks meanwhile.
MAX_RETRY_WAIT_SECONDS = 30.0
_RETRYABLE_STATUSES = frozenset({408, 429})
_CONFIGURATION_STATUSES = frozenset({401, 403, 404, 405})
_CHUNK_BYTES = 64 * 1024
_ERROR_TEXT_CHARS = 300


class HttpStyleGenerator:
    """The `http` StyleGenerator. `sleep` and `rng` are injectable so tests need not wait."""

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.capability = StyleCapability.from_settings(settings)
        url = urlsplit(settings.style_http_url)
        self._https = url.scheme.lower() == "https"
        self._host = url.hostname or ""
        self._port = url.port
        self._target = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._api_key = settings.style_http_api_key
        self._model = settings.style_http_model
        self._timeout = settings.style_http_timeout_seconds
        self._retries = settings.style_http_retries
        self._max_pixels = settings.max_image_pixels
        # The base64 JSON of an image as large as a fetched source may be, plus some slack.
        self._max_response_bytes = settings.max_fetch_bytes * 4 // 3 + _CHUNK_BYTES
        self._sleep = sleep
        self._random = rng or random.Random()

    def __repr__(self) -> str:
        return f"HttpStyleGenerator(host={self._host!r}, model={self._model!r})"

    def apply(self, image: Image.Image, prompt: str) -> Image.Image:
        """`image` as the backend restyles it after `prompt` (its size and mode are the
        backend's choice)."""
        prompt = self.capability.check(prompt)
        if not prompt:
            return image
        png = encode(image, OutputOptions(format=ImageFormat.PNG)).data
        fields = {"prompt": prompt, "n": "1"}
        if self._model:
            fields["model"] = self._model
        if not self._model.startswith("gpt-image"):
            fields["response_format"] = "b64_json"
        body, content_type = encode_multipart(fields, {"image": ("image.png", "image/png", png)})
        return self._decode(_image_bytes(self._post_with_retries(body, content_type)))

    def _post_with_retries(self, body: bytes, content_type: str) -> bytes:
        attempts = self._retries + 1
        for attempt in range(attempts):
            wait: float | None = None
            try:
                status, headers, payload = self._post(body, content_type)
            except (OSError, http.client.HTTPException) as exc:
                problem = f"cannot reach the style backend at {self._host}: {_describe(exc)}"
            else:
                if 200 <= status < 300:
                    return payload
                if not (status in _RETRYABLE_STATUSES or status >= 500):
                    raise _rejected(status, payload)
                problem = f"the style backend answered HTTP {status}"
                wait = _retry_after(headers.get("Retry-After"))
            if wait is None:
                wait = self._backoff(attempt)
            if attempt + 1 == attempts or wait > MAX_RETRY_WAIT_SECONDS:
                raise Unavailable(
                    f"{problem} (attempt {attempt + 1} of {attempts})",
                    reason=UNAVAILABLE,
                    retry_after=max(wait, 1.0),
                )
            log.warning("%s; retrying in %.1fs", problem, wait)
            self._sleep(wait)
        raise AssertionError("unreachable: the last attempt raises")

    def _post(self, body: bytes, content_type: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        connect = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = connect(self._host, self._port, timeout=self._timeout)
        headers = {
            "Content-Type": content_type,
            "Accept": "application/json",
            "User-Agent": "imageeditor-style/1",
        }
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        deadline = time.monotonic() + self._timeout
        try:
            connection.request("POST", self._target, body=body, headers=headers)
            response = connection.getresponse()
            payload = self._read(response, deadline)
            return response.status, response.headers, payload
        finally:
            connection.close()

    def _read(self, response: http.client.HTTPResponse, deadline: float) -> bytes:
        """The body, within the attempt's deadline (the socket timeout bounds each read, not
        a server that trickles) and at most _max_response_bytes."""
        chunks: list[bytes] = []
        size = 0
        while chunk := response.read(_CHUNK_BYTES):
            size += len(chunk)
            if size > self._max_response_bytes:
                raise _bad_response(f"the answer is over {self._max_response_bytes} bytes")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the answer took over {self._timeout:g}s")
            chunks.append(chunk)
        return b"".join(chunks)

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with "equal jitter": half the step fixed, half random, so
        workers that failed together do not retry together."""
        step = min(BACKOFF_BASE_SECONDS * 2.0**attempt, BACKOFF_MAX_SECONDS)
        return step / 2 + self._random.uniform(0, step / 2)

    def _decode(self, data: bytes) -> Image.Image:
        try:
            return decode(data, max_pixels=self._max_pixels)
        except InvalidArgument as exc:  # IMAGE_CORRUPT etc. would blame the caller's input
            raise _bad_response(f"the returned image is not usable: {exc.message}") from None


def encode_multipart(
    fields: Mapping[str, str], files: Mapping[str, tuple[str, str, bytes]]
) -> tuple[bytes, str]:
    """A multipart/form-data body (RFC 7578) and its Content-Type. `files` maps a part name
    to (file name, content type, bytes). Names and file names are ours: not escaped."""
    boundary = secrets.token_hex(16)
    while any(boundary.encode() in data for _, _, data in files.values()) or any(
        boundary in value for value in fields.values()
    ):
        boundary = secrets.token_hex(16)
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        + value.encode()
        + b"\r\n"
        for name, value in fields.items()
    ]
    parts += [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"'
        f"\r\nContent-Type: {file_type}\r\n\r\n".encode()
        + data
        + b"\r\n"
        for name, (filename, file_type, data) in files.items()
    ]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _image_bytes(payload: bytes) -> bytes:
    """The image bytes in an images API answer."""
    try:
        document = json.loads(payload)
    except ValueError:
        raise _bad_response("the answer is not JSON") from None
    items = document.get("data") if isinstance(document, dict) else None
    first = items[0] if isinstance(items, list) and items else None
    if not isinstance(first, dict):
        raise _bad_response('the answer has no "data" list of images')
    encoded = first.get("b64_json")
    if not isinstance(encoded, str) or not encoded:
        if "url" in first:
            raise _bad_response("the answer gives a URL; only b64_json answers are supported")
        raise _bad_response('the answer has no "data[0].b64_json"')
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise _bad_response('"data[0].b64_json" is not base64') from None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


def _rejected(status: int, payload: bytes) -> InvalidArgument | FailedPrecondition:
    detail = _error_text(payload)
    message = f"the style backend refused the request: HTTP {status}" + (
        f" ({detail})" if detail else ""
    )
    if status in _CONFIGURATION_STATUSES or status < 400:
        return FailedPrecondition(message, reason=REJECTED)
    return InvalidArgument(message, reason=REJECTED)


def _error_text(payload: bytes) -> str:
    """The API's own error message (OpenAI shape: {"error": {"message": ...}}), shortened."""
    try:
        error = json.loads(payload).get("error")
    except (ValueError, AttributeError):
        return ""
    text = error.get("message") if isinstance(error, dict) else error
    if not isinstance(text, str):
        return ""
    text = "".join(c if c.isprintable() else " " for c in text).strip()
    return text[:_ERROR_TEXT_CHARS]


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _bad_response(problem: str) -> FailedPrecondition:
    message = f"the style backend's answer is unusable: {problem}"
    return FailedPrecondition(message, reason=BAD_RESPONSE)
