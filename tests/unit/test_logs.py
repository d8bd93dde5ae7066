"""Log lines (imageeditor.core.logs): JSON with trace and task ids, and never a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.logs import ContextFilter, formatter, scrub, task_context

KEY = "iek_" + "A1b2" * 8
SECRET = "whsec_" + "QUJD" * 11
URL = "https://images.example.com/cat.png?token=s3cr3t&sig=abc"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO, logging.StreamHandler[io.StringIO]]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(ContextFilter())
    logger = logging.getLogger("imageeditor.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, out, handler
    logger.removeHandler(handler)


def test_a_json_line_carries_the_trace_span_and_task_ids(logged: tuple) -> None:  # type: ignore[type-arg]
    logger, out, handler = logged
    handler.setFormatter(formatter("json"))
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("run") as span, task_context("task-1"):
        logger.info("stage %s done", "edit")
    logger.info("outside")
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["message"] == "stage edit done"
    assert inside["level"] == "INFO" and inside["logger"] == "imageeditor.test_logs"
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert inside["task_id"] == "task-1"
    assert inside["time"].endswith("+00:00") and "T" in inside["time"]
    assert (outside["trace_id"], outside["task_id"]) == ("", "")


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_line_shows_a_key_a_secret_or_a_query_string(logged: tuple, log_format: str) -> None:  # type: ignore[type-arg]
    logger, out, handler = logged
    handler.setFormatter(formatter(log_format))
    logger.warning("fetching %s with %s, signing with %s", URL, KEY, SECRET)
    try:
        raise ValueError(f"cannot reach {URL} as postgresql://app:hunter2@db/x")
    except ValueError:
        logger.exception("failed")
    text = out.getvalue()
    for secret in ("s3cr3t", "sig=abc", KEY, SECRET, "hunter2"):
        assert secret not in text
    assert "https://images.example.com/cat.png?<redacted>" in text


def test_scrub_keeps_what_is_not_a_secret() -> None:
    line = "task 5f0c done in 12 ms; callback https://h.example/hook delivered"
    assert scrub(line) == line


def test_an_unknown_format_is_a_bad_setting() -> None:
    with pytest.raises(InvalidArgument) as refused:
        formatter("xml")
    assert refused.value.reason == "BAD_SETTING"
