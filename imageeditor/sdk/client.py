"""The synchronous client: one channel, typed errors, resumable watches.

with Client() as client:
    task = client.submit(Path("cat.jpg"), resize=(512, 0), format="webp")
    for update in client.watch(task.id):
        print(update.state, update.progress)
    client.download_result(task.id, "cat.webp")
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Unpack

import grpc

from imageeditor.core.errors import Unavailable
from imageeditor.sdk.channel import auth_metadata, channel_options, new_stub, open_channel
from imageeditor.sdk.credentials import resolve_address, resolve_api_key, resolve_tls
from imageeditor.sdk.errors import translated_rpc_errors
from imageeditor.sdk.requests import (
    BatchItem,
    EditOptions,
    ImageSource,
    build_batch_request,
    build_list_request,
    build_submit_request,
    new_request_id,
)
from imageeditor.sdk.results import ResultFile, ResultReceiver
from imageeditor.sdk.watching import BatchWatchCursor, Cursor, T, WatchCursor, is_terminal
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import task_pb2


class Client:
    """A blocking client of ImageEditorService; every method raises `ImageEditorError`s.

    `address` defaults to $IMAGEEDITOR_ADDRESS or 127.0.0.1:50051, `api_key` to
    $IMAGEEDITOR_API_KEY or the embedded development key, `tls` to the environment
    (imageeditor.sdk.credentials.resolve_tls); `ca_file` (a PEM bundle) turns TLS on and checks
    the server against it. Pass `channel` to use your own (interceptors); the client then
    leaves closing it to you. `TaskState(task.state).name` and the other enums of
    imageeditor.sdk.enums name the numbers a Task carries.
    """

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | None = 30.0,
        channel: grpc.Channel | None = None,
        tls: bool | None = None,
        ca_file: str | Path | None = None,
    ) -> None:
        self.address = resolve_address(address)
        self.timeout = timeout
        self._metadata = auth_metadata(resolve_api_key(api_key))
        self._owns_channel = channel is None
        if channel is None:
            credentials = resolve_tls(tls, ca_file=ca_file)
            channel = open_channel(self.address, credentials, channel_options())
        self._channel = channel
        self._stub = new_stub(self._channel)

    def submit(
        self,
        image: ImageSource,
        *,
        callback_url: str = "",
        request_id: str = "",
        **options: Unpack[EditOptions],
    ) -> task_pb2.Task:
        """Submit one job: `image` and the edit `options` as `build_submit_request` takes
        them; a request id is made when none is given (a retry returns the same task).
        Returns the task QUEUED."""
        request = build_submit_request(
            image,
            callback_url=callback_url,
            request_id=request_id or new_request_id(),
            **options,
        )
        response: pb.SubmitTaskResponse = self._unary(self._stub.SubmitTask, request)
        return response.task

    def batch_submit(
        self,
        items: Sequence[BatchItem],
        *,
        callback_url: str = "",
        request_id: str = "",
        **options: Unpack[EditOptions],
    ) -> pb.BatchSubmitResponse:
        """Submit many jobs at once: images (bytes, http(s) URLs, Paths) sharing the edit
        `options` of `submit`, or SubmitTaskRequests of their own; each result holds its
        task or its own error, in order."""
        request = build_batch_request(
            items,
            callback_url=callback_url,
            request_id=request_id or new_request_id(),
            **options,
        )
        response: pb.BatchSubmitResponse = self._unary(self._stub.BatchSubmit, request)
        return response

    def get_status(self, task_id: str) -> task_pb2.Task:
        """The task as it is now."""
        request = pb.GetStatusRequest(task_id=task_id)
        response: pb.GetStatusResponse = self._unary(self._stub.GetStatus, request)
        return response.task

    def cancel(self, task_id: str) -> task_pb2.Task:
        """Ask for the task to be cancelled; returns it as the cancel left it."""
        request = pb.CancelTaskRequest(task_id=task_id)
        response: pb.CancelTaskResponse = self._unary(self._stub.CancelTask, request)
        return response.task

    def list_tasks(
        self,
        *,
        states: Iterable[str | int] = (),
        batch_id: str = "",
        labels: Mapping[str, str] | None = None,
        page_size: int = 50,
    ) -> Iterator[task_pb2.Task]:
        """The caller's tasks, newest first, fetching further pages as the iteration needs."""
        request = build_list_request(
            states=states, batch_id=batch_id, labels=labels, page_size=page_size
        )
        while True:
            response: pb.ListTasksResponse = self._unary(self._stub.ListTasks, request)
            yield from response.tasks
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    def watch(
        self, task_id: str, *, after_version: int = 0, reconnect: bool = True
    ) -> Iterator[task_pb2.Task]:
        """Each transition of the task after `after_version` (0: starting with its current
        state), until a terminal state. A dropped stream is resumed from the last version
        seen, so every version arrives once; `reconnect=False` raises instead."""
        cursor = WatchCursor(task_id, after_version)
        yield from self._follow(self._stub.WatchTask, cursor, reconnect, self._seen_terminal)

    def watch_batch(
        self, batch_id: str, *, resume_token: str = "", reconnect: bool = True
    ) -> Iterator[pb.WatchBatchResponse]:
        """Every item of a batch on one stream: each item's current state (or, after
        `resume_token`, every transition since), then each transition as it happens, every
        message with the batch's progress; ends after the message whose progress is complete.
        A dropped stream resumes from the last message's token, so nothing is lost or
        repeated; `reconnect=False` raises instead."""
        cursor = BatchWatchCursor(batch_id, resume_token)
        yield from self._follow(self._stub.WatchBatch, cursor, reconnect, lambda _: False)

    def _follow(
        self,
        method: Callable[..., Any],
        cursor: Cursor[T],
        reconnect: bool,
        ended: Callable[[Any], bool],
    ) -> Iterator[T]:
        """What `cursor` takes of a server stream, reopened from where it left off when it
        drops (UNAVAILABLE), or when it ends cleanly before `cursor` is done unless `ended`
        says there is nothing left to send; `reconnect=False` raises or returns instead."""
        while not cursor.done:
            cause: Unavailable | None = None
            stream = method(cursor.request(), metadata=self._metadata)
            try:
                with translated_rpc_errors():
                    for response in stream:
                        item = cursor.take(response)
                        if item is not None:
                            yield item
                        if cursor.done:
                            return
            except Unavailable as error:
                if not reconnect:
                    raise
                cause = error
            finally:
                stream.cancel()
            if not reconnect or (cause is None and ended(cursor)):
                return
            time.sleep(cursor.reconnect_delay(cause))

    def get_result(self, task_id: str) -> tuple[task_pb2.ResultInfo, bytes]:
        """The result of a succeeded task: its ResultInfo and its bytes (checked)."""
        receiver = ResultReceiver(task_id)
        request = pb.GetResultRequest(task_id=task_id)
        with translated_rpc_errors():
            stream = self._stub.GetResult(request, timeout=self.timeout, metadata=self._metadata)
            data = b"".join(receiver.feed(response) for response in stream)
        return receiver.finish(), data

    def download_result(self, task_id: str, path: str | Path) -> task_pb2.ResultInfo:
        """Stream the result of a succeeded task into `path`, checked against its size and
        SHA-256. The file appears only once complete: a download that fails part-way leaves
        nothing behind, and an existing file at `path` as it was."""
        receiver = ResultReceiver(task_id)
        request = pb.GetResultRequest(task_id=task_id)
        with ResultFile(path) as out, translated_rpc_errors():
            stream = self._stub.GetResult(request, timeout=self.timeout, metadata=self._metadata)
            for response in stream:
                out.write(receiver.feed(response))
            return receiver.finish()

    def close(self) -> None:
        """Close the channel (unless it was passed in)."""
        if self._owns_channel:
            self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _unary(self, method: Callable[..., Any], request: Any) -> Any:
        with translated_rpc_errors():
            return method(request, timeout=self.timeout, metadata=self._metadata)

    def _seen_terminal(self, cursor: WatchCursor) -> bool:
        # A stream that ends cleanly without a terminal state: either the server went away
        # (reconnect), or the watch began at or after the terminal version, so there is
        # nothing left to send. Only the current state tells the two apart.
        try:
            task = self.get_status(cursor.task_id)
        except Unavailable:
            return False
        return is_terminal(task) and task.version <= cursor.last_version
