"""How every process of the service logs: one place, so the server, the workers, the callback
sender and the embedded worker's pipeline processes write alike.

Two formats (IMAGEEDITOR_LOG_FORMAT): `text`, one line a record, for a terminal (the default);
`json`, one object a line (python-json-logger), for a log pipeline. Every record carries
`trace_id` and `span_id` of the current span (when tracing is on, imageeditor.core.telemetry) and
the
`task_id` of the task being worked on (`task_context`), so a log line leads to its trace and
its task; JSON shows them as fields.

Whatever the code logs, what leaves the process never holds a URL's query string or
userinfo, an API key or a webhook secret: the formatted line is scrubbed last (a URL given by
a caller may carry a token; an exception's text may quote one).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter

from imageeditor.core.settings import bad_setting

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s %(task_id)s"
FORMATS = ("text", "json")

_task_id: ContextVar[str] = ContextVar("imageeditor_task_id", default="")


@contextmanager
def task_context(task_id: str) -> Iterator[None]:
    """Records logged in the block carry `task_id`."""
    token = _task_id.set(task_id)
    try:
        yield
    finally:
        _task_id.reset(token)


class ContextFilter(logging.Filter):
    """Adds `trace_id`, `span_id` (hex, "" outside a span) and `task_id` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        span = trace.get_current_span().get_span_context()
        record.trace_id = format(span.trace_id, "032x") if span.is_valid else ""
        record.span_id = format(span.span_id, "016x") if span.is_valid else ""
        record.task_id = _task_id.get()
        return True


# A URL's query string (and fragment), a password in its userinfo, our API keys and webhook
# secrets (imageeditor.core.apikeys, imageeditor.core.webhooks).
_QUERY = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#\"'<>]*)[?#][^\s\"'<>]*")
_USERINFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/@:\"'<>]*:)[^\s/@\"'<>]*@")
_API_KEY = re.compile(r"\biek_[A-Za-z0-9_-]{6,}")
_WEBHOOK_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9+/=]{6,}")


def scrub(text: str) -> str:
    """`text` without URL query strings, URL passwords, API keys and webhook secrets."""
    text = _QUERY.sub(r"\1?<redacted>", text)
    text = _USERINFO.sub(r"\1***@", text)
    text = _API_KEY.sub("iek_<redacted>", text)
    return _WEBHOOK_SECRET.sub("whsec_<redacted>", text)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class JsonLineFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        """RFC 3339 in UTC, to the millisecond: what log pipelines parse without a hint."""
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def formatter(log_format: str) -> logging.Formatter:
    """The formatter of `log_format` ("text" or "json"); BAD_SETTING for another."""
    if log_format == "text":
        return TextFormatter(TEXT_FORMAT)
    if log_format == "json":
        fields: Any = {"asctime": "time", "levelname": "level", "name": "logger"}
        return JsonLineFormatter(JSON_FIELDS, rename_fields=fields)
    raise bad_setting("IMAGEEDITOR_LOG_FORMAT", f"expected one of {FORMATS}, got {log_format!r}")


def configure_logging(log_format: str = "text", level: int | str = logging.INFO) -> None:
    """Log to stderr at `level` in `log_format`, replacing whatever was set up before (Celery
    sets up its own unless told not to: imageeditor.workers.celery_app)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
