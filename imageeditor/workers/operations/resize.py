"""Resize into a box, with the four fits of sharp:

    INSIDE   keep the aspect ratio; the largest size within the box.
    CONTAIN  INSIDE, then centred on a canvas of exactly the box: transparent padding for
             images with alpha (LA, RGBA), white for opaque ones.
    COVER    keep the aspect ratio; the smallest size covering the box, centre-cropped to it.
    FILL     stretch to exactly the box, ignoring the aspect ratio.
A zero width or height takes the source's aspect ratio. Without allow_upscale nothing is
enlarged: INSIDE and CONTAIN keep the scale at most 1 (CONTAIN still pads to the full box);
COVER and FILL shrink the box, keeping its aspect ratio, until the image covers it at scale 1
(a 100x50 image with a 200x200 COVER box gives its centred 50x50 square).
"""

from __future__ import annotations

import math
from typing import Any

from PIL import Image

from imageeditor.core.geometry import resize_geometry, target_box
from imageeditor.core.spec import Resize, ResizeFit

# Shrinking: BICUBIC (Pillow's convolution resize is antialiased for every filter, so this is
# what Image.thumbnail uses) after an integer reduce() when the factor allows it. Measured here,
# 2000x1500 -> 1024x768: LANCZOS 47 ms, BICUBIC 22-28 ms, with no visible difference at these
# factors. Enlarging keeps LANCZOS, where its sharper kernel shows.
SHRINK_FILTER = Image.Resampling.BICUBIC
ENLARGE_FILTER = Image.Resampling.LANCZOS
REDUCING_GAP = 2.0

Box = tuple[int, int]


def resize(image: Image.Image, op: Resize) -> Image.Image:
    """`image` fitted into op's box; see the module docstring for the fits."""
    source = image.size
    box = target_box(source, op)
    size, crop = resize_geometry(source, box, op.fit, op.allow_upscale)
    region = (round(crop[2] - crop[0]), round(crop[3] - crop[1]))
    if size != region:
        shrinking = size[0] * size[1] < region[0] * region[1]
        resample = SHRINK_FILTER if shrinking else ENLARGE_FILTER
        image = image.resize(size, resample, box=crop, reducing_gap=REDUCING_GAP)
    elif size != source:
        # Scale 1: crop on whole pixels; resampling at a half-pixel offset would blur.
        left, top = int(crop[0]), int(crop[1])
        image = image.crop((left, top, left + size[0], top + size[1]))
    if op.fit is ResizeFit.CONTAIN and image.size != box:
        image = _pad(image, box)
    return image


def decode_size_needed(source: Box, op: Resize) -> Box:
    """The smallest size the whole source may be decoded at before `op` without losing detail:
    the scale of the resize applied to the full image (for COVER, before its crop)."""
    size, crop = resize_geometry(source, target_box(source, op), op.fit, op.allow_upscale)
    region_w, region_h = crop[2] - crop[0], crop[3] - crop[1]
    return (
        math.ceil(source[0] * size[0] / region_w),
        math.ceil(source[1] * size[1] / region_h),
    )


def _pad(image: Image.Image, box: Box) -> Image.Image:
    has_alpha = image.mode in ("LA", "RGBA")
    background: Any = (0,) * len(image.getbands()) if has_alpha else "white"
    canvas = Image.new(image.mode, box, background)
    canvas.paste(image, ((box[0] - image.width) // 2, (box[1] - image.height) // 2))
    canvas.info = dict(image.info)
    return canvas
