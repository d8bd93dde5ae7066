"""WatchBatch on a real server: one stream for a whole batch, resumable without a gap or a
repeat, ending with the complete aggregate; through the sync and async SDK."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import grpc
import pytest

from imageeditor.sdk import AsyncClient, Client, InvalidArgument, NotFound
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc
from imageeditor.v1 import task_pb2
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes

pytestmark = pytest.mark.e2e

SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
CANCELLED = task_pb2.TASK_STATE_CANCELLED


def good() -> pb.SubmitTaskRequest:
    return pb.SubmitTaskRequest(image_data=jpeg_bytes(), output={"format": 2})


BAD = pb.SubmitTaskRequest(image_data=b"not an image at all", style_prompt="oil")


def versions_by_item(updates: Sequence[pb.WatchBatchResponse]) -> dict[int, list[int]]:
    seen: dict[int, list[int]] = defaultdict(list)
    for update in updates:
        if update.HasField("task"):
            seen[update.index].append(update.task.version)
    return dict(seen)


def check_counts(update: pb.WatchBatchResponse) -> None:
    p = update.progress
    counted = p.queued + p.running + p.succeeded + p.failed + p.cancelled
    assert counted == p.total - p.refused, p


def test_one_stream_follows_every_item_to_the_end(server: ServerProcess) -> None:
    with Client(server.address, server.api_key) as client:
        batch = client.batch_submit([good(), BAD, good(), good()])
        updates = list(client.watch_batch(batch.batch_id))
        ids = {i: r.task.id for i, r in enumerate(batch.results) if r.HasField("task")}
        log = {i: server.task_store().list_events(task_id, 0) for i, task_id in ids.items()}
    for update in updates:
        check_counts(update)
        if update.HasField("task"):
            assert update.task.id == ids[update.index]  # the index is the request position
    final = updates[-1].progress
    assert (final.total, final.refused, final.succeeded, final.complete) == (4, 1, 3, True)
    assert final.fraction_done == pytest.approx(1.0)
    assert not any(u.progress.complete for u in updates[:-1])
    # Each item from the version the stream began with to its last, once each, in order.
    for index, versions in versions_by_item(updates).items():
        assert versions == list(range(versions[0], versions[-1] + 1))
        assert versions[-1] == log[index][-1].version
    assert set(versions_by_item(updates)) == {0, 2, 3}


def test_a_resumed_stream_goes_on_after_its_token(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    # No workers: the items move only when cancelled, so every step is the test's own.
    server = make_server(tmp_path / "data", free_port(), workers=0).start()
    with Client(server.address, server.api_key) as client:
        batch = client.batch_submit([good(), BAD, good()])
        first_two: list[pb.WatchBatchResponse] = []
        rest: list[pb.WatchBatchResponse] = []
        started = threading.Event()

        def watch() -> None:
            for update in client.watch_batch(batch.batch_id):
                (first_two if len(first_two) < 2 else rest).append(update)
                if len(first_two) == 2:
                    started.set()

        watcher = threading.Thread(target=watch)
        watcher.start()
        assert started.wait(10)
        token = first_two[-1].resume_token  # both items seen QUEUED
        for result in batch.results:
            if result.HasField("task"):
                client.cancel(result.task.id)
        watcher.join(10)
        resumed = list(client.watch_batch(batch.batch_id, resume_token=token))
        # After the first message only: the item the stream had not reached starts with its
        # current state, as on a new stream.
        early = first_two[0].resume_token
        from_first = list(client.watch_batch(batch.batch_id, resume_token=early))
        at_the_end = list(client.watch_batch(batch.batch_id, resume_token=rest[-1].resume_token))

    assert [u.task.state for u in first_two] == [task_pb2.TASK_STATE_QUEUED] * 2
    assert first_two[-1].progress.queued == 2 and not first_two[-1].progress.complete
    assert [(u.index, u.task.state) for u in rest] == [(0, CANCELLED), (2, CANCELLED)]
    assert rest[-1].progress.cancelled == 2 and rest[-1].progress.complete
    # What followed the token, exactly: no repeat of the QUEUED states, nothing missing (each
    # item in order; across items, in the order they happened).
    resumed_seen = sorted((u.index, u.task.version) for u in resumed)
    assert resumed_seen == sorted((u.index, u.task.version) for u in rest)
    assert resumed[0].progress.queued == 1 and resumed[0].progress.cancelled == 1
    assert sorted((u.index, u.task.version) for u in from_first) == sorted(
        (u.index, u.task.version) for u in rest
    )
    # Resumed after the end: the aggregate alone, complete.
    assert len(at_the_end) == 1 and not at_the_end[0].HasField("task")
    assert at_the_end[0].progress.complete and at_the_end[0].progress.cancelled == 2


def test_bad_tokens_unknown_and_foreign_batches_are_refused(server: ServerProcess) -> None:
    other_key = server.cli("keys", "create", "mallory", check=True).stdout.splitlines()[0]
    with Client(server.address, server.api_key) as client:
        batch = client.batch_submit([good()])
        other = client.batch_submit([good(), good()])
        token = list(client.watch_batch(other.batch_id))[-1].resume_token
        with pytest.raises(InvalidArgument) as foreign_token:
            list(client.watch_batch(batch.batch_id, resume_token=token))
        with pytest.raises(InvalidArgument) as garbage:
            list(client.watch_batch(batch.batch_id, resume_token="%%%"))
        with pytest.raises(InvalidArgument) as malformed_id:
            list(client.watch_batch("not-a-batch"))
        with pytest.raises(NotFound):
            list(client.watch_batch("00000000-0000-0000-0000-000000000000"))
    with Client(server.address, other_key) as mallory, pytest.raises(NotFound):
        list(mallory.watch_batch(batch.batch_id))
    assert foreign_token.value.reason == garbage.value.reason == "INVALID_RESUME_TOKEN"
    assert list(malformed_id.value.field_violations) == ["batch_id"]


def test_a_batch_of_refused_items_only_is_complete_at_once(server: ServerProcess) -> None:
    with Client(server.address, server.api_key) as client:
        batch = client.batch_submit([BAD, BAD])
        updates = list(client.watch_batch(batch.batch_id))
    assert len(updates) == 1 and not updates[0].HasField("task")
    assert (updates[0].progress.total, updates[0].progress.refused) == (2, 2)
    assert updates[0].progress.complete


def test_the_async_client_and_a_raw_stream_broken_midway(server: ServerProcess) -> None:
    async def watch_async() -> list[pb.WatchBatchResponse]:
        async with AsyncClient(server.address, server.api_key) as client:
            batch = await client.batch_submit([good(), good(), good()])
            return [u async for u in client.watch_batch(batch.batch_id)]

    updates = asyncio.run(watch_async())
    assert updates[-1].progress.succeeded == 3 and updates[-1].progress.complete

    metadata = [("authorization", f"Bearer {server.api_key}")]
    with Client(server.address, server.api_key) as client:
        batch = client.batch_submit([good(), good()])
    seen: list[pb.WatchBatchResponse] = []
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.ImageEditorServiceStub(channel)
        first = stub.WatchBatch(pb.WatchBatchRequest(batch_id=batch.batch_id), metadata=metadata)
        for message in first:
            seen.append(message)
            if len(seen) == 3 or message.progress.complete:
                first.cancel()
                break
        if not seen[-1].progress.complete:
            request = pb.WatchBatchRequest(
                batch_id=batch.batch_id, resume_token=seen[-1].resume_token
            )
            seen.extend(stub.WatchBatch(request, metadata=metadata))
    assert seen[-1].progress.complete and seen[-1].progress.succeeded == 2
    for versions in versions_by_item(seen).values():
        assert versions == list(range(versions[0], versions[-1] + 1))
