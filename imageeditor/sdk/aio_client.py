"""The asyncio client: the same methods as `Client`, as coroutines and async iterators.

async with AsyncClient() as client:
    task = await client.submit("https://example.com/cat.jpg", format="png")
    async for update in client.watch(task.id):
        print(update.state, update.progress)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Unpack

import grpc

from imageeditor.core.errors import Unavailable
from imageeditor.sdk.channel import auth_metadata, channel_options, new_stub
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


class AsyncClient:
    """An asyncio client of ImageEditorService (grpc.aio); see `Client` for the defaults.

    Create it inside the event loop that uses it: a grpc.aio channel belongs to one loop.
    """

    def __init__(
        self,
        address: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | None = 30.0,
        channel: grpc.aio.Channel | None = None,
        tls: bool | None = None,
        ca_file: str | Path | None = None,
    ) -> None:
        self.address = resolve_address(address)
        self.timeout = timeout
        self._metadata = auth_metadata(resolve_api_key(api_key))
        self._owns_channel = channel is None
        if channel is None:
            credentials = resolve_tls(tls, ca_file=ca_file)
            options = channel_options()
            channel = (
                grpc.aio.secure_channel(self.address, credentials, options=options)
                if credentials is not None
                else grpc.aio.insecure_channel(self.address, options=options)
            )
        self._channel = channel
        self._stub = new_stub(self._channel)

    async def submit(
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
        response: pb.SubmitTaskResponse = await self._unary(self._stub.SubmitTask, request)
        return response.task

    async def batch_submit(
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
        response: pb.BatchSubmitResponse = await self._unary(self._stub.BatchSubmit, request)
        return response

    async def get_status(self, task_id: str) -> task_pb2.Task:
        """The task as it is now."""
        request = pb.GetStatusRequest(task_id=task_id)
        response: pb.GetStatusResponse = await self._unary(self._stub.GetStatus, request)
        return response.task

    async def cancel(self, task_id: str) -> task_pb2.Task:
        """Ask for the task to be cancelled; returns it as the cancel left it."""
        request = pb.CancelTaskRequest(task_id=task_id)
        response: pb.CancelTaskResponse = await self._unary(self._stub.CancelTask, request)
        return response.task

    async def list_tasks(
        self,
        *,
        states: Iterable[str | int] = (),
        batch_id: str = "",
        labels: Mapping[str, str] | None = None,
        page_size: int = 50,
    ) -> AsyncIterator[task_pb2.Task]:
        """The caller's tasks, newest first, fetching further pages as the iteration needs."""
        request = build_list_request(
            states=states, batch_id=batch_id, labels=labels, page_size=page_size
        )
        while True:
            response: pb.ListTasksResponse = await self._unary(self._stub.ListTasks, request)
            for task in response.tasks:
                yield task
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    async def watch(
        self, task_id: str, *, after_version: int = 0, reconnect: bool = True
    ) -> AsyncIterator[task_pb2.Task]:
        """Each transition after `after_version` until a terminal state, resuming a dropped
        stream from the last version seen (see `Client.watch`)."""
        cursor = WatchCursor(task_id, after_version)
        async for task in self._follow(
            self._stub.WatchTask, cursor, reconnect, self._seen_terminal
        ):
            yield task

    async def watch_batch(
        self, batch_id: str, *, resume_token: str = "", reconnect: bool = True
    ) -> AsyncIterator[pb.WatchBatchResponse]:
        """Every item of a batch on one stream (see `Client.watch_batch`)."""
        cursor = BatchWatchCursor(batch_id, resume_token)
        async for update in self._follow(self._stub.WatchBatch, cursor, reconnect, _never):
            yield update

    async def _follow(
        self,
        method: Callable[..., Any],
        cursor: Cursor[T],
        reconnect: bool,
        ended: Callable[[Any], Awaitable[bool]],
    ) -> AsyncIterator[T]:
        """A resumable stream (see `Client._follow`)."""
        while not cursor.done:
            cause: Unavailable | None = None
            stream = method(cursor.request(), metadata=self._metadata)
            try:
                with translated_rpc_errors():
                    async for response in stream:
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
            if not reconnect or (cause is None and await ended(cursor)):
                return
            await asyncio.sleep(cursor.reconnect_delay(cause))

    async def get_result(self, task_id: str) -> tuple[task_pb2.ResultInfo, bytes]:
        """The result of a succeeded task: its ResultInfo and its bytes (checked)."""
        receiver = ResultReceiver(task_id)
        request = pb.GetResultRequest(task_id=task_id)
        chunks: list[bytes] = []
        with translated_rpc_errors():
            stream = self._stub.GetResult(request, timeout=self.timeout, metadata=self._metadata)
            async for response in stream:
                chunks.append(receiver.feed(response))
        return receiver.finish(), b"".join(chunks)

    async def download_result(self, task_id: str, path: str | Path) -> task_pb2.ResultInfo:
        """Stream the result of a succeeded task into `path` (see `Client.download_result`:
        the same checks; a failed download leaves nothing behind). Writes happen off the
        event loop, one chunk at a time, so a large result is never held in memory."""
        receiver = ResultReceiver(task_id)
        request = pb.GetResultRequest(task_id=task_id)
        with await asyncio.to_thread(ResultFile, path) as out, translated_rpc_errors():
            stream = self._stub.GetResult(request, timeout=self.timeout, metadata=self._metadata)
            async for response in stream:
                await asyncio.to_thread(out.write, receiver.feed(response))
            return receiver.finish()

    async def close(self) -> None:
        """Close the channel (unless it was passed in)."""
        if self._owns_channel:
            await self._channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def _unary(self, method: Callable[..., Any], request: Any) -> Any:
        with translated_rpc_errors():
            return await method(request, timeout=self.timeout, metadata=self._metadata)

    async def _seen_terminal(self, cursor: WatchCursor) -> bool:
        # See Client._seen_terminal: a clean end is either a lost server or nothing left.
        try:
            task = await self.get_status(cursor.task_id)
        except Unavailable:
            return False
        return is_terminal(task) and task.version <= cursor.last_version


async def _never(_: object) -> bool:
    """A batch's stream always ends with its complete message: a clean end before it is the
    server going away."""
    return False
