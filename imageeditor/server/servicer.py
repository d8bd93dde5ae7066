"""The ImageEditorService servicer: authenticate, validate, translate, call the service layer.

Nothing here decides anything about tasks, and nothing blocks the event loop: store and blob
calls run in threads, validation and large conversions in the bounded CPU pool
(imageeditor.server.offload), so the loop keeps serving other calls and streams whatever a request
holds.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import grpc

from imageeditor.core.adapters.blobs.factory import ResultLinks
from imageeditor.core.api.convert import (
    batch_update_to_proto,
    error_to_status,
    result_to_proto,
    task_to_proto,
)
from imageeditor.core.callbacks import Delivery
from imageeditor.core.errors import ImageEditorError
from imageeditor.core.ports import DownloadLinks
from imageeditor.core.service import TaskService
from imageeditor.core.settings import Settings
from imageeditor.core.task import Task
from imageeditor.server.auth import Authenticator
from imageeditor.server.group_commit import GroupCommit
from imageeditor.server.offload import INLINE_BYTES, Offload
from imageeditor.server.quotas import StreamQuota
from imageeditor.server.rpc import peer_host, rpc_method
from imageeditor.server.validation import (
    request_digest,
    validate_batch,
    validate_batch_id,
    validate_list,
    validate_submit,
    validate_task_id,
)
from imageeditor.server.watch import TaskWatcher
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc
from imageeditor.v1 import task_pb2

Context = grpc.aio.ServicerContext[Any, Any]


class ImageEditorServicer(pb_grpc.ImageEditorServiceServicer):
    def __init__(
        self,
        service: TaskService,
        watcher: TaskWatcher,
        auth: Authenticator,
        settings: Settings,
        *,
        links: DownloadLinks | None = None,
        offload: Offload | None = None,
        streams: StreamQuota | None = None,
    ) -> None:
        self._service = service
        self._watcher = watcher
        self._auth = auth
        self._settings = settings
        self._links = links or ResultLinks()
        self._offload = offload or Offload()
        self._streams = streams or StreamQuota(settings.max_watch_streams_per_user)
        # Concurrent submits share a transaction and round trips (imageeditor.server.group_commit).
        self._submits = GroupCommit(service.submit_many)

    async def _user(self, context: Context) -> str:
        """The caller's user id: from the key cache on the loop, else from the store."""
        metadata = context.invocation_metadata()
        user = self._auth.cached_user(metadata)
        if user is not None:
            return user
        peer = peer_host(context.peer() or "")
        return await asyncio.to_thread(self._auth.authenticate, metadata, peer)

    def _task_proto(
        self, task: Task, callbacks: Mapping[str, Delivery] | None = None
    ) -> task_pb2.Task:
        # Presigning signs locally, without a call to the store: cheap enough for every message.
        return task_to_proto(task, self._links.download_url(task.result), callbacks)

    @rpc_method
    async def SubmitTask(
        self, request: pb.SubmitTaskRequest, context: Context
    ) -> pb.SubmitTaskResponse:
        user = await self._user(context)
        size = _request_size(request)
        new = await self._offload.run_sized(size, validate_submit, request, self._settings)
        task = await self._submits((user, replace(new, context=contextvars.copy_context())))
        return pb.SubmitTaskResponse(task=self._task_proto(task))

    @rpc_method
    async def BatchSubmit(
        self, request: pb.BatchSubmitRequest, context: Context
    ) -> pb.BatchSubmitResponse:
        user = await self._user(context)
        items = await self._offload.run(validate_batch, request, self._settings)
        digest = await self._offload.run(request_digest, request)
        batch, outcomes = await asyncio.to_thread(
            self._service.batch_submit,
            user,
            items,
            callback_url=request.callback_url,
            request_id=request.request_id,
            request_digest=digest,
        )
        return await self._offload.run(self._batch_response, batch.id, outcomes)

    def _batch_response(
        self, batch_id: str, outcomes: list[Task | ImageEditorError]
    ) -> pb.BatchSubmitResponse:
        results = [
            pb.BatchSubmitResult(error=error_to_status(o))
            if isinstance(o, ImageEditorError)
            else pb.BatchSubmitResult(task=self._task_proto(o))
            for o in outcomes
        ]
        return pb.BatchSubmitResponse(batch_id=batch_id, results=results)

    @rpc_method
    async def GetStatus(
        self, request: pb.GetStatusRequest, context: Context
    ) -> pb.GetStatusResponse:
        user = await self._user(context)
        task_id = validate_task_id(request.task_id)

        def status() -> tuple[Task, dict[str, Delivery]]:  # one hop to a thread, not two
            task = self._service.get(user, task_id)
            return task, self._service.callbacks_of([task])

        task, callbacks = await asyncio.to_thread(status)
        return pb.GetStatusResponse(task=self._task_proto(task, callbacks))

    @rpc_method
    async def WatchTask(
        self, request: pb.WatchTaskRequest, context: Context
    ) -> AsyncIterator[pb.WatchTaskResponse]:
        user = await self._user(context)
        task_id = validate_task_id(request.task_id)
        with self._streams.hold(user):
            async for task in self._watcher.watch(user, task_id, request.after_version):
                yield pb.WatchTaskResponse(task=self._task_proto(task))

    @rpc_method
    async def WatchBatch(
        self, request: pb.WatchBatchRequest, context: Context
    ) -> AsyncIterator[pb.WatchBatchResponse]:
        user = await self._user(context)
        batch_id = validate_batch_id(request.batch_id)
        with self._streams.hold(user):
            updates = self._watcher.watch_batch(user, batch_id, request.resume_token)
            async for update in updates:
                yield batch_update_to_proto(
                    update, self._task_proto(update.task) if update.task else None
                )

    @rpc_method
    async def CancelTask(
        self, request: pb.CancelTaskRequest, context: Context
    ) -> pb.CancelTaskResponse:
        user = await self._user(context)
        task_id = validate_task_id(request.task_id)
        task = await asyncio.to_thread(self._service.cancel, user, task_id)
        return pb.CancelTaskResponse(task=self._task_proto(task))

    @rpc_method
    async def ListTasks(
        self, request: pb.ListTasksRequest, context: Context
    ) -> pb.ListTasksResponse:
        user = await self._user(context)
        query = await self._offload.run(validate_list, request, user)

        def page() -> tuple[list[Task], str, dict[str, Delivery]]:  # one hop, not two
            tasks, token = self._service.list_tasks(query, request.page_size, request.page_token)
            return tasks, token, self._service.callbacks_of(tasks)

        tasks, token, callbacks = await asyncio.to_thread(page)
        return pb.ListTasksResponse(
            tasks=[self._task_proto(t, callbacks) for t in tasks], next_page_token=token
        )

    @rpc_method
    async def GetResult(
        self, request: pb.GetResultRequest, context: Context
    ) -> AsyncIterator[pb.GetResultResponse]:
        user = await self._user(context)
        task_id = validate_task_id(request.task_id)
        info, chunks = await asyncio.to_thread(self._service.result, user, task_id)
        first = True
        while (chunk := await asyncio.to_thread(next, chunks, b"")) or first:
            message = pb.GetResultResponse(chunk=chunk)
            if first:
                message.info.CopyFrom(result_to_proto(info, self._links.download_url(info)))
                first = False
            yield message


def _request_size(request: pb.SubmitTaskRequest) -> int:
    """The request's size, to tell whether it is small enough to validate on the loop.
    ByteSize() serialises the whole message (12 ms for a 24 MB image, on the loop): an
    inline image too large on its own is told by its length first (1 ms at 24 MB)."""
    image = len(request.image_data)
    return image if image > INLINE_BYTES else request.ByteSize()
