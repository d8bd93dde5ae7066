"""Content checks at the validate stage: one interface, configured by name.

The default, `structural`, refuses what is not a sound raster for the pipeline (decoding has
already refused bad formats, bombs and lying headers; this states the same guarantees where a
model-based checker — nudity, violence, ... — would plug in later through
IMAGEEDITOR_CONTENT_CHECKER). No model ships by default: those with open licences are large
and those that are small carry restrictive licences.
"""

from __future__ import annotations

from typing import Protocol

from PIL import Image

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.settings import Settings
from imageeditor.workers.imaging import PIPELINE_MODES

CONTENT_REJECTED = "CONTENT_REJECTED"


class ContentChecker(Protocol):
    def check(self, image: Image.Image) -> None:
        """Return if `image` may be processed; raise InvalidArgument(reason=CONTENT_REJECTED)
        (with a message a caller can act on) if not."""


class StructuralChecker:
    """A non-empty image in a pipeline mode, within the pixel cap."""

    def __init__(self, max_pixels: int) -> None:
        self._max_pixels = max_pixels

    def check(self, image: Image.Image) -> None:
        width, height = image.size
        if width < 1 or height < 1:
            raise InvalidArgument("the image has no pixels", reason=CONTENT_REJECTED)
        if width * height > self._max_pixels:
            raise InvalidArgument(
                f"the image has {width * height} pixels; the limit is {self._max_pixels}",
                reason="IMAGE_TOO_LARGE",
            )
        if image.mode not in PIPELINE_MODES:
            raise InvalidArgument(f"unexpected image mode {image.mode}", reason=CONTENT_REJECTED)


def content_checker_from_settings(settings: Settings) -> ContentChecker:
    if settings.content_checker == "structural":
        return StructuralChecker(settings.max_image_pixels)
    raise InvalidArgument(
        f"unknown content checker {settings.content_checker!r}; available: structural",
        field_violations={"IMAGEEDITOR_CONTENT_CHECKER": "one of: structural"},
        reason="BAD_SETTING",
    )
