"""What each style backend accepts at submit time, and which style settings stop the start."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.settings import Settings
from imageeditor.core.styles import (
    MAX_HTTP_PROMPT_CHARS,
    PRESET_STYLES,
    StyleCapability,
    check_prompt,
)
from imageeditor.server.validation import validate_submit
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.workers.styles import HttpStyleGenerator, PresetStyles, create_style_generator

PRESETS = Settings()
HTTP = Settings(style_backend="http", style_http_url="https://api.example.com/v1/images/edits")


def refusal(prompt: str, settings: Settings) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        check_prompt(prompt, settings)
    assert caught.value.reason == "STYLE_UNSUPPORTED"
    assert set(caught.value.field_violations) == {"style_prompt"}
    return caught.value


@pytest.mark.parametrize("name", PRESET_STYLES)
def test_presets_accept_their_names_trimmed_and_in_any_case(name: str) -> None:
    assert check_prompt(f"  {name.upper()}\n", PRESETS) == name


def test_presets_refuse_anything_else_and_list_every_name() -> None:
    text = refusal("make it watercolour", PRESETS).field_violations["style_prompt"]
    assert all(name in text for name in PRESET_STYLES)


@pytest.mark.parametrize("settings", [PRESETS, HTTP])
def test_a_blank_prompt_means_no_style(settings: Settings) -> None:
    assert check_prompt("   ", settings) == ""


def test_http_accepts_any_prompt_trimmed_with_its_case() -> None:
    assert check_prompt("  Make it Watercolour\n", HTTP) == "Make it Watercolour"
    assert check_prompt("x" * MAX_HTTP_PROMPT_CHARS, HTTP) == "x" * MAX_HTTP_PROMPT_CHARS


@pytest.mark.parametrize("prompt", ["x" * (MAX_HTTP_PROMPT_CHARS + 1), "a\x00b", "a\x1b[31mb"])
def test_http_refuses_long_prompts_and_control_characters(prompt: str) -> None:
    text = refusal(prompt, HTTP).field_violations["style_prompt"]
    assert str(MAX_HTTP_PROMPT_CHARS) in text


@pytest.mark.parametrize(
    ("settings", "variable"),
    [
        (Settings(style_backend="dall-e"), "IMAGEEDITOR_STYLE_BACKEND"),
        (Settings(style_backend="http"), "IMAGEEDITOR_STYLE_HTTP_URL"),
        (Settings(style_backend="http", style_http_url="ftp://x/y"), "IMAGEEDITOR_STYLE_HTTP_URL"),
        (
            Settings(style_backend="http", style_http_url="https://u:p@x/y"),
            "IMAGEEDITOR_STYLE_HTTP_URL",
        ),
        (
            Settings(style_backend="http", style_http_url="https://x/y", style_http_retries=-1),
            "IMAGEEDITOR_STYLE_HTTP_RETRIES",
        ),
        (
            Settings(
                style_backend="http", style_http_url="https://x/y", style_http_timeout_seconds=0
            ),
            "IMAGEEDITOR_STYLE_HTTP_TIMEOUT_SECONDS",
        ),
    ],
)
def test_unusable_style_settings_are_refused_by_the_factory(
    settings: Settings, variable: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        create_style_generator(settings)
    assert caught.value.reason == "BAD_SETTING"
    assert set(caught.value.field_violations) == {variable}
    assert variable in caught.value.message


def test_the_unknown_backend_error_names_the_choices() -> None:
    with pytest.raises(InvalidArgument) as caught:
        StyleCapability.from_settings(Settings(style_backend="dall-e"))
    assert "presets" in caught.value.message and "http" in caught.value.message


def test_the_factory_builds_the_configured_backend() -> None:
    assert isinstance(create_style_generator(PRESETS), PresetStyles)
    generator = create_style_generator(
        Settings(
            style_backend="http",
            style_http_url="https://api.example.com/v1/images/edits",
            style_http_api_key="sk-secret-value",
        )
    )
    assert isinstance(generator, HttpStyleGenerator)
    assert "sk-secret-value" not in repr(generator)


def test_submit_validation_follows_the_configured_backend() -> None:
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    request = pb.SubmitTaskRequest(image_data=png.getvalue(), style_prompt=" Make it Watercolour ")
    assert validate_submit(request, HTTP).spec.style_prompt == "Make it Watercolour"
    with pytest.raises(InvalidArgument) as caught:
        validate_submit(request, PRESETS)
    assert caught.value.reason == "STYLE_UNSUPPORTED"
    assert "sepia" in caught.value.field_violations["style_prompt"]
