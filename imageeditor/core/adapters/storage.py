"""What both modes store the same way: tasks and callbacks in SQL, blobs where the storage
URL says, and download links for the results.

The mode changes the URLs (SQLite or PostgreSQL, a folder or a bucket), not the adapters, so
`imageeditor.core.adapters.embedded` and `imageeditor.core.adapters.production` both start from
this.
"""

from __future__ import annotations

from dataclasses import dataclass

from imageeditor.core.adapters.blobs.factory import ResultLinks, blob_store_from_settings
from imageeditor.core.adapters.sql.callback_store import SqlCallbackStore
from imageeditor.core.adapters.sql.engine import create_engine_for, upgrade_database
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.ports import BlobStore
from imageeditor.core.sealing import Sealer, sealer_from_settings
from imageeditor.core.settings import Settings


@dataclass
class StorageAdapters:
    """The task store (also the API keys'), the callback store (also the webhook secrets'),
    the blob store and its download links."""

    tasks: SqlTaskStore
    deliveries: SqlCallbackStore
    blobs: BlobStore
    links: ResultLinks
    sealer: Sealer  # what the stores seal with; the cache, events and messages use it too

    @property
    def api_keys(self) -> SqlTaskStore:
        return self.tasks

    @property
    def webhook_secrets(self) -> SqlCallbackStore:
        return self.deliveries

    def close(self) -> None:
        """Close the database's pooled connections."""
        self.tasks.close()


def open_storage(settings: Settings, *, migrate: bool = False) -> StorageAdapters:
    """The stores `settings` names, on one database engine, sealing with its keys; with
    `migrate`, the database is brought to the current schema first (and what is stored in
    clear is sealed). Connects nothing else."""
    sealer = sealer_from_settings(settings)
    url = settings.effective_database_url
    if migrate:
        upgrade_database(url, sealer)
    engine = create_engine_for(url)
    blobs = blob_store_from_settings(settings)
    return StorageAdapters(
        SqlTaskStore(engine, sealer),
        SqlCallbackStore(engine, sealer=sealer),
        blobs,
        ResultLinks.for_store(blobs, settings),
        sealer,
    )
