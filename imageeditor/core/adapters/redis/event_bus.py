"""Task transitions through Redis pub/sub (production mode): any worker to any server's watchers.

Publishing is a PUBLISH of the task's JSON snapshot on `imageeditor:events:<task id>`, from
any thread or process. Receiving: one pub/sub connection per process serves every watcher. A
reader task on the server's event loop owns it: it SUBSCRIBEs a task's channel when the
task's first watcher arrives, UNSUBSCRIBEs when the last one leaves, and fans each message
out to the watchers' queues. Only that task touches the connection, so reads and writes never
race; between reads (at most `poll_seconds` each) it catches up with watchers that came or went.

Pub/sub delivers at most once: whatever is published while a channel is not subscribed is
gone. So a subscription yields RESYNC (imageeditor.core.ports) whenever it may have missed something
— when Redis confirms its channel, when the connection is lost and at every reconnection
attempt (watchers of tasks that finish during an outage still finish), and after
`idle_resync_seconds` without news (a failed PUBLISH reaches no one) — and the watcher
re-reads the store's event log, which is the truth.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import threading
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.client import PubSub

from imageeditor.core.adapters.redis.connection import OutageGuard, async_redis_client, redis_client
from imageeditor.core.ports import RESYNC, Resync
from imageeditor.core.sealing import NO_SEALING, Sealer
from imageeditor.core.snapshot import task_from_dict, task_to_dict
from imageeditor.core.task import Task

logger = logging.getLogger(__name__)

CLOSE_WAIT_SECONDS = 5.0

CHANNEL_PREFIX = "imageeditor:events:"
CLIENT_NAME = "imageeditor-events"


class RedisSubscription:
    """One watcher's view of one task's transitions; iterate, then close()."""

    def __init__(self, bus: RedisEventBus, task_id: str, now: float, confirmed: bool) -> None:
        self.task_id = task_id
        self._bus = bus
        self._queue: asyncio.Queue[Task | Resync] = asyncio.Queue()
        self._resync_queued = False
        self.unconfirmed = not confirmed  # Redis has not yet confirmed the channel for us
        self.last_news = now  # loop time of the last delivery, for the idle resync

    def deliver(self, event: Task | Resync, now: float) -> None:
        """Queue `event` (on the bus's loop); a RESYNC already waiting is not repeated."""
        self.last_news = now
        if isinstance(event, Resync):
            if self._resync_queued:
                return
            self._resync_queued = True
        self._queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[Task | Resync]:
        while True:
            event = await self._queue.get()
            if isinstance(event, Resync):
                self._resync_queued = False
            yield event

    def close(self) -> None:
        self._bus.unsubscribe(self)


class _ConnectionState:
    """What one pub/sub connection has been told, and what Redis has confirmed."""

    def __init__(self, now: float) -> None:
        self.connected = False
        self.sent: set[str] = set()  # SUBSCRIBEd and not UNSUBSCRIBEd since
        self.awaiting: Counter[str] = Counter()  # SUBSCRIBE confirmations still to come
        self.active: set[str] = set()  # confirmed: from here on nothing is missed
        self.last_heard = now
        self.pinged_at: float | None = None


class RedisEventBus:
    """EventBus over Redis pub/sub. `publish` is thread-safe; `subscribe` runs on one loop."""

    def __init__(
        self,
        url: str,
        *,
        poll_seconds: float = 0.05,
        keepalive_seconds: float = 10.0,
        reconnect_max_seconds: float = 5.0,
        idle_resync_seconds: float = 30.0,
        sealer: Sealer = NO_SEALING,
    ) -> None:
        self._url = url
        self._sealer = sealer
        self._poll = poll_seconds
        self._keepalive = keepalive_seconds
        self._reconnect_max = reconnect_max_seconds
        self._idle_resync = idle_resync_seconds
        # Publishers skip Redis for a second after a failure: long enough not to stall a worker on
        # every transition of an outage, short enough that a blip drops few events.
        self._publish_outage = OutageGuard(logger, cooldown=1.0)
        self._read_outage = OutageGuard(logger)
        self._publisher: redis.Redis | None = None
        self._publisher_lock = threading.Lock()
        # Everything below belongs to the loop of the first subscribe().
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reader: asyncio.Task[None] | None = None
        self._watchers: dict[str, set[RedisSubscription]] = {}
        self._changed: set[str] = set()  # task ids whose first watcher came or last one left
        self._state: _ConnectionState | None = None
        self._pubsub: PubSub | None = None  # the reader's connection, once it is connected
        self._syncing: asyncio.Task[None] | None = None
        self._sync_lock = asyncio.Lock()  # one (UN)SUBSCRIBE exchange at a time
        self._closed = False

    def publish(self, task: Task) -> None:
        """PUBLISH the task's snapshot. Failures are logged, not raised: the transition is
        committed, and watchers catch up from the store (see the idle resync)."""
        if self._publish_outage.down:
            return
        payload = json.dumps(task_to_dict(task, self._sealer), separators=(",", ":"))
        try:
            self._publishing_client().publish(CHANNEL_PREFIX + task.id, payload)
        except redis.RedisError as exc:
            self._publish_outage.failed("event publish failed; watchers catch up later", exc)

    def subscribe(self, task_id: str) -> RedisSubscription:
        """Watch `task_id`; call on the event loop that serves the watchers."""
        if self._closed:
            raise RuntimeError("the event bus is closed")
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError("a RedisEventBus serves the watchers of one event loop")
        confirmed = self._state is not None and CHANNEL_PREFIX + task_id in self._state.active
        subscription = RedisSubscription(self, task_id, loop.time(), confirmed)
        watchers = self._watchers.setdefault(task_id, set())
        watchers.add(subscription)
        if len(watchers) == 1:
            self._changed.add(task_id)
            self._sync_soon(loop)
        if self._reader is None:
            self._reader = loop.create_task(self._read_forever(), name="redis-event-bus")
        return subscription

    def _sync_soon(self, loop: asyncio.AbstractEventLoop) -> None:
        """SUBSCRIBE now, not once the reader's poll (poll_seconds) is over: a new watcher
        hears nothing until Redis confirms its channel. One pending sync serves every
        subscribe made meanwhile."""
        if self._syncing is None and self._pubsub is not None:
            self._syncing = loop.create_task(self._sync_now(self._pubsub))

    async def _sync_now(self, pubsub: PubSub) -> None:
        try:
            if self._state is not None and self._pubsub is pubsub:
                await self._sync_channels(pubsub, self._state)
        except redis.RedisError:
            pass  # the reader meets the same loss, reconnects and subscribes everything again
        finally:
            self._syncing = None

    def unsubscribe(self, subscription: RedisSubscription) -> None:
        """Stop delivering to `subscription` (what RedisSubscription.close calls)."""
        watchers = self._watchers.get(subscription.task_id)
        if watchers is None or subscription not in watchers:
            return
        watchers.discard(subscription)
        if not watchers:
            del self._watchers[subscription.task_id]
            self._changed.add(subscription.task_id)

    def close(self) -> None:
        """Stop reading (the connection closes as the reader unwinds) and close the publisher.
        Safe from any thread; `aclose` also waits until the reader has finished."""
        self._closed = True
        reader, loop = self._reader, self._loop
        if reader is not None and loop is not None and not loop.is_closed():
            if _running_loop() is loop:
                reader.cancel()
            else:
                loop.call_soon_threadsafe(reader.cancel)
        with self._publisher_lock:
            if self._publisher is not None:
                self._publisher.close()
                self._publisher = None

    async def aclose(self) -> None:
        """close(), then wait (CLOSE_WAIT_SECONDS at most) until the pub/sub connection is
        closed: a connection that will not close must not hold a shutdown."""
        self.close()
        if self._reader is not None:
            _, pending = await asyncio.wait([self._reader], timeout=CLOSE_WAIT_SECONDS)
            if pending:
                logger.warning(
                    "the event subscription did not close within %.0fs", CLOSE_WAIT_SECONDS
                )

    def _publishing_client(self) -> redis.Redis:
        with self._publisher_lock:
            if self._publisher is None:
                if self._closed:
                    raise redis.ConnectionError("the event bus is closed")
                self._publisher = redis_client(self._url)
            return self._publisher

    # -- the reader: one task owns the one pub/sub connection --------------------------------

    async def _read_forever(self) -> None:
        loop = asyncio.get_running_loop()
        failures = 0
        while not self._closed:
            # No hidden retries on this connection: every loss must reach us, to resync.
            client = async_redis_client(
                self._url, health_check_interval=0, retries=0, client_name=CLIENT_NAME
            )
            pubsub = client.pubsub()
            state = _ConnectionState(loop.time())
            self._state = state
            self._changed = set(self._watchers)
            try:
                await self._listen(pubsub, state)
            except redis.RedisError as exc:
                self._read_outage.failed("event subscription lost; reconnecting", exc)
            except Exception:
                # A bug here must not leave every watcher of the process waiting forever.
                logger.exception("event subscription failed; reconnecting")
            finally:
                self._state, self._pubsub = None, None
                await _close_quietly(pubsub, client)
            failures = 0 if state.connected else failures + 1
            self._connection_lost(loop.time())
            ceiling = min(self._reconnect_max, 0.1 * 2 ** min(failures, 10))
            await asyncio.sleep(random.uniform(ceiling / 2, ceiling))

    async def _listen(self, pubsub: PubSub, state: _ConnectionState) -> None:
        loop = asyncio.get_running_loop()
        await pubsub.connect()
        state.connected = True
        self._pubsub = pubsub
        next_idle_check = loop.time() + self._idle_resync / 4
        while True:
            await self._sync_channels(pubsub, state)
            message = await pubsub.get_message(timeout=self._poll)
            now = loop.time()
            if message is not None:
                state.last_heard, state.pinged_at = now, None
                self._dispatch(message, state, now)
            elif now - state.last_heard >= self._keepalive:
                # A silent connection may be dead (a partition sends no RST): make it speak.
                if state.pinged_at is None:
                    state.pinged_at = now
                    await pubsub.ping()
                elif now - state.pinged_at >= self._keepalive:
                    raise redis.ConnectionError("pub/sub connection did not answer a PING")
            if now >= next_idle_check:
                next_idle_check = now + self._idle_resync / 4
                self._resync_idle(now)

    async def _sync_channels(self, pubsub: PubSub, state: _ConnectionState) -> None:
        if not self._changed:
            return
        async with self._sync_lock:
            await self._send_changes(pubsub, state)

    async def _send_changes(self, pubsub: PubSub, state: _ConnectionState) -> None:
        changed, self._changed = self._changed, set()
        channels = {task_id: CHANNEL_PREFIX + task_id for task_id in changed}
        leave = [ch for t, ch in channels.items() if t not in self._watchers and ch in state.sent]
        join = [ch for t, ch in channels.items() if t in self._watchers and ch not in state.sent]
        if leave:
            state.sent.difference_update(leave)
            state.active.difference_update(leave)
            await pubsub.unsubscribe(*leave)
        if join:
            state.sent.update(join)
            state.awaiting.update(join)
            await pubsub.subscribe(*join)

    def _dispatch(self, message: dict[str, Any], state: _ConnectionState, now: float) -> None:
        kind = message["type"]
        raw_channel = message["channel"]
        channel = raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel)
        task_id = channel.removeprefix(CHANNEL_PREFIX)
        if kind == "message":
            watchers = self._watchers.get(task_id)
            if not watchers:
                return
            try:
                task = task_from_dict(json.loads(message["data"]), self._sealer)
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("unreadable event on %s: %r", channel, exc)
                return
            for subscription in watchers:
                subscription.deliver(task, now)
        elif kind == "subscribe":
            # Confirmations come in the order of the SUBSCRIBEs: only the last one counts.
            state.awaiting[channel] -= 1
            if state.awaiting[channel] > 0:
                return
            del state.awaiting[channel]
            if channel not in state.sent:
                return
            state.active.add(channel)
            for subscription in self._watchers.get(task_id, ()):
                if subscription.unconfirmed:
                    subscription.unconfirmed = False
                    subscription.deliver(RESYNC, now)

    def _connection_lost(self, now: float) -> None:
        for watchers in self._watchers.values():
            for subscription in watchers:
                subscription.unconfirmed = True
                subscription.deliver(RESYNC, now)

    def _resync_idle(self, now: float) -> None:
        for watchers in self._watchers.values():
            for subscription in watchers:
                if now - subscription.last_news >= self._idle_resync:
                    subscription.deliver(RESYNC, now)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _close_quietly(pubsub: PubSub, client: redis.asyncio.Redis) -> None:
    try:
        await pubsub.aclose()
        await client.aclose()
    except (redis.RedisError, OSError) as exc:
        logger.debug("closing the pub/sub connection: %r", exc)
