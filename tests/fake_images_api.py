"""A real HTTP server on loopback that speaks the OpenAI images/edits request shape.

It parses each multipart/form-data request with the standard library's email parser (not
with our encoder's assumptions), checks it the way the real API would, records it, and
answers with the next scripted Reply (default: 200 with RESULT as b64_json). A request of the
wrong shape gets a 400 with an OpenAI-style error naming the problem.
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from PIL import Image

PATH = "/v1/images/edits"
RESULT_SIZE = (40, 30)
RESULT_COLOUR = (13, 200, 77)


def png_bytes(size: tuple[int, int], colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


RESULT = png_bytes(RESULT_SIZE, RESULT_COLOUR)


@dataclass(frozen=True)
class Reply:
    """One scripted answer; `body` None means the b64_json answer carrying RESULT."""

    status: int = 200
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering


@dataclass(frozen=True)
class SeenRequest:
    authorization: str
    fields: dict[str, str]
    image: bytes
    image_filename: str
    image_type: str


class FakeImagesApi:
    """`with FakeImagesApi(api_key=..., model=...) as api:` serves on api.url until the end."""

    def __init__(self, *, api_key: str | None = "sk-test-key", model: str = "") -> None:
        """`api_key` None: expect no Authorization header; `model` "": expect no model part."""
        self.api_key = api_key
        self.model = model
        self.requests: list[SeenRequest] = []  # well-formed requests, in order
        self.problems: list[str] = []  # what was wrong with each malformed one
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{PATH}"

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with `replies`, in order; then with the default."""
        with self._lock:
            self._replies.extend(replies)

    def __enter__(self) -> FakeImagesApi:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self, seen: SeenRequest) -> Reply:
        with self._lock:
            self.requests.append(seen)
            return self._replies.popleft() if self._replies else Reply()

    def _check(self, handler: BaseHTTPRequestHandler, body: bytes) -> SeenRequest | str:
        """The request as seen, or what is wrong with it."""
        if handler.path != PATH:
            return f"unknown path {handler.path}"
        authorization = handler.headers.get("Authorization", "")
        expected = "" if self.api_key is None else f"Bearer {self.api_key}"
        if authorization != expected:
            return "bad or missing Bearer key"
        content_type = handler.headers.get("Content-Type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        if message.get_content_type() != "multipart/form-data":
            return f"not multipart/form-data: {content_type}"
        fields: dict[str, str] = {}
        image: EmailMessage | None = None
        for part in message.iter_parts():
            assert isinstance(part, EmailMessage)
            name = part.get_param("name", header="content-disposition")
            if name == "image":
                image = part
            elif isinstance(name, str):
                payload = part.get_payload(decode=True)
                assert isinstance(payload, bytes)
                fields[name] = payload.decode()
        if image is None:
            return "no image part"
        data = image.get_payload(decode=True)
        assert isinstance(data, bytes)
        try:
            with Image.open(io.BytesIO(data)) as opened:
                if opened.format != "PNG":
                    return f"image is {opened.format}, not PNG"
        except OSError:
            return "image is not an image"
        if not fields.get("prompt"):
            return "no prompt"
        if fields.get("n") != "1":
            return f"n is {fields.get('n')!r}"
        if fields.get("model", "") != self.model:
            return f"model is {fields.get('model')!r}, expected {self.model!r}"
        # OpenAI's gpt-image models refuse response_format; the others must ask for base64.
        expected_format = None if self.model.startswith("gpt-image") else "b64_json"
        if fields.get("response_format") != expected_format:
            return f"Unknown parameter or value: response_format={fields.get('response_format')}"
        return SeenRequest(
            authorization=authorization,
            fields=fields,
            image=data,
            image_filename=image.get_filename() or "",
            image_type=image.get_content_type(),
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                seen = api._check(self, body)
                if isinstance(seen, str):
                    with api._lock:
                        api.problems.append(seen)
                    error = {"error": {"message": seen, "type": "invalid_request_error"}}
                    self._answer(Reply(400, json.dumps(error).encode()))
                    return
                self._answer(api._next_reply(seen))

            def _answer(self, reply: Reply) -> None:
                time.sleep(reply.delay)
                body = reply.body
                if body is None:
                    encoded = base64.b64encode(RESULT).decode()
                    body = json.dumps({"created": 1, "data": [{"b64_json": encoded}]}).encode()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
