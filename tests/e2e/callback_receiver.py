"""A real HTTP receiver of callbacks on a loopback port, scripted per request."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from imageeditor.sdk import parse_webhook
from imageeditor.v1 import callback_pb2


@dataclass(frozen=True)
class Answer:
    status: int = 204
    headers: dict[str, str] = field(default_factory=dict)
    hold_seconds: float = 0.0  # wait this long before answering


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]  # names lowercased
    body: bytes
    at: float

    @property
    def events(self) -> list[callback_pb2.CallbackEvent]:
        return parse_webhook(self.body)


class Receiver:
    """Answers each POST with the next scripted Answer (then 204s) and keeps what it got."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.script: deque[Answer] = deque()
        self.received: list[Received] = []
        self._lock = threading.Condition()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/imageeditor"

    @property
    def allowlist_entry(self) -> str:
        """Allows this receiver's port only: other loopback ports stay refused."""
        return f"127.0.0.1:{self.port}"

    def answer(self, *answers: Answer) -> Receiver:
        self.script.extend(answers)
        return self

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(self.path, headers, body, time.time()))
                    answer = receiver.script.popleft() if receiver.script else Answer()
                    receiver._lock.notify_all()
                if answer.hold_seconds:
                    time.sleep(answer.hold_seconds)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        """Wait until `count` requests have arrived; all of them so far."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"{len(self.received)} of {count} callback requests after {timeout}s"
                    )
                self._lock.wait(left)
            return list(self.received)

    def events(self) -> list[callback_pb2.CallbackEvent]:
        with self._lock:
            return [e for r in self.received for e in r.events]
