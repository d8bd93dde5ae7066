"""The parts a worker runs tasks with, on a real SQLite store, blob folder and pipeline."""

from __future__ import annotations

from pathlib import Path

from imageeditor.core.adapters.blobs.local import LocalBlobStore
from imageeditor.core.adapters.memory.event_bus import InProcessEventBus
from imageeditor.core.adapters.memory.status_cache import InProcessStatusCache
from imageeditor.core.adapters.sql.engine import create_engine_for, upgrade_database
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.lifecycle import Lifecycle
from imageeditor.core.settings import Settings
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Task
from imageeditor.workers.background import BackgroundRemover
from imageeditor.workers.pipeline import Pipeline
from imageeditor.workers.runner import TaskRunner
from imageeditor.workers.styles import PresetStyles
from tests.e2e.harness import jpeg_bytes

MAX_ATTEMPTS = 3

_counter = iter(range(1, 1_000_000))


def new_task_id() -> str:
    return f"00000000-0000-4000-8000-{next(_counter):012d}"


class Parts:
    """Store, blobs, lifecycle, pipeline and runner, built as a worker builds them."""

    def __init__(
        self,
        tmp_path: Path,
        store_class: type[SqlTaskStore] = SqlTaskStore,
        time_limit_errors: tuple[type[Exception], ...] = (),
    ) -> None:
        url = f"sqlite:///{tmp_path / 'worker.db'}"
        upgrade_database(url)
        self.store = store_class(create_engine_for(url))
        self.blobs = LocalBlobStore(tmp_path / "blobs")
        self.lifecycle = Lifecycle(self.store, InProcessStatusCache(), InProcessEventBus())
        settings = Settings(data_dir=tmp_path)
        self.pipeline = Pipeline(
            self.blobs, settings, styles=PresetStyles(), remover=BackgroundRemover(settings)
        )
        self.runner = TaskRunner(
            self.lifecycle,
            self.blobs,
            self.pipeline,
            MAX_ATTEMPTS,
            time_limit_errors=time_limit_errors,
        )

    def queue(self, size: tuple[int, int] = (400, 300), **spec: object) -> Task:
        """A QUEUED task whose inline source is a JPEG of `size`."""
        self.blobs.put("inputs/x", jpeg_bytes(*size))
        task_spec = TaskSpec(input_key="inputs/x", **spec)  # type: ignore[arg-type]
        task, _ = self.store.create_task(Task(id=new_task_id(), user_id="u", spec=task_spec))
        return task
