"""Where the SDK finds its server address and API key when the caller names neither.

The lookup order is the same for the SDK and the CLI: the explicit argument, then the
environment, then what embedded mode leaves on disk. Nothing here runs at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from editcore.settings import Settings

DEFAULT_ADDRESS = "127.0.0.1:50051"
ADDRESS_VARIABLE = "IMAGEEDITOR_ADDRESS"


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
    if api_key:
        return api_key
    settings = Settings.from_env(environ)
    if settings.api_key:
        return settings.api_key
    try:
        key = settings.dev_key_path.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return key or None
