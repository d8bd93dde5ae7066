from __future__ import annotations

from datetime import UTC, datetime

import pytest

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.paging import decode_page_token, encode_page_token
from imageeditor.core.ports import PageCursor, TaskQuery
from imageeditor.core.task import TaskState

QUERY = TaskQuery(user_id="u", states=frozenset({TaskState.QUEUED}), labels={"a": "b"})


def test_a_token_round_trips_to_its_cursor() -> None:
    cursor = PageCursor(datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC), "task-9")
    assert decode_page_token(encode_page_token(cursor, QUERY), QUERY) == cursor


def test_the_first_page_has_no_cursor() -> None:
    assert decode_page_token("", QUERY) is None


def test_a_token_for_other_filters_is_refused() -> None:
    token = encode_page_token(PageCursor(datetime.now(UTC), "x"), QUERY)
    other = TaskQuery(user_id="u", states=frozenset({TaskState.FAILED}))
    with pytest.raises(InvalidArgument) as caught:
        decode_page_token(token, other)
    assert "page_token" in caught.value.field_violations


@pytest.mark.parametrize("token", ["garbage", "eyJ4IjogMX0", "!!!"])
def test_a_malformed_token_is_invalid_argument(token: str) -> None:
    with pytest.raises(InvalidArgument):
        decode_page_token(token, QUERY)
