"""Embedded mode's adapters, built in one place: one process, nothing else to run.

The task and callback stores on SQLite in the data directory (or any SQL URL), blobs on
local disk (or the storage URL's store), and in-process events, status cache and rate
limits. `imageeditor/embedded/main.py` adds the in-process worker and callback sender.
"""

from __future__ import annotations

from dataclasses import dataclass

from imageeditor.core.adapters.memory.event_bus import InProcessEventBus
from imageeditor.core.adapters.memory.rate_limiter import InProcessRateLimiter
from imageeditor.core.adapters.memory.status_cache import InProcessStatusCache
from imageeditor.core.adapters.storage import StorageAdapters, open_storage
from imageeditor.core.settings import Settings


@dataclass
class EmbeddedAdapters(StorageAdapters):
    """The ports of an embedded process (imageeditor.core.ports.ProcessAdapters)."""

    events: InProcessEventBus
    cache: InProcessStatusCache
    limiter: InProcessRateLimiter

    @classmethod
    def build(cls, settings: Settings) -> EmbeddedAdapters:
        """Make the data directory and bring the database to the current schema first."""
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        storage = open_storage(settings, migrate=True)
        return cls(
            storage.tasks,
            storage.deliveries,
            storage.blobs,
            storage.links,
            storage.sealer,
            events=InProcessEventBus(),
            cache=InProcessStatusCache(),
            limiter=InProcessRateLimiter(),
        )
