"""Where the SDK finds its server address and API key when the caller names neither.

The lookup order is the same for the SDK and the CLI: the explicit argument, then the
environment, then what embedded mode leaves on disk. Only the client's own variables are
read (IMAGEEDITOR_ADDRESS, IMAGEEDITOR_API_KEY, and IMAGEEDITOR_DATA_DIR for the development
key), never the server's settings, so a server-only variable can't break a caller.
Nothing here runs at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from editcore.settings import DEFAULT_DATA_DIR, DEV_API_KEY_FILE

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
    data_dir = Path(env.get(DATA_DIR_VARIABLE) or DEFAULT_DATA_DIR)
    try:
        key = (data_dir / DEV_API_KEY_FILE).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return key or None
