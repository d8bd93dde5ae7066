"""What the SDK puts on the wire before any call: requests, channel options, credentials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from imageeditor.v1 import operations_pb2, task_pb2

import clients
import clients.sdk
from clients.sdk.channel import auth_metadata, channel_options
from clients.sdk.credentials import resolve_address, resolve_api_key
from clients.sdk.requests import (
    build_list_request,
    build_submit_request,
    grayscale_operation,
    new_request_id,
    resize_operation,
    task_state,
)
from editcore.errors import InvalidArgument


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


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"format": "gif"}, "output.format"),
        ({"quality": 101}, "output.quality"),
        ({"quality": -1}, "output.quality"),
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


def test_address_lookup_order() -> None:
    assert resolve_address("h:1", {"IMAGEEDITOR_ADDRESS": "h:2"}) == "h:1"
    assert resolve_address(None, {"IMAGEEDITOR_ADDRESS": "h:2"}) == "h:2"
    assert resolve_address(None, {}) == "127.0.0.1:50051"


def test_public_names_are_exported_from_both_packages() -> None:
    assert clients.__all__ == clients.sdk.__all__
    for name in clients.sdk.__all__:
        assert getattr(clients, name) is getattr(clients.sdk, name)
    assert {"Client", "AsyncClient", "InvalidArgument", "build_submit_request"} <= set(
        clients.__all__
    )
