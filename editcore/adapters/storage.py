"""What both modes store the same way: tasks and callbacks in SQL, blobs where the storage
URL says, and download links for the results.

The mode changes the URLs (SQLite or PostgreSQL, a folder or a bucket), not the adapters, so
`editcore.adapters.embedded` and `editcore.adapters.production` both start from this.
"""

from __future__ import annotations

from dataclasses import dataclass

from editcore.adapters.blobs.factory import ResultLinks, blob_store_from_settings
from editcore.adapters.sql.callback_store import SqlCallbackStore
from editcore.adapters.sql.engine import create_engine_for
from editcore.adapters.sql.task_store import SqlTaskStore
from editcore.ports import BlobStore
from editcore.settings import Settings


@dataclass
class StorageAdapters:
    """The task store (also the API keys'), the callback store (also the webhook secrets'),
    the blob store and its download links."""

    tasks: SqlTaskStore
    deliveries: SqlCallbackStore
    blobs: BlobStore
    links: ResultLinks

    @property
    def api_keys(self) -> SqlTaskStore:
        return self.tasks

    @property
    def webhook_secrets(self) -> SqlCallbackStore:
        return self.deliveries

    def close(self) -> None:
        """Close the database's pooled connections."""
        self.tasks.close()


def open_storage(settings: Settings) -> StorageAdapters:
    """The stores `settings` names, on one database engine. Connects nothing yet."""
    engine = create_engine_for(settings.effective_database_url)
    blobs = blob_store_from_settings(settings)
    return StorageAdapters(
        SqlTaskStore(engine),
        SqlCallbackStore(engine),
        blobs,
        ResultLinks.for_store(blobs, settings),
    )
