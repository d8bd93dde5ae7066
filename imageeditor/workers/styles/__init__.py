"""Style generators: what the STYLE stage calls to restyle an image from a prompt.

    presets   PresetStyles (imageeditor/workers/styles/presets.py): named Pillow styles,
    deterministic
    http      HttpStyleGenerator (imageeditor/workers/styles/http.py): an OpenAI-compatible
    images/edits API

The composition root builds one with `create_style_generator(settings)` and hands it to the
Pipeline; the prompts each backend accepts are described in imageeditor/core/styles.py, which the
server checks at submit time.
"""

from __future__ import annotations

from typing import Protocol

from PIL import Image

from imageeditor.core.settings import Settings
from imageeditor.core.styles import StyleCapability
from imageeditor.workers.styles.http import HttpStyleGenerator
from imageeditor.workers.styles.presets import PresetStyles

__all__ = ["HttpStyleGenerator", "PresetStyles", "StyleGenerator", "create_style_generator"]


class StyleGenerator(Protocol):
    """Restyles an image as a prompt asks (a prompt the server accepted for this backend)."""

    def apply(self, image: Image.Image, prompt: str) -> Image.Image: ...


def create_style_generator(settings: Settings) -> StyleGenerator:
    """The generator settings.style_backend names; InvalidArgument(BAD_SETTING) when the style
    settings cannot work, so a misconfigured process stops at start."""
    capability = StyleCapability.from_settings(settings)
    if capability.backend == "http":
        return HttpStyleGenerator(settings)
    return PresetStyles()
