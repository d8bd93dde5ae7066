"""Reassembling a GetResult stream: the first message carries ResultInfo, then raw chunks.

The size and SHA-256 in ResultInfo are checked against the bytes received, so a truncated or
corrupted download fails loudly instead of leaving a broken image behind; a download to a
file goes to a temporary file beside it and takes its name only once it is complete.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from types import TracebackType

from imageeditor.core.errors import Internal
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import task_pb2


class ResultReceiver:
    """Feed it each GetResultResponse; it hands back the chunks and checks the whole."""

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self.info: task_pb2.ResultInfo | None = None
        self._hash = hashlib.sha256()
        self._size = 0

    def feed(self, response: pb.GetResultResponse) -> bytes:
        """Take one message; returns its chunk of result bytes."""
        if response.HasField("info") and self.info is None:
            self.info = response.info
        self._hash.update(response.chunk)
        self._size += len(response.chunk)
        return response.chunk

    def finish(self) -> task_pb2.ResultInfo:
        """The ResultInfo, once the bytes received are checked against it."""
        if self.info is None:
            raise Internal(f"the result of task {self.task_id} came without its metadata")
        if self.info.size_bytes and self._size != self.info.size_bytes:
            raise Internal(
                f"the result of task {self.task_id} is {self._size} bytes,"
                f" expected {self.info.size_bytes}"
            )
        if self.info.sha256 and self._hash.hexdigest() != self.info.sha256.lower():
            raise Internal(f"the result of task {self.task_id} failed its SHA-256 check")
        return self.info


class ResultFile:
    """A file that appears at `path` whole or not at all: chunks go to a temporary file in
    the same folder, which replaces `path` when the `with` block ends normally and is
    removed when it ends with an error (an old file at `path` then stays as it was).

    with ResultFile(path) as out:
        for chunk in chunks:
            out.write(chunk)
        receiver.finish()  # raising here leaves nothing behind
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        # A name of its own: two downloads to one path never write into the same file.
        self.partial = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.part")
        self._file = self.partial.open("xb")

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def __enter__(self) -> ResultFile:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._file.close()
        if exc_type is None:
            self.partial.replace(self.path)
        else:
            self.partial.unlink(missing_ok=True)
