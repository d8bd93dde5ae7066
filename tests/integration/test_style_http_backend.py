"""The http style backend against a real images/edits server on loopback (tests/fake_images_api).

Waits between retries go through an injected `sleep` that records them instead of sleeping:
the requests are real, the clock is not.
"""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest
from PIL import Image

from imageeditor.core.errors import FailedPrecondition, InvalidArgument, Unavailable
from imageeditor.core.settings import Settings
from imageeditor.workers.styles import HttpStyleGenerator
from tests.e2e.harness import free_port
from tests.fake_images_api import RESULT_COLOUR, RESULT_SIZE, FakeImagesApi, Reply, png_bytes

KEY = "sk-test-key-do-not-log"
MODEL = "dall-e-2"
PROMPT = "make it watercolour"
RETRIES = 2


@pytest.fixture
def api() -> Iterator[FakeImagesApi]:
    with FakeImagesApi(api_key=KEY, model=MODEL) as fake:
        yield fake


def settings_for(url: str, **overrides: object) -> Settings:
    base = Settings(
        style_backend="http",
        style_http_url=url,
        style_http_api_key=KEY,
        style_http_model=MODEL,
        style_http_timeout_seconds=5.0,
        style_http_retries=RETRIES,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


class Generator:
    """An HttpStyleGenerator for `url` that records its waits instead of sleeping."""

    def __init__(self, url: str, **overrides: object) -> None:
        self.waits: list[float] = []
        self.styles = HttpStyleGenerator(settings_for(url, **overrides), sleep=self.waits.append)

    def apply(self, prompt: str = PROMPT) -> Image.Image:
        return self.styles.apply(photo(), prompt)


def photo() -> Image.Image:
    image = Image.new("RGBA", (64, 48), (200, 40, 40, 255))
    image.paste((20, 20, 220, 128), (0, 0, 32, 48))
    return image


def b64_answer(data: bytes) -> bytes:
    return json.dumps({"data": [{"b64_json": base64.b64encode(data).decode()}]}).encode()


def test_success_sends_the_request_shape_and_decodes_the_answer(api: FakeImagesApi) -> None:
    result = Generator(api.url).apply("  Make it watercolour ")
    assert result.size == RESULT_SIZE
    assert result.getpixel((0, 0)) == RESULT_COLOUR
    assert api.problems == []
    [seen] = api.requests
    assert seen.authorization == f"Bearer {KEY}"
    assert seen.fields == {
        "prompt": "Make it watercolour",
        "model": MODEL,
        "n": "1",
        "response_format": "b64_json",
    }
    assert (seen.image_filename, seen.image_type) == ("image.png", "image/png")
    with Image.open(io.BytesIO(seen.image)) as sent:
        assert (sent.format, sent.size, sent.mode) == ("PNG", (64, 48), "RGBA")
        assert sent.getpixel((40, 10)) == (200, 40, 40, 255)


def test_gpt_image_models_are_not_sent_response_format() -> None:
    with FakeImagesApi(api_key=KEY, model="gpt-image-1") as api:
        Generator(api.url, style_http_model="gpt-image-1").apply()
        assert api.problems == []
        assert "response_format" not in api.requests[0].fields


def test_no_model_and_no_key_send_neither() -> None:
    with FakeImagesApi(api_key=None, model="") as api:
        Generator(api.url, style_http_model="", style_http_api_key="").apply()
        assert api.problems == []
        assert "model" not in api.requests[0].fields


def test_429_with_retry_after_is_retried_once_after_that_wait(api: FakeImagesApi) -> None:
    api.script(Reply(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "1"}))
    generator = Generator(api.url)
    assert generator.apply().size == RESULT_SIZE
    assert len(api.requests) == 2
    assert generator.waits == [1.0]


def test_5xx_every_time_ends_unavailable_after_the_retries(
    api: FakeImagesApi, caplog: pytest.LogCaptureFixture
) -> None:
    api.script(*[Reply(500, b"oops")] * (RETRIES + 1))
    generator = Generator(api.url)
    with caplog.at_level(logging.DEBUG), pytest.raises(Unavailable) as caught:
        generator.apply()
    assert caught.value.reason == "STYLE_BACKEND_UNAVAILABLE"
    assert len(api.requests) == RETRIES + 1
    # Exponential backoff with jitter: attempt n waits between half and all of 0.5 * 2**n.
    assert len(generator.waits) == RETRIES
    for attempt, wait in enumerate(generator.waits):
        step = 0.5 * 2**attempt
        assert step / 2 <= wait <= step
    assert KEY not in caplog.text + caught.value.message + repr(generator.styles)
    assert "retrying" in caplog.text


def test_a_long_retry_after_goes_back_to_the_queue_at_once(api: FakeImagesApi) -> None:
    api.script(Reply(503, b"", {"Retry-After": "120"}))
    generator = Generator(api.url)
    with pytest.raises(Unavailable) as caught:
        generator.apply()
    assert caught.value.retry_after == 120
    assert (len(api.requests), generator.waits) == (1, [])


def test_400_is_rejected_at_once_with_the_apis_message(api: FakeImagesApi) -> None:
    api.script(
        Reply(400, b'{"error": {"message": "Your prompt was rejected by the safety system"}}')
    )
    generator = Generator(api.url)
    with pytest.raises(InvalidArgument) as caught:
        generator.apply()
    assert caught.value.reason == "STYLE_BACKEND_REJECTED"
    assert "safety system" in caught.value.message
    assert (len(api.requests), generator.waits) == (1, [])


def test_a_refused_key_is_a_configuration_problem(api: FakeImagesApi) -> None:
    api.script(Reply(401, b'{"error": {"message": "Incorrect API key provided"}}'))
    with pytest.raises(FailedPrecondition) as caught:
        Generator(api.url).apply()
    assert caught.value.reason == "STYLE_BACKEND_REJECTED"
    assert len(api.requests) == 1


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"<html>not json</html>", "not JSON"),
        (b'{"data": []}', 'no "data" list'),
        (b'{"data": [{"url": "http://169.254.169.254/latest"}]}', "only b64_json"),
        (b'{"data": [{"b64_json": "%%%"}]}', "not base64"),
        (b64_answer(b"GIF89a but not really"), "not usable"),
    ],
)
def test_an_unusable_answer_is_a_bad_response(
    api: FakeImagesApi, body: bytes, problem: str
) -> None:
    api.script(Reply(200, body))
    with pytest.raises(FailedPrecondition) as caught:
        Generator(api.url).apply()
    assert caught.value.reason == "STYLE_BACKEND_BAD_RESPONSE"
    assert problem in caught.value.message
    assert len(api.requests) == 1


def test_the_answer_is_decoded_under_the_input_limits(api: FakeImagesApi) -> None:
    api.script(Reply(200, b64_answer(png_bytes((100, 100), (1, 2, 3)))))
    with pytest.raises(FailedPrecondition) as caught:
        Generator(api.url, max_image_pixels=5_000).apply()
    assert caught.value.reason == "STYLE_BACKEND_BAD_RESPONSE"


def test_an_oversized_answer_is_cut_off(api: FakeImagesApi) -> None:
    api.script(Reply(200, b" " * 200_000 + b64_answer(png_bytes((8, 8), (0, 0, 0)))))
    with pytest.raises(FailedPrecondition) as caught:
        Generator(api.url, max_fetch_bytes=1_000).apply()
    assert "over" in caught.value.message


def test_a_server_slower_than_the_timeout_ends_unavailable(api: FakeImagesApi) -> None:
    api.script(Reply(delay=1.5), Reply(delay=1.5))
    generator = Generator(api.url, style_http_timeout_seconds=0.3, style_http_retries=1)
    with pytest.raises(Unavailable) as caught:
        generator.apply()
    assert caught.value.reason == "STYLE_BACKEND_UNAVAILABLE"
    assert "timed out" in caught.value.message
    assert len(api.requests) == 2


def test_a_refused_connection_is_retried_then_unavailable() -> None:
    generator = Generator(f"http://127.0.0.1:{free_port()}/v1/images/edits")
    with pytest.raises(Unavailable) as caught:
        generator.apply()
    assert "cannot reach" in caught.value.message
    assert len(generator.waits) == RETRIES
