"""Where the SDK finds its server address, API key and TLS settings when the caller names
none of them.

The lookup order is the same for the SDK and the CLI: the explicit argument, then the
environment, then what embedded mode leaves on disk. Only the client's own variables are
read (IMAGEEDITOR_ADDRESS, IMAGEEDITOR_API_KEY, IMAGEEDITOR_DATA_DIR for the development key,
and IMAGEEDITOR_TLS, IMAGEEDITOR_TLS_CA_FILE, IMAGEEDITOR_TLS_CLIENT_CERT_FILE and
IMAGEEDITOR_TLS_CLIENT_KEY_FILE), never the server's settings, so a server-only variable
can't break a caller. Nothing here runs at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import grpc

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.settings import DEFAULT_DATA_DIR, DEV_API_KEY_FILE

DEFAULT_ADDRESS = "127.0.0.1:50051"
ADDRESS_VARIABLE = "IMAGEEDITOR_ADDRESS"
API_KEY_VARIABLE = "IMAGEEDITOR_API_KEY"
DATA_DIR_VARIABLE = "IMAGEEDITOR_DATA_DIR"


def resolve_address(address: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """`address`, else $IMAGEEDITOR_ADDRESS, else the embedded server's default address."""
    env = os.environ if environ is None else environ
    return address or env.get(ADDRESS_VARIABLE) or DEFAULT_ADDRESS


def resolve_api_key(
    api_key: str | None = None, environ: Mapping[str, str] | None = None
) -> str | None:
    """`api_key`, else $IMAGEEDITOR_API_KEY, else the development key embedded mode writes
    to `$IMAGEEDITOR_DATA_DIR/dev-api-key`; None when there is none (the server will then
    answer UNAUTHENTICATED, which says more than a client-side guess could)."""
    env = os.environ if environ is None else environ
    key = api_key or env.get(API_KEY_VARIABLE, "").strip()
    if key:
        return key
    try:
        key = _dev_key_path(env).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return key or None


def api_key_hint(environ: Mapping[str, str] | None = None) -> str:
    """Where `resolve_api_key` looked, for an error message: the variable and the dev-key
    file it tried when it found no key; the key's origin when it found one."""
    env = os.environ if environ is None else environ
    if env.get(API_KEY_VARIABLE, "").strip():
        return f"the key in {API_KEY_VARIABLE} was refused"
    path = _dev_key_path(env)
    if resolve_api_key(None, env):
        return f"the development key in {path} was refused (another server's data folder?)"
    return (
        f"no API key: {API_KEY_VARIABLE} is not set and there is no {path} "
        f"(embedded mode writes it in its {DATA_DIR_VARIABLE}, default {DEFAULT_DATA_DIR})"
    )


def _dev_key_path(env: Mapping[str, str]) -> Path:
    """Where embedded mode writes its development key, as the environment places it."""
    return Path(env.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR) / DEV_API_KEY_FILE


TLS_VARIABLE = "IMAGEEDITOR_TLS"
CA_FILE_VARIABLE = "IMAGEEDITOR_TLS_CA_FILE"
CLIENT_CERT_VARIABLE = "IMAGEEDITOR_TLS_CLIENT_CERT_FILE"
CLIENT_KEY_VARIABLE = "IMAGEEDITOR_TLS_CLIENT_KEY_FILE"


def resolve_tls(
    tls: bool | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    ca_file: str | Path | None = None,
) -> grpc.ChannelCredentials | None:
    """TLS credentials for the channel, or None for plain text. TLS is on when `tls` is True,
    or (`tls` None) when a `ca_file` is given, $IMAGEEDITOR_TLS is true or a CA file or client
    certificate is set; the server is checked against `ca_file` (else $IMAGEEDITOR_TLS_CA_FILE,
    else the system's roots), and $IMAGEEDITOR_TLS_CLIENT_CERT_FILE / _KEY_FILE are presented
    for mutual TLS."""
    env = os.environ if environ is None else environ
    ca_file = str(ca_file or env.get(CA_FILE_VARIABLE, ""))
    cert_file, key_file = env.get(CLIENT_CERT_VARIABLE, ""), env.get(CLIENT_KEY_VARIABLE, "")
    wanted = env.get(TLS_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}
    if tls is False or not (tls or wanted or ca_file or cert_file):
        return None
    if bool(cert_file) != bool(key_file):
        problem = f"set both {CLIENT_CERT_VARIABLE} and {CLIENT_KEY_VARIABLE}, or neither"
        raise InvalidArgument(
            problem, field_violations={CLIENT_CERT_VARIABLE: problem}, reason="BAD_SETTING"
        )
    return grpc.ssl_channel_credentials(
        root_certificates=Path(ca_file).read_bytes() if ca_file else None,
        private_key=Path(key_file).read_bytes() if key_file else None,
        certificate_chain=Path(cert_file).read_bytes() if cert_file else None,
    )
