"""Property-based fuzzing of what hostile callers control: image bytes (the header probe and
the structure walk) and requests (parsing and validation). Whatever comes in ends in a
domain error (InvalidArgument) or a result, within a time bound, and never another exception.

`make test` runs a bounded budget (the "default" profile). To run longer:

    .venv/bin/pytest tests/unit/test_fuzz.py --hypothesis-profile=long

(a hundred times the examples; `--hypothesis-seed=N` replays a run).
"""

from __future__ import annotations

import io
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from imageeditor.core.api.rpc_errors import MAX_STATUS_BYTES, to_status
from imageeditor.core.errors import InvalidArgument
from imageeditor.core.image_probe import probe
from imageeditor.core.settings import Settings
from imageeditor.server.rpc import UndecodableRequest, tolerant
from imageeditor.server.validation import validate_batch, validate_list, validate_submit
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import operations_pb2

SETTINGS = Settings()
LIMITS = {"max_pixels": SETTINGS.max_image_pixels, "max_frames": SETTINGS.max_frames}
# CPU seconds of this thread for one probe or one validation, on inputs of up to 64 KB
# (CPU time, not wall time: the bound is on the work done, whatever else the machine runs).
TIME_BOUND = 1.0


def sample(format: str, **options: object) -> bytes:
    out = io.BytesIO()
    image = Image.new("RGBA" if format in ("PNG", "WEBP") else "RGB", (20, 14), (9, 90, 200))
    image.save(out, format, **options)
    return out.getvalue()


SAMPLES = [
    sample("JPEG"),
    sample("JPEG", progressive=True),
    sample("PNG"),
    sample("GIF"),
    sample("WEBP"),
    sample("BMP"),
    sample("TIFF"),
]


@st.composite
def mutated_images(draw: st.DrawFn) -> bytes:
    """A real image with bytes flipped, inserted, repeated or cut: headers that lie."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "insert", "repeat", "cut"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(max_size=64))
        elif kind == "repeat":
            piece = bytes(data[at : at + draw(st.integers(1, 16))])
            data[at:at] = piece * draw(st.integers(1, 400))
        else:
            del data[at:]
    return bytes(data)


@given(st.one_of(st.binary(max_size=65_536), mutated_images()))
def test_the_probe_ends_in_a_header_or_a_domain_error(data: bytes) -> None:
    try:
        header = _probe(data)
    except InvalidArgument as error:
        assert error.reason.startswith("IMAGE_")
        return
    assert header is not None and header.width > 0 and header.height > 0


def _probe(data: bytes) -> object:
    started = time.thread_time()
    try:
        return probe(data, **LIMITS)
    finally:
        assert time.thread_time() - started < TIME_BOUND


texts = st.text(max_size=300)
urls = st.one_of(texts, st.builds(lambda s: f"https://{s}", texts), st.just("http://10.0.0.1/x"))
colors = st.builds(
    operations_pb2.Color,
    red=st.integers(0, 2**32 - 1),
    green=st.integers(0, 300),
    blue=st.integers(0, 300),
    alpha=st.integers(0, 300),
)
sides = st.integers(0, 2**32 - 1)
operations = st.one_of(
    st.builds(
        lambda w, h, f, u: operations_pb2.Operation(
            resize=operations_pb2.Resize(width=w, height=h, fit=f, allow_upscale=u)
        ),
        sides,
        sides,
        st.integers(-5, 9),
        st.booleans(),
    ),
    st.builds(
        lambda d, e, c: operations_pb2.Operation(
            rotate=operations_pb2.Rotate(degrees=d, expand=e, fill=c)
        ),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        colors,
    ),
    st.builds(
        lambda w, h, g: operations_pb2.Operation(
            crop=operations_pb2.Crop(size=operations_pb2.GravitySize(width=w, height=h, gravity=g))
        ),
        sides,
        sides,
        st.integers(-3, 20),
    ),
    st.builds(
        lambda r: operations_pb2.Operation(blur=operations_pb2.Blur(radius=r)),
        st.floats(allow_nan=True, allow_infinity=True),
    ),
    st.builds(
        lambda m, c: operations_pb2.Operation(
            remove_background=operations_pb2.RemoveBackground(model=m, background=c)
        ),
        texts,
        colors,
    ),
    st.just(operations_pb2.Operation()),
)
outputs = st.builds(
    operations_pb2.OutputOptions,
    format=st.integers(-2, 9),
    quality=st.integers(0, 2**32 - 1),
    lossless=st.booleans(),
    effort=st.integers(0, 2**32 - 1),
)


@st.composite
def submit_requests(draw: st.DrawFn) -> pb.SubmitTaskRequest:
    request = pb.SubmitTaskRequest(
        operations=draw(st.lists(operations, max_size=40)),
        output=draw(outputs),
        style_prompt=draw(texts),
        callback_url=draw(urls),
        request_id=draw(texts),
        labels=draw(st.dictionaries(texts, texts, max_size=40)),
    )
    source = draw(st.sampled_from(["url", "data", "none"]))
    if source == "url":
        request.image_url = draw(urls)
    elif source == "data":
        request.image_data = draw(st.one_of(st.binary(max_size=4096), mutated_images()))
    return request


@given(submit_requests())
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_validation_ends_in_a_task_or_a_bounded_invalid_argument(
    request: pb.SubmitTaskRequest,
) -> None:
    started = time.thread_time()
    try:
        new = validate_submit(request, SETTINGS)
    except InvalidArgument as error:
        assert error.field_violations or error.reason
        assert to_status(error).ByteSize() <= MAX_STATUS_BYTES
        return
    finally:
        assert time.thread_time() - started < TIME_BOUND
    assert new.spec is not None


@given(st.lists(submit_requests(), max_size=5), texts, urls)
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
def test_a_batch_is_validated_item_by_item(
    items: list[pb.SubmitTaskRequest], request_id: str, callback_url: str
) -> None:
    request = pb.BatchSubmitRequest(
        requests=items, request_id=request_id, callback_url=callback_url
    )
    try:
        outcomes = validate_batch(request, SETTINGS)
    except InvalidArgument as error:
        assert to_status(error).ByteSize() <= MAX_STATUS_BYTES
        return
    assert len(outcomes) == len(items)


@given(
    st.builds(
        pb.ListTasksRequest,
        page_size=st.integers(-(2**31), 2**31 - 1),
        states=st.lists(st.integers(-3, 9), max_size=10),
        labels=st.dictionaries(texts, texts, max_size=50),
        batch_id=texts,
    ),
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-(2**31), 2**31 - 1),
)
def test_listing_requests_end_in_a_query_or_an_invalid_argument(
    request: pb.ListTasksRequest, seconds: int, nanos: int
) -> None:
    request.create_time_after.seconds = seconds
    request.create_time_after.nanos = nanos
    try:
        query = validate_list(request, "alice")
    except InvalidArgument as error:
        assert to_status(error).ByteSize() <= MAX_STATUS_BYTES
        return
    assert query.user_id == "alice"


@given(st.binary(max_size=4096))
def test_request_bytes_parse_or_are_set_aside(data: bytes) -> None:
    parsed = tolerant(pb.SubmitTaskRequest.FromString)(data)
    assert isinstance(parsed, pb.SubmitTaskRequest | UndecodableRequest)


@pytest.mark.parametrize("data", SAMPLES)
def test_the_samples_themselves_are_accepted(data: bytes) -> None:
    assert _probe(data) is not None
