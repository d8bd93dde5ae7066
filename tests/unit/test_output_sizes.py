"""Output sizes: computed without pixels, equal to what the operations make, and capped at
submit (where the source's size is known) and before every operation in the worker."""

from __future__ import annotations

import random
import struct
import zlib
from io import BytesIO

import pytest
from PIL import Image, ImageFile

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.geometry import check_output_sizes, output_size
from imageeditor.core.image_probe import probe
from imageeditor.core.settings import Settings
from imageeditor.core.spec import (
    Blur,
    Crop,
    Flip,
    Gravity,
    Grayscale,
    Operation,
    Resize,
    ResizeFit,
    Rotate,
)
from imageeditor.server.validation import validate_submit
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import operations_pb2
from imageeditor.workers.operations import OPERATIONS, OutputLimits, apply_operations
from tests.hostile_images import chunk

SETTINGS = Settings()
LIMITS = {"max_pixels": 50_000_000, "max_side": 10_000}


def random_operation(rng: random.Random, size: tuple[int, int]) -> Operation:
    kind = rng.choice(["resize", "crop", "crop_gravity", "rotate", "flip", "gray"])
    if kind == "resize":
        return Resize(
            width=rng.choice([0, rng.randint(1, 90)]),
            height=rng.randint(1, 90),
            fit=rng.choice(list(ResizeFit)),
            allow_upscale=rng.random() < 0.5,
        )
    if kind == "crop":
        width, height = rng.randint(1, size[0]), rng.randint(1, size[1])
        return Crop(width, height, left=rng.randint(0, size[0] - width), top=0)
    if kind == "crop_gravity":
        return Crop(rng.randint(1, 90), rng.randint(1, 90), gravity=rng.choice(list(Gravity)))
    if kind == "rotate":
        degrees = rng.choice([rng.uniform(-720, 720), 90.0, 180.0, 270.0, -90.0, 45.0])
        return Rotate(degrees=degrees, expand=rng.random() < 0.5)
    return Flip() if kind == "flip" else Grayscale()


def test_every_computed_size_is_the_size_the_operation_makes() -> None:
    rng = random.Random(7)
    for _ in range(400):
        size = (rng.randint(1, 80), rng.randint(1, 80))
        image = Image.new(rng.choice(["L", "RGB", "RGBA"]), size)
        op = random_operation(rng, size)
        made = OPERATIONS[type(op)](image, op)
        assert output_size(op, size) == made.size, (op, size)


def tiny_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * height)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def resize(width: int, height: int = 0, fit: int = 0, upscale: bool = False) -> Operation:
    return operations_pb2.Operation(
        resize=operations_pb2.Resize(width=width, height=height, fit=fit, allow_upscale=upscale)
    )


def rotate(degrees: float, expand: bool = True) -> Operation:
    return operations_pb2.Operation(rotate=operations_pb2.Rotate(degrees=degrees, expand=expand))


def refused_field(request: pb.SubmitTaskRequest) -> str:
    with pytest.raises(InvalidArgument) as refused:
        validate_submit(request, SETTINGS)
    assert refused.value.reason == "OUTPUT_TOO_LARGE"
    (field,) = refused.value.field_violations
    return field


def test_a_1x1_image_filled_to_10000_square_and_rotated_is_refused_at_submit() -> None:
    """It took the server from 0.45 to 3.5 GB before a MemoryError."""
    fill = operations_pb2.RESIZE_FIT_FILL
    huge = [resize(10_000, 10_000, fill, True), rotate(45), rotate(45)]
    assert refused_field(pb.SubmitTaskRequest(image_data=tiny_png(1, 1), operations=huge)) == (
        "operations[0]"  # 100 MP already
    )
    turned = [resize(7_000, 7_000, fill, True), rotate(45)]  # 49 MP, then 9900 x 9900
    assert refused_field(pb.SubmitTaskRequest(image_data=tiny_png(1, 1), operations=turned)) == (
        "operations[1]"
    )


def test_a_derived_side_is_capped() -> None:
    """A 1x4 image resized to width 10000 became 10000x40000 (8x the pixel cap)."""
    upscaled = resize(10_000, upscale=True)
    request = pb.SubmitTaskRequest(image_data=tiny_png(1, 4), operations=[upscaled])
    assert refused_field(request) == "operations[0]"


def test_the_exif_orientation_is_applied_before_the_sizes_are_computed() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side: decoded 4 wide, 1 high
    out = BytesIO()
    Image.new("L", (1, 4)).save(out, "JPEG", exif=exif.tobytes())
    upscaled = [resize(10_000, upscale=True)]
    request = pb.SubmitTaskRequest(image_data=out.getvalue(), operations=upscaled)
    assert validate_submit(request, SETTINGS).spec.operations  # 10000 x 2500: allowed


def test_a_png_is_probed_without_decoding_its_pixels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pillow finds a PNG's EXIF by decoding the whole image unless it precedes the pixels:
    the edge must not decode (a 50 MP PNG is 200 MB of pixels), and reads it only there."""
    exif = Image.Exif()
    exif[0x0112] = 6
    before, plain = BytesIO(), BytesIO()
    Image.new("L", (1, 4)).save(before, "PNG", exif=exif.tobytes())  # eXIf before IDAT
    Image.new("L", (4000, 3000)).save(plain, "PNG")

    decoded: list[tuple[int, int]] = []
    load = ImageFile.ImageFile.load

    def counting_load(self: ImageFile.ImageFile) -> object:
        decoded.append(self.size)
        return load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting_load)
    assert probe(plain.getvalue(), max_pixels=50_000_000, max_frames=1).turned is False
    assert probe(before.getvalue(), max_pixels=50_000_000, max_frames=1).upright_size == (4, 1)
    assert decoded == []


def test_a_url_source_is_checked_from_the_first_step_whose_size_is_certain() -> None:
    fill = resize(7_000, 7_000, operations_pb2.RESIZE_FIT_FILL, True)
    request = pb.SubmitTaskRequest(image_url="https://e.com/a.png", operations=[fill, rotate(45)])
    assert refused_field(request) == "operations[1]"

    unknown = [resize(10_000, 10_000), rotate(45)]  # INSIDE: the size depends on the source
    allowed = pb.SubmitTaskRequest(image_url="https://e.com/a.png", operations=unknown)
    assert len(validate_submit(allowed, SETTINGS).spec.operations) == 2


def test_a_batch_item_names_its_own_operation() -> None:
    upscaled = [resize(10_000, upscale=True)]
    item = pb.SubmitTaskRequest(image_data=tiny_png(1, 4), operations=upscaled)
    with pytest.raises(InvalidArgument) as refused:
        validate_submit(item, SETTINGS, prefix="requests[2].")
    assert list(refused.value.field_violations) == ["requests[2].operations[0]"]


def test_sizes_within_the_caps_pass() -> None:
    ops = [Resize(7000, 7000, ResizeFit.FILL, True), Blur(3.0), Rotate(90, expand=True)]
    assert check_output_sizes((10, 10), ops, **LIMITS) == (7000, 7000)
    assert check_output_sizes(None, [Rotate(45, expand=True)], **LIMITS) is None


def test_the_worker_refuses_an_operation_before_it_allocates() -> None:
    calls: list[Operation] = []

    def never(image: Image.Image, op: Operation) -> Image.Image:
        calls.append(op)
        raise AssertionError("the operation ran")

    registry = {**OPERATIONS, Rotate: never}
    image = Image.new("RGB", (7000, 7000))
    with pytest.raises(InvalidArgument) as refused:
        apply_operations(
            image,
            [Flip(), Rotate(45, expand=True)],
            registry,
            limits=OutputLimits(50_000_000, 10_000),
        )
    assert refused.value.reason == "OUTPUT_TOO_LARGE"
    assert list(refused.value.field_violations) == ["operations[1]"]
    assert calls == []
