"""Settings as a log or a traceback may show them: no secret and no password."""

from __future__ import annotations

from imageeditor.core.settings import Settings
from imageeditor.core.urls import redact_url


def test_repr_hides_secrets_and_url_passwords() -> None:
    settings = Settings(
        database_url="postgresql+psycopg://app:db-PASSWORD@db.internal/tasks",
        redis_url="redis://:redis-PASSWORD@cache:6379/0",
        broker_url="amqp://guest:amqp-PASSWORD@rabbit//",
        s3_secret_access_key="S3-SECRET",
        style_http_api_key="sk-STYLE-KEY",
        style_http_url="https://images.example.com/v1/edits?key=URL-KEY",
    )
    text = repr(settings)
    for secret in ("db-PASSWORD", "redis-PASSWORD", "amqp-PASSWORD", "S3-SECRET", "STYLE-KEY"):
        assert secret not in text
    assert "URL-KEY" not in text
    assert "postgresql+psycopg://app:***@db.internal/tasks" in text
    assert "max_attempts=3" in text  # the rest is shown as it is


def test_a_url_in_a_log_line_keeps_its_host_and_path_only() -> None:
    assert redact_url("https://user:pw@hooks.example.com:8443/in/1?token=abc#x") == (
        "https://hooks.example.com:8443/in/1"
    )
    assert redact_url("http://[::1]:9/x?y=1") == "http://[::1]:9/x"
    assert redact_url("http://[bad") == "<unparseable URL>"
