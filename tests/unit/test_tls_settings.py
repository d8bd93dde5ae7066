"""The server's TLS settings: none is plain text; a half or unreadable set stops the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.settings import Settings
from imageeditor.server.app import server_credentials


def test_no_tls_settings_serve_plain_text() -> None:
    assert server_credentials(Settings()) is None


@pytest.mark.parametrize(
    ("fields", "variable"),
    [
        ({"tls_client_ca_file": "ca.pem"}, "IMAGEEDITOR_TLS_CLIENT_CA_FILE"),
        ({"tls_cert_file": "cert.pem"}, "IMAGEEDITOR_TLS_CERT_FILE"),
        ({"tls_key_file": "key.pem"}, "IMAGEEDITOR_TLS_CERT_FILE"),
        (
            {"tls_cert_file": "missing.pem", "tls_key_file": "missing.pem"},
            "IMAGEEDITOR_TLS_CERT_FILE",
        ),
    ],
)
def test_unusable_tls_settings_stop_the_start(
    fields: dict[str, str], variable: str, tmp_path: Path
) -> None:
    fields = {name: str(tmp_path / value) for name, value in fields.items()}
    with pytest.raises(InvalidArgument) as refused:
        server_credentials(Settings(**fields))  # type: ignore[arg-type]
    assert refused.value.reason == "BAD_SETTING"
    assert list(refused.value.field_violations) == [variable]
