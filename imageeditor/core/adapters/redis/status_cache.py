"""The GetStatus cache on Redis (production mode), with a short in-process layer in front.

Redis holds `imageeditor:task:<id>` = the task's JSON snapshot, living for the TTL of its
state (imageeditor.core.ports.STATUS_TTL_SECONDS). A Lua script writes an entry only if it is not
older than the one there, so a late writer (a reader repopulating after a miss, a slow
worker) never puts an old state back.

The in-process layer keeps finished tasks only, each for `hot_seconds`: a finished task polled
many times a second is read from Redis about once a second per server process. A finished
task never changes again, so the copy cannot go stale; an unfinished one is always read from
Redis, so a reader never sees an older state than the last transition (another process's
included). `hot_seconds=0` turns the layer off.

Redis failures are logged and count as misses, and Redis is left alone for the next 5 s:
the store is the truth, so GetStatus goes on working, more slowly, while Redis is away. The
writes missed meanwhile are made up for by deleting those entries once Redis answers again,
in case it kept them (a partition rather than a restart).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

import redis

from imageeditor.core.adapters.redis.connection import OutageGuard
from imageeditor.core.ports import STATUS_TTL_SECONDS
from imageeditor.core.sealing import NO_SEALING, Sealer
from imageeditor.core.snapshot import task_from_dict, task_to_dict
from imageeditor.core.task import Task

logger = logging.getLogger(__name__)

KEY_PREFIX = "imageeditor:task:"

# KEYS[1] entry; ARGV[1] version, ARGV[2] snapshot, ARGV[3] TTL in ms. Returns 1 if written.
_PUT_IF_NOT_OLDER = """
local current = redis.call('GET', KEYS[1])
if current then
  local ok, decoded = pcall(cjson.decode, current)
  if ok and type(decoded) == 'table' and tonumber(decoded['version'])
      and tonumber(decoded['version']) > tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
return 1
"""


class RedisStatusCache:
    """StatusCache on Redis, shared by every server and worker process. Thread-safe."""

    def __init__(
        self,
        client: redis.Redis,
        hot_seconds: float = 1.0,
        *,
        max_hot_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        sealer: Sealer = NO_SEALING,
    ) -> None:
        self._client = client
        self._sealer = sealer  # the entries are kept at rest: what a task reveals is sealed
        self._put_script = client.register_script(_PUT_IF_NOT_OLDER)
        self._hot_seconds = hot_seconds
        self._max_hot_entries = max_hot_entries
        self._clock = clock
        self._hot: OrderedDict[str, tuple[float, Task]] = OrderedDict()
        self._unsynced: OrderedDict[str, None] = OrderedDict()  # task ids whose write failed
        self._lock = threading.Lock()
        self._outage = OutageGuard(logger, clock=clock)

    def get(self, task_id: str) -> Task | None:
        """The cached task, or None on a miss (or when Redis cannot be reached)."""
        task = self._hot_get(task_id)
        if task is not None or not self._redis_usable():
            return task
        try:
            raw = self._client.get(KEY_PREFIX + task_id)
        except redis.RedisError as exc:
            self._outage.failed("status cache unavailable; reading from the store", exc)
            return None
        if raw is None:
            return None
        try:
            task = task_from_dict(json.loads(raw), self._sealer)
        except (ValueError, KeyError, TypeError) as exc:
            # e.g. written by another release with another shape: the store still knows.
            logger.warning("unreadable status cache entry for %s: %r", task_id, exc)
            return None
        self._hot_put(task)
        return task

    def put(self, task: Task) -> None:
        """Cache `task` unless a newer version is cached already."""
        snapshot = json.dumps(task_to_dict(task, self._sealer), separators=(",", ":"))
        ttl_ms = int(STATUS_TTL_SECONDS[task.state] * 1000)
        written = 0
        if self._redis_usable():
            try:
                written = self._put_script(
                    keys=[KEY_PREFIX + task.id], args=[task.version, snapshot, ttl_ms]
                )
            except redis.RedisError as exc:
                self._outage.failed("status cache unavailable; not caching", exc)
                self._mark_unsynced(task.id)
        else:
            self._mark_unsynced(task.id)
        if written:
            self._hot_put(task)
        else:
            # Redis has a newer version (or is unreachable): don't serve ours from memory.
            self._hot_drop(task.id)

    def invalidate(self, task_id: str) -> None:
        """Forget the task here and in Redis."""
        self._hot_drop(task_id)
        if not self._redis_usable():
            self._mark_unsynced(task_id)
            return
        try:
            self._client.delete(KEY_PREFIX + task_id)
        except redis.RedisError as exc:
            self._outage.failed("status cache unavailable; not invalidating", exc)
            self._mark_unsynced(task_id)

    # -- outages: a write that did not reach Redis leaves an older entry there ----------------

    def _mark_unsynced(self, task_id: str) -> None:
        with self._lock:
            self._unsynced[task_id] = None
            while len(self._unsynced) > self._max_hot_entries:
                self._unsynced.popitem(last=False)

    def _redis_usable(self) -> bool:
        """False during an outage's cooldown; else first deletes the entries that writes
        missed meanwhile (a miss is always correct, an older state is not)."""
        if self._outage.down:
            return False
        with self._lock:
            missed, self._unsynced = list(self._unsynced), OrderedDict()
        if not missed:
            return True
        try:
            self._client.delete(*(KEY_PREFIX + task_id for task_id in missed))
        except redis.RedisError as exc:
            self._outage.failed("status cache unavailable; reading from the store", exc)
            for task_id in missed:
                self._mark_unsynced(task_id)
            return False
        return True

    def _hot_get(self, task_id: str) -> Task | None:
        with self._lock:
            entry = self._hot.get(task_id)
            if entry is None:
                return None
            expires, task = entry
            if expires <= self._clock():
                del self._hot[task_id]
                return None
            self._hot.move_to_end(task_id)
            return task

    def _hot_put(self, task: Task) -> None:
        if self._hot_seconds <= 0 or not task.state.terminal:
            return
        with self._lock:
            current = self._hot.get(task.id)
            if current is not None and current[1].version > task.version:
                return
            self._hot[task.id] = (self._clock() + self._hot_seconds, task)
            self._hot.move_to_end(task.id)
            while len(self._hot) > self._max_hot_entries:
                self._hot.popitem(last=False)

    def _hot_drop(self, task_id: str) -> None:
        with self._lock:
            self._hot.pop(task_id, None)
