"""Tracing stays off unless the standard variables turn it on."""

from __future__ import annotations

import pytest

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.telemetry import setup_tracing


@pytest.mark.parametrize("environ", [{}, {"OTEL_TRACES_EXPORTER": "none"}])
def test_tracing_is_off_by_default(environ: dict[str, str]) -> None:
    tracing = setup_tracing("imageeditor-test", environ)
    assert not tracing.enabled
    tracing.shutdown()


def test_an_unknown_exporter_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="OTEL_TRACES_EXPORTER"):
        setup_tracing("imageeditor-test", {"OTEL_TRACES_EXPORTER": "zipkin"})
