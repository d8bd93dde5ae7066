"""Operator subcommands: run the embedded server, create API keys, migrate the database.

These open the database or start the server themselves, so they need the `server` extra.
Their imports happen inside each command: the SDK-only install must still load the CLI.
"""

from __future__ import annotations

import argparse
import json

from editcore.settings import Settings

SERVER_EXTRA_HINT = "this command needs the server extras: pip install 'imageeditor[server,worker]'"


class MissingExtra(RuntimeError):
    """An operator command ran where only the SDK is installed."""


def serve(args: argparse.Namespace) -> int:
    """`imageeditor serve`: the embedded server (and worker) until SIGINT or SIGTERM."""
    try:
        from embedded.main import run
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    run(Settings.from_env())
    return 0


def create_key(args: argparse.Namespace) -> int:
    """`imageeditor keys create NAME`: store a new key and print it (it is shown only once)."""
    try:
        from editcore.apikeys import create_api_key
        from editcore.store.engine import create_engine_for, upgrade_database
        from editcore.store.sql_store import SqlStore
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    url = Settings.from_env().effective_database_url
    # A key is often the first thing made on a fresh database: bring its schema up first.
    upgrade_database(url)
    store = SqlStore(create_engine_for(url))
    try:
        plaintext, record = create_api_key(store, args.name)
    finally:
        store.close()
    if args.json:
        fields = {"key": plaintext, "id": record.id, "name": record.name, "user_id": record.user_id}
        print(json.dumps(fields))
    else:
        print(plaintext)
    return 0


def upgrade_db(args: argparse.Namespace) -> int:
    """`imageeditor db upgrade`: apply every pending migration."""
    try:
        from editcore.store.engine import upgrade_database
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    upgrade_database(Settings.from_env().effective_database_url)
    if args.json:
        print(json.dumps({"upgraded": True}))
    else:
        print("database schema is up to date")
    return 0
