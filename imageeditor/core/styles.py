"""What the configured style backend can serve, so the server can refuse a prompt at submit time.

Pure data and checks: the server uses them without importing the worker, and the worker's
factory (workers/styles) calls `StyleCapability.from_settings` so that a misconfigured backend
stops the process at start rather than failing every task.

    presets   one of PRESET_STYLES (compared trimmed and lowercase)
    http      any prompt of printable text, at most MAX_HTTP_PROMPT_CHARS characters (trimmed)
"""

from __future__ import annotations

from dataclasses import dataclass

from imageeditor.core.errors import InvalidArgument, clip
from imageeditor.core.settings import Settings, bad_setting
from imageeditor.core.urls import validate_http_url

PRESET_STYLES: tuple[str, ...] = (
    "grayscale",
    "sepia",
    "vintage",
    "sketch",
    "posterize",
    "cartoon",
    "vivid",
)
STYLE_BACKENDS: tuple[str, ...] = ("presets", "http")
MAX_HTTP_PROMPT_CHARS = 1000
STYLE_UNSUPPORTED = "STYLE_UNSUPPORTED"


def normalize_prompt(prompt: str) -> str:
    """A preset name in the form it is compared and stored in: trimmed and lowercase."""
    return prompt.strip().lower()


@dataclass(frozen=True)
class StyleCapability:
    """The prompts one style backend accepts; build it with `from_settings`."""

    backend: str
    presets: tuple[str, ...] = ()
    max_prompt_chars: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> StyleCapability:
        """The configured backend's capability; InvalidArgument(BAD_SETTING) naming the
        environment variable when the style settings cannot work."""
        backend = settings.style_backend
        if backend == "presets":
            return cls(backend, presets=PRESET_STYLES)
        if backend == "http":
            _check_http_settings(settings)
            return cls(backend, max_prompt_chars=MAX_HTTP_PROMPT_CHARS)
        raise bad_setting(
            "IMAGEEDITOR_STYLE_BACKEND",
            f"unknown style backend {backend!r}; choose one of: {', '.join(STYLE_BACKENDS)}",
        )

    def describe(self) -> str:
        """What this backend serves, in words a caller can act on."""
        if self.presets:
            return f"the configured style backend serves these presets: {', '.join(self.presets)}"
        return (
            "the configured style backend takes any prompt of printable text up to "
            f"{self.max_prompt_chars} characters"
        )

    def check(self, prompt: str) -> str:
        """`prompt` as it is stored and handed to the backend ("" for no style), or
        InvalidArgument(STYLE_UNSUPPORTED) with a violation on `style_prompt`."""
        if not prompt.strip():
            return ""
        if self.presets:
            name = normalize_prompt(prompt)
            if name in self.presets:
                return name
            raise _unsupported(f"unknown style {clip(name, 64)!r}; {self.describe()}")
        text = prompt.strip()
        if len(text) > self.max_prompt_chars:
            raise _unsupported(f"the prompt is {len(text)} characters; {self.describe()}")
        if not all(c.isprintable() or c in "\n\t" for c in text):
            raise _unsupported(f"the prompt contains control characters; {self.describe()}")
        return text


def check_prompt(prompt: str, settings: Settings) -> str:
    """`StyleCapability.from_settings(settings).check(prompt)`."""
    return StyleCapability.from_settings(settings).check(prompt)


def _check_http_settings(settings: Settings) -> None:
    variable = "IMAGEEDITOR_STYLE_HTTP_URL"
    if not settings.style_http_url:
        raise bad_setting(variable, "the http style backend needs the images/edits URL")
    try:
        validate_http_url(settings.style_http_url, variable)
    except InvalidArgument as exc:
        raise bad_setting(variable, exc.field_violations[variable]) from None
    if settings.style_http_timeout_seconds <= 0:
        raise bad_setting("IMAGEEDITOR_STYLE_HTTP_TIMEOUT_SECONDS", "must be more than 0")
    if settings.style_http_retries < 0:
        raise bad_setting("IMAGEEDITOR_STYLE_HTTP_RETRIES", "must be 0 or more")


def _unsupported(message: str) -> InvalidArgument:
    return InvalidArgument(
        message, field_violations={"style_prompt": message}, reason=STYLE_UNSUPPORTED
    )
