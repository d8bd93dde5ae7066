"""Embedded mode's callback sender: its own threads, the store's outbox for a queue.

It is the CallbackNotifier of embedded mode: a terminal transition wakes it, it waits out
the aggregation window, then sends whatever is due, each URL on a thread of its own, so a
slow or dead receiver holds up neither image work (other threads) nor other receivers. It
also looks at the outbox every POLL_SECONDS and wakes itself when a retry it scheduled falls
due, so nothing depends on a wake-up arriving. At start it drops every lease: in a single
process no sender can be alive to hold one, so what a killed process was posting is due again
at once.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor

from imageeditor.core.ports import DeliveryStore
from imageeditor.core.settings import Settings
from imageeditor.core.task import utcnow
from imageeditor.core.urls import redact_url
from imageeditor.workers.callback_sender import CallbackSender

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
TARGETS_PER_PASS = 100


class EmbeddedCallbackWorker:
    def __init__(
        self,
        sender: CallbackSender,
        deliveries: DeliveryStore,
        settings: Settings,
        *,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._sender = sender
        self._deliveries = deliveries
        self._window = settings.callback_window_seconds
        self._poll = poll_seconds
        self._threads = max(1, settings.callback_workers)
        self._executor: ThreadPoolExecutor | None = None
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._in_flight: set[tuple[str, str]] = set()
        self._timers: set[threading.Timer] = set()
        self._loop: threading.Thread | None = None

    def notify(self, user_id: str, url: str) -> None:
        """The CallbackNotifier port: something for `url` has become due."""
        self._wake.set()

    def start(self) -> None:
        released = self._deliveries.release_claims()
        if released:
            log.info("callbacks: %d interrupted delivery(ies) are due again", released)
        self._executor = ThreadPoolExecutor(self._threads, thread_name_prefix="callback-sender")
        self._loop = threading.Thread(target=self._run, name="callback-loop", daemon=True)
        self._loop.start()

    def stop(self, timeout: float) -> None:
        """Stop taking work; let requests under way finish (each is bounded by its timeout).
        What is left is PENDING in the store and goes out after the next start."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            for timer in self._timers:
                timer.cancel()
        if self._loop is not None:
            self._loop.join(timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            if self._wake.wait(self._poll):
                self._wake.clear()
                self._stopping.wait(self._window)  # gather what finishes together
            if self._stopping.is_set():
                return
            try:
                targets = self._deliveries.due_targets(utcnow(), TARGETS_PER_PASS)
            except Exception:  # the store is away, say: look again next time
                log.exception("callbacks: could not read the outbox")
                continue
            for target in targets:
                self._submit(target)

    def _submit(self, target: tuple[str, str]) -> None:
        with self._lock:
            if target in self._in_flight or self._executor is None:
                return
            self._in_flight.add(target)
        try:
            self._executor.submit(self._deliver, target)
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                self._in_flight.discard(target)

    def _deliver(self, target: tuple[str, str]) -> None:
        try:
            report = self._sender.deliver_due(*target)
        except Exception:
            log.exception("callbacks for %s failed; they stay due", redact_url(target[1]))
            return
        finally:
            with self._lock:
                self._in_flight.discard(target)
        if report.next_due is not None:
            self._wake_at((report.next_due - utcnow()).total_seconds())

    def _wake_at(self, delay: float) -> None:
        """Look at the outbox again in `delay` seconds (sooner than the next poll)."""
        if delay >= self._poll:
            return

        def fire() -> None:
            with self._lock:
                self._timers.discard(timer)
            self._wake.set()

        timer = threading.Timer(max(delay, 0.0), fire)
        timer.daemon = True
        with self._lock:
            if self._stopping.is_set():
                return
            self._timers.add(timer)
        timer.start()
