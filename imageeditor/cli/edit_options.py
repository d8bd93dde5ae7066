"""The edit flags of `submit` and `batch`, and the Operation list they stand for.

Each step flag (--resize, --crop, --rotate, --flip, --flop, --grayscale, --blur, --sharpen,
--brightness/--contrast/--saturation, --remove-background) adds its operation at the place it
first appears on the command line: `--rotate 90 --crop 100x100` rotates, then crops. A flag
given twice keeps its last value at its first place; the three adjust flags make one Adjust
step, placed at the first of them. Modifier flags (--fit, --gravity, --expand, --model,
--alpha-matting, --background-color) only shape their step and may come anywhere.
"""

from __future__ import annotations

import argparse
import re
import string
from collections.abc import Callable, Sequence
from typing import Any

from imageeditor.sdk.operations import (
    FITS,
    GRAVITIES,
    adjust_operation,
    blur_operation,
    crop_operation,
    flip_operation,
    flop_operation,
    grayscale_operation,
    remove_background_operation,
    resize_operation,
    rotate_operation,
    sharpen_operation,
)
from imageeditor.v1 import operations_pb2

_CROP = re.compile(r"^(\d+)x(\d+)(?:([+-]\d+)([+-]\d+))?$")


def parse_size(text: str) -> tuple[int, int]:
    """ "640x480" -> (640, 480); one side may be 0 ("640x0") to keep the aspect ratio."""
    width, sep, height = text.lower().partition("x")
    if not sep or not width.isdigit() or not height.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT, e.g. 640x480 or 640x0")
    size = int(width), int(height)
    if size == (0, 0):
        raise argparse.ArgumentTypeError(f"{text!r}: at least one side must be above 0")
    return size


def parse_crop(text: str) -> tuple[int, int, int | None, int | None]:
    """ "300x200+10+20" -> (300, 200, 10, 20); "300x200" -> (300, 200, None, None), placed by
    --gravity."""
    match = _CROP.match(text.lower())
    if match is None or int(match[1]) == 0 or int(match[2]) == 0:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not WIDTHxHEIGHT[+LEFT+TOP] with both sides above 0, e.g. 300x200+10+20"
        )
    if match[3] is None:
        return int(match[1]), int(match[2]), None, None
    left, top = int(match[3]), int(match[4])
    if left < 0 or top < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: LEFT and TOP must not be negative")
    return int(match[1]), int(match[2]), left, top


def parse_color(text: str) -> str:
    """ "ff8800" or "#ff880080" -> the same text, checked to be RRGGBB or RRGGBBAA hex."""
    digits = text.removeprefix("#")
    if len(digits) not in (6, 8) or not all(c in string.hexdigits for c in digits):
        raise argparse.ArgumentTypeError(f"{text!r} is not RRGGBB or RRGGBBAA in hex")
    return text


class _Step(argparse.Action):
    """Stores the flag's value as usual and records its step's place in `step_order`."""

    def __init__(self, *args: Any, step: str = "", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step = step or self.dest

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        setattr(namespace, self.dest, True if self.nargs == 0 else values)
        order = list(getattr(namespace, "step_order", None) or [])  # never the shared default
        if self.step not in order:
            order.append(self.step)
        namespace.step_order = order


def add_edit_options(command: argparse.ArgumentParser) -> None:
    """The edit flags, in a group of their own in --help."""
    group = command.add_argument_group("edit steps (applied in the order given)")
    command.set_defaults(step_order=[])

    def step(*flags: str, **kwargs: Any) -> None:
        if "type" not in kwargs:  # a flag without a value
            kwargs.update(nargs=0, default=False)
        group.add_argument(*flags, action=_Step, **kwargs)

    step("--resize", type=parse_size, metavar="WxH", help="fit into WxH (see --fit)")
    step("--crop", type=parse_crop, metavar="WxH[+L+T]", help="cut WxH at +L+T, or by --gravity")
    step("--rotate", type=float, metavar="DEG", help="rotate DEG counter-clockwise")
    step("--flip", help="mirror top to bottom")
    step("--flop", help="mirror left to right")
    step("--grayscale", help="convert to grayscale")
    step("--blur", type=float, metavar="R", help="Gaussian blur of radius R pixels")
    step("--sharpen", help="unsharp mask (radius 2, 150%%, threshold 3)")
    for name in ("brightness", "contrast", "saturation"):
        step(f"--{name}", type=float, metavar="F", step="adjust", help=f"{name} factor (1 keeps)")
    step("--remove-background", help="cut the subject out (rembg)")

    group.add_argument("--fit", choices=tuple(FITS), default="inside", help="resize fit")
    group.add_argument("--gravity", choices=tuple(GRAVITIES), default="center", help="crop place")
    group.add_argument("--expand", action="store_true", help="rotate: grow to hold the image")
    group.add_argument("--model", default="", help="remove-background: the rembg model")
    group.add_argument(
        "--alpha-matting", action="store_true", help="remove-background: refine the edge"
    )
    group.add_argument(
        "--background-color",
        type=parse_color,
        metavar="RRGGBB[AA]",
        help="remove-background: fill the background instead of leaving it transparent",
    )


def operations_from(args: argparse.Namespace) -> list[operations_pb2.Operation]:
    """The Operation of each step flag, in command-line order."""
    builders: dict[str, Callable[[], operations_pb2.Operation]] = {
        "resize": lambda: resize_operation(args.resize[0], args.resize[1], args.fit),
        "crop": lambda: _crop(args),
        "rotate": lambda: rotate_operation(args.rotate, expand=args.expand),
        "flip": flip_operation,
        "flop": flop_operation,
        "grayscale": grayscale_operation,
        "blur": lambda: blur_operation(args.blur),
        "sharpen": sharpen_operation,
        "adjust": lambda: adjust_operation(
            brightness=_factor(args.brightness),
            contrast=_factor(args.contrast),
            saturation=_factor(args.saturation),
        ),
        "remove_background": lambda: remove_background_operation(
            args.model, args.alpha_matting, args.background_color
        ),
    }
    return [builders[name]() for name in args.step_order]


def _crop(args: argparse.Namespace) -> operations_pb2.Operation:
    width, height, left, top = args.crop
    if left is None:
        return crop_operation(width, height, gravity=args.gravity)
    return crop_operation(width, height, left=left, top=top)


def _factor(value: float | None) -> float:
    return 1.0 if value is None else value
