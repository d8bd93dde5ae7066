"""Result reuse by content: a task identical to an earlier one takes that one's result
instead of running.

Identical means the same scope (the user; everyone with IMAGEEDITOR_RESULT_REUSE=shared), the
same source bytes and the same operations, style prompt and output options: everything that
shapes the result, nothing else (not the callback URL, labels or request id). The content key
is a SHA-256 over those, kept on the task (tasks.content_key, indexed).

Only inline sources are keyed: their bytes are at hand at submit. A URL's content is known
only once fetched, and may differ from one fetch to the next, so a URL source always runs.

At submit, for each new keyed task (imageeditor.core.service):
- an identical task SUCCEEDED within result_reuse_seconds: its result is copied under the new
  task's own key (a hard link on disk, CopyObject on S3: each task owns its result, so losing
  one never breaks another) and the new task goes QUEUED → SUCCEEDED at once, `reused_from`
  naming the source. No worker sees it. A source whose blob is gone is not reused.
- an identical task still QUEUED or RUNNING (or earlier in the same submit): the new task
  waits for it, `reused_from` naming it. It is dispatched as usual; the worker that receives
  it leaves it QUEUED while the other is unfinished, takes the other's result once it
  SUCCEEDED, and runs it itself if the other FAILED or was CANCELLED
  (imageeditor.workers.runner). Whoever sees a task end dispatches the tasks waiting for it
  (imageeditor.core.admission); the reconciler's redispatch of QUEUED tasks covers a lost
  nudge. So concurrent identical jobs run once.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import PurePosixPath

from imageeditor.core.errors import NotFound
from imageeditor.core.ports import BlobStore, TaskStore
from imageeditor.core.settings import Settings
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import ResultInfo, Task, TaskState

log = logging.getLogger(__name__)

MODES = ("user", "shared", "off")


class ResultReuse:
    """The settings' reuse policy over the store: keys, and the tasks they find."""

    def __init__(self, store: TaskStore, settings: Settings) -> None:
        if settings.result_reuse not in MODES:
            raise ValueError(
                f"IMAGEEDITOR_RESULT_REUSE must be one of {', '.join(MODES)}, "
                f"not {settings.result_reuse!r}"
            )
        self._store = store
        self._mode = settings.result_reuse
        self._retention = timedelta(seconds=settings.result_reuse_seconds)

    @property
    def enabled(self) -> bool:
        return self._mode != "off" and self._retention > timedelta(0)

    def key(self, user_id: str, spec: TaskSpec, source: bytes) -> str:
        """The content key of a task of `user_id` with `spec` over the bytes `source`."""
        shaping = replace(spec, image_url="", input_key="", input_size=0, callback_url="")
        canonical = json.dumps(shaping.to_dict(), sort_keys=True, separators=(",", ":"))
        scope = "*" if self._mode == "shared" else user_id
        digest = hashlib.sha256()
        for part in (scope.encode(), canonical.encode(), hashlib.sha256(source).digest()):
            digest.update(len(part).to_bytes(8, "big"))  # unambiguous: each part's length first
            digest.update(part)
        return digest.hexdigest()

    def sources(self, keys: list[str], now: datetime) -> dict[str, Task]:
        """For each key, the task to take a result from or to wait for (TaskStore.reusable)."""
        return self._store.reusable(keys, now - self._retention) if keys else {}


def copy_result_of(blobs: BlobStore, source: Task, task_id: str) -> ResultInfo | None:
    """`source`'s result copied to `results/<task_id>.<its extension>`, or None when it has
    none to give (not SUCCEEDED, or its blob is gone)."""
    result = source.result
    if source.state is not TaskState.SUCCEEDED or result is None:
        return None
    key = f"results/{task_id}{PurePosixPath(result.key).suffix}"
    try:
        return replace(result, uri=blobs.copy(result.key, key), key=key)
    except NotFound:
        log.info("task %s: the result of %s is gone; it runs itself", task_id, source.id)
        return None
