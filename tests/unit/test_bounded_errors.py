"""Errors never repeat a large input: every status stays under 4 KB, names the fields that
are wrong and quotes at most ~200 characters of what the caller sent."""

from __future__ import annotations

import pytest
from google.protobuf import timestamp_pb2

from imageeditor.core.api.rpc_errors import MAX_STATUS_BYTES, from_status, to_status
from imageeditor.core.errors import ECHO_LIMIT, InvalidArgument
from imageeditor.core.settings import Settings
from imageeditor.server.validation import (
    MAX_LABELS,
    validate_batch,
    validate_list,
    validate_submit,
    validate_task_id,
)
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import task_pb2

SETTINGS = Settings()
MARKER = "Q"  # caller input made of a letter no message of ours repeats 200 times


def refusal(call: object, *args: object) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        call(*args)  # type: ignore[operator]
    return caught.value


def assert_bounded(error: InvalidArgument) -> None:
    status = to_status(error)
    assert status.ByteSize() <= MAX_STATUS_BYTES
    text = status.SerializeToString().decode("latin-1")
    assert MARKER * (ECHO_LIMIT + 1) not in text


def test_a_20_mb_style_prompt_is_named_not_repeated() -> None:
    request = pb.SubmitTaskRequest(
        image_url="https://e.com/a.png", style_prompt=MARKER * 20_000_000
    )
    error = refusal(validate_submit, request, SETTINGS)
    assert "style_prompt" in error.field_violations
    assert_bounded(error)


def test_an_8_mb_task_id_is_named_not_repeated() -> None:
    error = refusal(validate_task_id, MARKER * 8_000_000)
    assert error.reason == "INVALID_TASK_ID"
    assert_bounded(error)


def test_20000_bad_label_keys_are_one_violation() -> None:
    labels = {f"{MARKER}{i}": "v" for i in range(20_000)}
    request = pb.SubmitTaskRequest(image_url="https://e.com/a.png", labels=labels)
    error = refusal(validate_submit, request, SETTINGS)
    assert error.field_violations == {"labels": "at most 32 labels; got 20000"}
    assert error.reason == "TOO_MANY_LABELS"
    assert_bounded(error)


def test_every_bad_field_is_still_named_when_each_is_long() -> None:
    labels = {f"{MARKER * 10_000}{i}": "v" for i in range(MAX_LABELS)}
    request = pb.SubmitTaskRequest(
        image_url="https://e.com/a.png", labels=labels, callback_url=MARKER * 5_000
    )
    error = refusal(validate_submit, request, SETTINGS)
    assert len(error.field_violations) == MAX_LABELS + 1
    status = to_status(error)
    assert_bounded(error)
    back = from_status(status)
    assert isinstance(back, InvalidArgument)
    assert len(back.field_violations) == MAX_LABELS + 1  # shortened, none left out
    assert "callback_url" in back.field_violations


def test_a_batch_of_bad_items_keeps_each_items_status_bounded() -> None:
    items = [pb.SubmitTaskRequest(style_prompt=MARKER * 100_000) for _ in range(100)]
    outcomes = validate_batch(pb.BatchSubmitRequest(requests=items), SETTINGS)
    assert len(outcomes) == 100
    for outcome in outcomes:
        assert isinstance(outcome, InvalidArgument)
        assert_bounded(outcome)


def test_a_status_too_large_for_trailers_is_cut_to_fit() -> None:
    error = InvalidArgument(
        MARKER * 100_000,
        field_violations={f"f{i}": MARKER * 1_000 for i in range(5_000)},
        metadata={f"k{i}": MARKER * 1_000 for i in range(100)},
    )
    assert to_status(error).ByteSize() <= MAX_STATUS_BYTES
    back = from_status(to_status(error))
    assert isinstance(back, InvalidArgument)
    assert "more fields" in list(back.field_violations.values())[-1]


def test_listing_with_too_many_label_filters_is_an_invalid_argument() -> None:
    request = pb.ListTasksRequest(labels={f"k{i}": "v" for i in range(1_000)})
    error = refusal(validate_list, request, "alice")
    assert error.reason == "TOO_MANY_LABELS"
    assert "labels" in error.field_violations


@pytest.mark.parametrize(
    ("seconds", "nanos"), [(253_402_300_800, 0), (0, -5), (-62_135_596_801, 0), (0, 10**9)]
)
def test_out_of_range_timestamps_are_invalid_arguments(seconds: int, nanos: int) -> None:
    request = pb.ListTasksRequest(
        create_time_after=timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    )
    error = refusal(validate_list, request, "alice")
    assert list(error.field_violations) == ["create_time_after"]


def test_a_listing_request_becomes_its_query() -> None:
    request = pb.ListTasksRequest(
        states=[task_pb2.TASK_STATE_QUEUED],
        labels={"team": "a"},
        create_time_before=timestamp_pb2.Timestamp(seconds=1_700_000_000),
    )
    query = validate_list(request, "alice")
    assert query.user_id == "alice" and query.labels == {"team": "a"}
    assert [s.value for s in query.states] == ["queued"]
    assert query.created_before is not None and query.created_before.year == 2023
    assert query.created_after is None
