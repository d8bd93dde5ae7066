"""Result reuse by content on a real server: an identical second job is SUCCEEDED in its
SubmitTask answer with the same bytes; identical jobs submitted together run once; reuse stays
within one user unless shared, ends with the retention, and never hands out a deleted blob."""

from __future__ import annotations

from pathlib import Path

import pytest

from imageeditor.core.task import TaskState
from imageeditor.sdk import Client, grayscale_operation, rotate_operation
from imageeditor.v1 import task_pb2
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes

pytestmark = pytest.mark.e2e

SUCCEEDED = task_pb2.TASK_STATE_SUCCEEDED
IMAGE = jpeg_bytes(640, 480)


def finished(client: Client, task_id: str) -> task_pb2.Task:
    return list(client.watch(task_id))[-1]


def test_an_identical_job_is_answered_with_the_stored_result(server: ServerProcess) -> None:
    other_key = server.cli("keys", "create", "other", check=True).stdout.splitlines()[0]
    with Client(server.address, server.api_key) as client:
        first = finished(client, client.submit(IMAGE, resize=(200, 150), format="webp").id)
        again = client.submit(IMAGE, resize=(200, 150), format="webp", labels={"try": "2"})
        other_output = client.submit(IMAGE, resize=(200, 150), format="png")
        _, first_bytes = client.get_result(first.id)
        _, again_bytes = client.get_result(again.id)
        assert finished(client, other_output.id).reused_from == ""
    with Client(server.address, other_key) as other:  # per user by default
        theirs = other.submit(IMAGE, resize=(200, 150), format="webp")
        assert theirs.reused_from == "" and finished(other, theirs.id).state == SUCCEEDED

    assert first.state == SUCCEEDED and first.reused_from == ""
    # SUCCEEDED in the SubmitTask answer itself: no worker ever saw it.
    assert again.state == SUCCEEDED and again.reused_from == first.id
    assert again.attempts == 0 and not again.stage_timings
    assert again_bytes == first_bytes and again.result.sha256 == first.result.sha256
    assert again.labels["try"] == "2"  # its own task: its own labels, id and result key
    events = server.task_store().list_events(again.id, 0)
    assert [e.state for e in events] == [TaskState.QUEUED, TaskState.SUCCEEDED]


def test_identical_jobs_submitted_together_run_once(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    # No workers at first: the jobs wait, identical, in the queue.
    server = make_server(tmp_path / "data", free_port(), workers=0).start()
    with Client(server.address, server.api_key) as client:
        leader = client.submit(IMAGE, resize=(120, 90), format="png")
        follower = client.submit(IMAGE, resize=(120, 90), format="png")
        batch = client.batch_submit([IMAGE, IMAGE], resize=(120, 90), format="png")
    assert leader.reused_from == ""
    assert follower.reused_from == leader.id
    assert [r.task.reused_from for r in batch.results] == [leader.id, leader.id]
    server.stop()
    server.start(workers=2)
    ids = [leader.id, follower.id, *(r.task.id for r in batch.results)]
    with Client(server.address, server.api_key) as client:
        ends = [finished(client, task_id) for task_id in ids]
        results = [client.get_result(task_id)[1] for task_id in ids]
    assert {t.state for t in ends} == {SUCCEEDED}
    assert [t.attempts for t in ends] == [1, 0, 0, 0]  # one run for all four
    assert [t.reused_from for t in ends[1:]] == [leader.id] * 3
    assert len(set(results)) == 1
    store = server.task_store()
    for task_id in ids[1:]:
        assert TaskState.RUNNING not in {e.state for e in store.list_events(task_id, 0)}


def test_a_waiting_job_runs_itself_when_the_one_it_waits_for_is_cancelled(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "data", free_port(), workers=0).start()
    with Client(server.address, server.api_key) as client:
        leader = client.submit(IMAGE, resize=(64, 48))
        follower = client.submit(IMAGE, resize=(64, 48))
        client.cancel(leader.id)
    server.stop()
    server.start(workers=1)
    with Client(server.address, server.api_key) as client:
        end = finished(client, follower.id)
    assert follower.reused_from == leader.id
    assert end.state == SUCCEEDED and end.reused_from == "" and end.attempts == 1


def test_a_deleted_result_is_never_handed_out(server: ServerProcess) -> None:
    with Client(server.address, server.api_key) as client:
        first = finished(client, client.submit(IMAGE, operations=[rotate_operation(90)]).id)
        stored = server.task_store().get_task(first.id)
        assert stored is not None and stored.result is not None
        (server.data_dir / "blobs" / stored.result.key).unlink()
        again = client.submit(IMAGE, operations=[rotate_operation(90)])
        end = finished(client, again.id)
        _, data = client.get_result(again.id)
    assert again.reused_from == "" and end.attempts == 1 and end.state == SUCCEEDED
    assert end.result.sha256 == first.result.sha256 and len(data) == end.result.size_bytes


def test_the_retention_and_the_sharing_setting(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    expired = make_server(
        tmp_path / "expired", free_port(), IMAGEEDITOR_RESULT_REUSE_SECONDS="0"
    ).start()
    with Client(expired.address, expired.api_key) as client:
        finished(client, client.submit(IMAGE, operations=[grayscale_operation()]).id)
        assert client.submit(IMAGE, operations=[grayscale_operation()]).reused_from == ""
    expired.stop()

    shared = make_server(
        tmp_path / "shared", free_port(), IMAGEEDITOR_RESULT_REUSE="shared"
    ).start()
    other_key = shared.cli("keys", "create", "other", check=True).stdout.splitlines()[0]
    with Client(shared.address, shared.api_key) as client:
        first = finished(client, client.submit(IMAGE, operations=[grayscale_operation()]).id)
    with Client(shared.address, other_key) as other:
        theirs = other.submit(IMAGE, operations=[grayscale_operation()])
    assert theirs.state == SUCCEEDED and theirs.reused_from == first.id
