"""The `http` style backend: an OpenAI-compatible images/edits API restyles the image, over
httpx (multipart encoding, connection reuse, timeouts) with tenacity's retries.

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
import json
import logging
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
import tenacity
from PIL import Image

from imageeditor.core.errors import FailedPrecondition, InvalidArgument, Unavailable
from imageeditor.core.settings import Settings
from imageeditor.core.spec import ImageFormat, OutputOptions
from imageeditor.core.styles import StyleCapability
from imageeditor.workers.imaging import decode, encode

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

Files = dict[str, tuple[str, bytes, str]]  # part name -> (file name, bytes, content type)


class _Retryable(Exception):
    """An attempt that failed in a way a later one may not: `wait` is the server's Retry-After."""

    def __init__(self, problem: str, wait: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.wait = wait


class HttpStyleGenerator:
    """The `http` StyleGenerator over an httpx client (its connections kept between tasks)
    with tenacity's retries. `sleep` and `rng` are injectable so tests need not wait."""

    def __init__(
        self,
        settings: Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.capability = StyleCapability.from_settings(settings)
        self._url = settings.style_http_url
        self._host = urlsplit(self._url).hostname or ""
        self._model = settings.style_http_model
        self._timeout = settings.style_http_timeout_seconds
        self._retries = settings.style_http_retries
        self._max_pixels = settings.max_image_pixels
        # The base64 JSON of an image as large as a fetched source may be, plus some slack.
        self._max_response_bytes = settings.max_fetch_bytes * 4 // 3 + _CHUNK_BYTES
        self._sleep = sleep
        self._random = rng or random.Random()
        headers = {"Accept": "application/json", "User-Agent": "imageeditor-style/1"}
        if settings.style_http_api_key:
            headers["Authorization"] = f"Bearer {settings.style_http_api_key}"
        # The URL is the operator's (a setting), not a caller's: no address pinning here.
        # Redirects are not followed (an answer that moves is a configuration problem), and
        # proxies come from no environment variable: the backend is reached as configured.
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(self._timeout),
            follow_redirects=False,
            trust_env=False,
        )

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
        files = {"image": ("image.png", png, "image/png")}
        return self._decode(_image_bytes(self._post_with_retries(fields, files)))

    def _post_with_retries(self, fields: dict[str, str], files: Files) -> bytes:
        attempts = self._retries + 1
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            stop=tenacity.stop_after_attempt(attempts) | _ToldToWaitLong(),
            wait=self._wait,
            sleep=self._sleep,
            before_sleep=_log_retry,
            reraise=True,
        )
        try:
            payload: bytes = retrying(self._post, fields, files)
        except _Retryable as failed:
            attempt = retrying.statistics.get("attempt_number", attempts)
            wait = failed.wait if failed.wait is not None else self._backoff(attempt - 1)
            raise Unavailable(
                f"{failed.problem} (attempt {attempt} of {attempts})",
                reason=UNAVAILABLE,
                retry_after=max(wait, 1.0),
            ) from None
        return payload

    def _post(self, fields: dict[str, str], files: Files) -> bytes:
        deadline = time.monotonic() + self._timeout
        try:
            with self._client.stream("POST", self._url, data=fields, files=files) as response:
                payload = self._read(response, deadline)
        except (httpx.TransportError, TimeoutError) as exc:
            problem = f"cannot reach the style backend at {self._host}: {_describe(exc)}"
            raise _Retryable(problem) from exc
        status = response.status_code
        if 200 <= status < 300:
            return payload
        if not (status in _RETRYABLE_STATUSES or status >= 500):
            raise _rejected(status, payload)
        problem = f"the style backend answered HTTP {status}"
        raise _Retryable(problem, _retry_after(response.headers.get("Retry-After")))

    def _read(self, response: httpx.Response, deadline: float) -> bytes:
        """The body, within the attempt's deadline (the read timeout bounds each read, not a
        server that trickles) and at most _max_response_bytes."""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes(_CHUNK_BYTES):
            size += len(chunk)
            if size > self._max_response_bytes:
                raise _bad_response(f"the answer is over {self._max_response_bytes} bytes")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the answer took over {self._timeout:g}s")
            chunks.append(chunk)
        return b"".join(chunks)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """The server's Retry-After when it gave one, else the backoff of this attempt."""
        failed = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failed, _Retryable) and failed.wait is not None:
            return failed.wait
        return self._backoff(state.attempt_number - 1)

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


class _ToldToWaitLong(tenacity.stop.stop_base):
    """A Retry-After longer than a worker should sleep: the task goes back to the queue."""

    def __call__(self, state: tenacity.RetryCallState) -> bool:
        failed = state.outcome.exception() if state.outcome is not None else None
        return isinstance(failed, _Retryable) and (failed.wait or 0.0) > MAX_RETRY_WAIT_SECONDS


def _log_retry(state: tenacity.RetryCallState) -> None:
    failed = state.outcome.exception() if state.outcome is not None else None
    wait = state.next_action.sleep if state.next_action is not None else 0.0
    log.warning("%s; retrying in %.1fs", getattr(failed, "problem", failed), wait)


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
