"""What the SDK puts on the wire before any call: requests, channel options, credentials."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import imageeditor
import imageeditor.sdk
from imageeditor.core.errors import InvalidArgument
from imageeditor.core.settings import Settings
from imageeditor.sdk import (
    adjust_operation,
    blur_operation,
    crop_operation,
    flip_operation,
    flop_operation,
    remove_background_operation,
    rotate_operation,
    sharpen_operation,
)
from imageeditor.sdk.channel import auth_metadata, channel_options
from imageeditor.sdk.credentials import resolve_address, resolve_api_key
from imageeditor.sdk.operations import grayscale_operation, resize_operation
from imageeditor.sdk.requests import (
    build_batch_request,
    build_list_request,
    build_submit_request,
    new_request_id,
    task_state,
)
from imageeditor.v1 import operations_pb2, task_pb2


def test_a_path_is_read_and_sent_inline(tmp_path: Path) -> None:
    image = tmp_path / "cat.png"
    image.write_bytes(b"png bytes")

    request = build_submit_request(image)

    assert request.WhichOneof("source") == "image_data"
    assert request.image_data == b"png bytes"


def test_bytes_are_inline_and_an_http_url_is_fetched_by_the_worker() -> None:
    assert build_submit_request(b"raw").image_data == b"raw"
    assert build_submit_request("https://e.com/a.jpg").image_url == "https://e.com/a.jpg"
    assert build_submit_request("http://e.com/a.jpg").image_url == "http://e.com/a.jpg"


def test_a_string_that_is_not_a_url_is_refused_with_a_field_violation() -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_submit_request("cat.png")
    assert "image_url" in caught.value.field_violations


def test_resize_shorthand_comes_before_the_other_operations() -> None:
    request = build_submit_request(b"x", operations=[grayscale_operation()], resize=(640, 0))

    kinds = [operation.WhichOneof("kind") for operation in request.operations]
    assert kinds == ["resize", "grayscale"]
    resize = request.operations[0].resize
    assert (resize.width, resize.height, resize.fit) == (640, 0, operations_pb2.RESIZE_FIT_INSIDE)


def test_output_options_and_the_other_fields() -> None:
    request = build_submit_request(
        b"x",
        format="JPEG",
        quality=70,
        style_prompt="watercolor",
        callback_url="https://hooks.example/done",
        request_id="r-1",
        labels={"team": "a"},
    )

    assert request.output.format == operations_pb2.IMAGE_FORMAT_JPEG
    assert request.output.quality == 70
    assert (request.style_prompt, request.request_id) == ("watercolor", "r-1")
    assert request.callback_url == "https://hooks.example/done"
    assert dict(request.labels) == {"team": "a"}
    assert not build_submit_request(b"x").HasField("output")
    output = build_submit_request(b"x", format="png", effort=9, keep_metadata=True).output
    assert (output.effort, output.keep_metadata) == (9, True)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"format": "gif"}, "output.format"),
        ({"quality": 101}, "output.quality"),
        ({"quality": -1}, "output.quality"),
        ({"effort": 11}, "output.effort"),
    ],
)
def test_bad_output_options_are_refused(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_submit_request(b"x", **kwargs)  # type: ignore[arg-type]
    assert field in caught.value.field_violations


def test_resize_operation_checks_its_fit() -> None:
    assert resize_operation(10, 20, "cover").resize.fit == operations_pb2.RESIZE_FIT_COVER
    with pytest.raises(InvalidArgument):
        resize_operation(10, 20, "stretch")


def test_each_operation_builder_fills_its_message() -> None:
    box = crop_operation(30, 20, left=5, top=6).crop
    assert (box.box.left, box.box.top, box.box.width, box.box.height) == (5, 6, 30, 20)
    placed = crop_operation(30, 20, gravity="South-East").crop
    assert placed.WhichOneof("region") == "size"
    assert placed.size.gravity == operations_pb2.GRAVITY_SOUTH_EAST
    rotate = rotate_operation(-45, expand=True, fill="#ff000080").rotate
    assert (rotate.degrees, rotate.expand) == (-45, True)
    assert (rotate.fill.red, rotate.fill.green, rotate.fill.alpha) == (255, 0, 128)
    assert not rotate_operation(90).rotate.HasField("fill")
    assert flip_operation().WhichOneof("kind") == "flip"
    assert flop_operation().WhichOneof("kind") == "flop"
    assert blur_operation(2.5).blur.radius == 2.5
    sharpen = sharpen_operation().sharpen
    assert (sharpen.radius, sharpen.percent, sharpen.threshold) == (2.0, 150, 3)
    adjust = adjust_operation(brightness=0.5, saturation=2).adjust
    assert (adjust.brightness, adjust.contrast, adjust.saturation) == (0.5, 1.0, 2.0)
    remove = remove_background_operation("u2net", True, (0, 0, 255)).remove_background
    assert (remove.model, remove.alpha_matting) == ("u2net", True)
    assert (remove.background.blue, remove.background.alpha) == (255, 255)
    assert not remove_background_operation().remove_background.HasField("background")


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: crop_operation(0, 10), "operations.crop"),
        (lambda: crop_operation(10, 10, gravity="up"), "operations.crop.size.gravity"),
        (lambda: crop_operation(10, 10, left=-1), "operations.crop.box"),
        (lambda: rotate_operation(float("nan")), "operations.rotate.degrees"),
        (lambda: rotate_operation(10, fill="red"), "operations.rotate.fill"),
        (lambda: rotate_operation(10, fill=(1, 2, 300)), "operations.rotate.fill"),
        (lambda: blur_operation(0), "operations.blur.radius"),
        (lambda: blur_operation(251), "operations.blur.radius"),
        (lambda: sharpen_operation(percent=1001), "operations.sharpen.percent"),
        (lambda: sharpen_operation(threshold=256), "operations.sharpen.threshold"),
        (lambda: adjust_operation(brightness=0), "operations.adjust.brightness"),
        (lambda: adjust_operation(contrast=11), "operations.adjust.contrast"),
        (
            lambda: remove_background_operation(background="12345"),
            "operations.remove_background.background",
        ),
    ],
)
def test_operation_builders_refuse_what_the_server_would(
    build: Callable[[], object], field: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        build()
    assert field in caught.value.field_violations


def test_task_states_by_name_or_number() -> None:
    assert task_state("running") == task_pb2.TASK_STATE_RUNNING
    assert task_state("TASK_STATE_FAILED") == task_pb2.TASK_STATE_FAILED
    assert task_state(task_pb2.TASK_STATE_QUEUED) == task_pb2.TASK_STATE_QUEUED
    with pytest.raises(InvalidArgument):
        task_state("sleeping")
    request = build_list_request(states=["queued", "cancelled"], batch_id="b", page_size=5)
    assert list(request.states) == [task_pb2.TASK_STATE_QUEUED, task_pb2.TASK_STATE_CANCELLED]
    assert (request.batch_id, request.page_size) == ("b", 5)


def test_request_ids_are_fresh() -> None:
    assert new_request_id() != new_request_id()


def test_channel_retries_only_unary_calls_and_only_on_unavailable() -> None:
    options = dict(channel_options())
    config = json.loads(str(options["grpc.service_config"]))

    (method_config,) = config["methodConfig"]
    methods = {name["method"] for name in method_config["name"]}
    assert methods == {"SubmitTask", "BatchSubmit", "GetStatus", "CancelTask", "ListTasks"}
    policy = method_config["retryPolicy"]
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert (policy["maxAttempts"], policy["initialBackoff"], policy["maxBackoff"]) == (
        4,
        "0.2s",
        "3s",
    )
    assert options["grpc.enable_retries"] == 1
    assert options["grpc.max_receive_message_length"] == 64 * 1024 * 1024
    assert options["grpc.max_send_message_length"] == 64 * 1024 * 1024


def test_auth_metadata_is_a_bearer_header() -> None:
    assert auth_metadata("iek_abc") == (("authorization", "Bearer iek_abc"),)
    assert auth_metadata(None) == ()


def test_api_key_lookup_order(tmp_path: Path) -> None:
    (tmp_path / "dev-api-key").write_text("iek_dev\n")
    env = {"IMAGEEDITOR_DATA_DIR": str(tmp_path)}

    assert resolve_api_key("iek_arg", env) == "iek_arg"
    assert resolve_api_key(None, {**env, "IMAGEEDITOR_API_KEY": "iek_env"}) == "iek_env"
    assert resolve_api_key(None, env) == "iek_dev"
    assert resolve_api_key(None, {"IMAGEEDITOR_DATA_DIR": str(tmp_path / "none")}) is None


# Server settings that Settings.from_env would refuse: a caller must not care.
MALFORMED_SERVER_SETTINGS = {
    "IMAGEEDITOR_MAX_ATTEMPTS": "many",
    "IMAGEEDITOR_CALLBACK_RETRY_SCHEDULE": "soon,later",
    "IMAGEEDITOR_ONNX_MEMORY_ARENA": "perhaps",
}


def test_the_api_key_is_found_whatever_the_server_settings_say(tmp_path: Path) -> None:
    (tmp_path / "dev-api-key").write_text("iek_dev\n")
    env = {**MALFORMED_SERVER_SETTINGS, "IMAGEEDITOR_DATA_DIR": str(tmp_path)}

    assert resolve_api_key(None, env) == "iek_dev"
    assert resolve_api_key(None, {**env, "IMAGEEDITOR_API_KEY": "iek_env"}) == "iek_env"
    assert resolve_address(None, env) == "127.0.0.1:50051"


def test_a_client_starts_beside_malformed_server_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in MALFORMED_SERVER_SETTINGS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IMAGEEDITOR_DATA_DIR", str(tmp_path / "nowhere"))

    with imageeditor.sdk.Client("127.0.0.1:1") as client:
        assert client.address == "127.0.0.1:1"


def test_the_dev_key_is_looked_for_in_the_servers_default_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    Settings().dev_key_path.parent.mkdir(parents=True)
    Settings().dev_key_path.write_text("iek_default\n")

    assert resolve_api_key(None, {}) == "iek_default"


def test_address_lookup_order() -> None:
    assert resolve_address("h:1", {"IMAGEEDITOR_ADDRESS": "h:2"}) == "h:1"
    assert resolve_address(None, {"IMAGEEDITOR_ADDRESS": "h:2"}) == "h:2"
    assert resolve_address(None, {}) == "127.0.0.1:50051"


def test_the_sdk_exports_its_public_names() -> None:
    assert {"Client", "AsyncClient", "InvalidArgument", "build_submit_request"} <= set(
        imageeditor.sdk.__all__
    )
    assert [n for n in imageeditor.sdk.__all__ if not hasattr(imageeditor.sdk, n)] == []


@pytest.mark.parametrize(
    ("ours", "theirs", "prefix"),
    [
        (imageeditor.sdk.TaskState, task_pb2.TaskState, "TASK_STATE_"),
        (imageeditor.sdk.Stage, task_pb2.Stage, "STAGE_"),
        (imageeditor.sdk.ImageFormat, operations_pb2.ImageFormat, "IMAGE_FORMAT_"),
        (imageeditor.sdk.CallbackState, task_pb2.CallbackState, "CALLBACK_STATE_"),
    ],
)
def test_the_sdk_enums_name_every_value_of_the_protobuf_enums(
    ours: type, theirs: object, prefix: str
) -> None:
    generated = {
        name.removeprefix(prefix): number
        for name, number in theirs.items()  # type: ignore[attr-defined]
    }
    assert {member.name: member.value for member in ours} == generated  # type: ignore[attr-defined]


def test_task_state_reads_a_task_by_name() -> None:
    task = task_pb2.Task(state=task_pb2.TASK_STATE_SUCCEEDED)
    state = imageeditor.sdk.TaskState(task.state)
    assert state is imageeditor.sdk.TaskState.SUCCEEDED and state.name == "SUCCEEDED"
    assert state.terminal and not imageeditor.sdk.TaskState.RUNNING.terminal


def test_a_batch_takes_images_with_shared_options_and_requests_of_their_own(
    tmp_path: Path,
) -> None:
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"jpeg bytes")
    own = build_submit_request("https://example.com/own.png", format="webp")
    batch = build_batch_request(
        [photo, b"raw", "https://example.com/b.png", own],
        callback_url="https://hooks.example.com/x",
        request_id="r-1",
        resize=(64, 64),
        operations=[grayscale_operation()],
        format="png",
        labels={"run": "7"},
    )
    first, second, third, fourth = batch.requests
    assert first.image_data == b"jpeg bytes" and second.image_data == b"raw"
    assert third.image_url == "https://example.com/b.png"
    for built in (first, second, third):
        assert [op.WhichOneof("kind") for op in built.operations] == ["resize", "grayscale"]
        assert built.output.format == operations_pb2.IMAGE_FORMAT_PNG
        assert dict(built.labels) == {"run": "7"}
    assert fourth == own  # taken as it is
    assert (batch.callback_url, batch.request_id) == ("https://hooks.example.com/x", "r-1")


def test_a_ca_file_turns_tls_on(tmp_path: Path) -> None:
    from imageeditor.sdk.credentials import resolve_tls
    from tests.e2e.tls_certs import Authority

    ca = Authority(tmp_path).pair.cert
    assert resolve_tls(None, {}) is None
    assert resolve_tls(None, {}, ca_file=ca) is not None
    assert resolve_tls(False, {}, ca_file=ca) is None
