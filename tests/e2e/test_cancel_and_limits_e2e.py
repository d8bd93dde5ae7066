"""Long jobs on a real embedded server: a cancel stops one inside an operation, the time limits
hold, and one user's backlog does not hold another user's job."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from PIL import Image

from imageeditor.sdk import Client, InvalidArgument, blur_operation, resize_operation
from imageeditor.v1 import operations_pb2, task_pb2
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes

pytestmark = pytest.mark.e2e


def one_colour_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 200)).save(out, "PNG")
    return out.getvalue()


def wait_for_stage(client: Client, task_id: str, stage: int) -> None:
    for update in client.watch(task_id):
        if update.stage == stage:
            return
    raise AssertionError(f"task {task_id} ended before stage {stage}")


def last(client: Client, task_id: str) -> task_pb2.Task:
    *_, final = client.watch(task_id)
    return final


def test_a_cancel_stops_a_long_operation_within_moments(server: ServerProcess) -> None:
    """20 x blur(250) of a 7000 x 7000 image ran on for 71 s after CancelTask."""
    blurs = [blur_operation(250.0)] * 20
    with Client(server.address, server.api_key) as client:
        task = client.submit(one_colour_png(7000, 7000), operations=blurs)
        wait_for_stage(client, task.id, task_pb2.STAGE_EDIT)
        time.sleep(0.5)  # inside the first blur

        asked = time.monotonic()
        answer = client.cancel(task.id)
        final = last(client, task.id)
        stopped_after = time.monotonic() - asked

        assert answer.cancel_requested
        assert final.state == task_pb2.TASK_STATE_CANCELLED
        assert final.stage == task_pb2.STAGE_EDIT
        assert stopped_after < 2.0, stopped_after
        # The worker slot is free again at once.
        quick = client.submit(jpeg_bytes(64, 48), operations=[resize_operation(32, 32)])
        assert last(client, quick.id).state == task_pb2.TASK_STATE_SUCCEEDED


def test_the_time_limits_hold_in_embedded_mode(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        free_port(),
        workers=1,
        IMAGEEDITOR_TASK_SOFT_TIME_LIMIT_SECONDS="1",
        IMAGEEDITOR_TASK_HARD_TIME_LIMIT_SECONDS="3",
    ).start()
    try:
        with Client(server.address, server.api_key) as client:
            slow = client.submit(
                one_colour_png(7000, 7000), operations=[blur_operation(250.0)] * 20
            )
            started = time.monotonic()
            final = last(client, slow.id)
            took = time.monotonic() - started

            assert final.state == task_pb2.TASK_STATE_FAILED
            assert (final.error.code, final.error.message) == (4, "the task ran out of time")
            assert took < 15, took  # not the minute the 20 blurs take
            quick = client.submit(jpeg_bytes(64, 48), operations=[resize_operation(32, 32)])
            assert last(client, quick.id).state == task_pb2.TASK_STATE_SUCCEEDED
    finally:
        server.stop()


def test_one_users_backlog_does_not_hold_another_users_job(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", free_port(), workers=1).start()
    try:
        bob_key = server.cli("keys", "create", "bob", check=True).stdout.splitlines()[0]
        slow = [blur_operation(250.0)]  # ~1 s each on 4000 x 4000
        image = one_colour_png(4000, 4000)
        with (
            Client(server.address, server.api_key) as alice,
            Client(server.address, bob_key) as bob,
        ):
            backlog = [alice.submit(image, operations=slow) for _ in range(5)]
            wait_for_stage(alice, backlog[0].id, task_pb2.STAGE_EDIT)
            bobs = bob.submit(jpeg_bytes(64, 48), operations=[resize_operation(32, 32)])

            finished = {t.id: last(alice, t.id).finish_time.ToDatetime() for t in backlog}
            bobs_end = last(bob, bobs.id).finish_time.ToDatetime()
        # Served round-robin: bob's job runs after alice's second, not after her fifth.
        order = sorted([*finished.values(), bobs_end])
        assert order.index(bobs_end) <= 2, (order.index(bobs_end), order)
    finally:
        server.stop()


def test_the_output_caps_hold_on_a_real_server(server: ServerProcess) -> None:
    fill = operations_pb2.Operation(
        resize=operations_pb2.Resize(
            width=10_000, height=10_000, fit=operations_pb2.RESIZE_FIT_FILL, allow_upscale=True
        )
    )
    with (
        Client(server.address, server.api_key) as client,
        pytest.raises(InvalidArgument) as refused,
    ):
        client.submit(jpeg_bytes(1, 1), operations=[fill])
    assert refused.value.reason == "OUTPUT_TOO_LARGE"
    assert list(refused.value.field_violations) == ["operations[0]"]
