"""Callbacks end to end in embedded mode: a real server process posting to a real receiver.

The receiver listens on loopback, which callbacks may reach only because each test's
server allows that one port (IMAGEEDITOR_CALLBACK_ALLOWED_HOSTS). Retry delays are cut to
fractions of a second; the production path (the `callbacks` Celery queue, a worker killed
mid-delivery) is in test_callbacks_production_e2e.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from imageeditor.sdk import Client, InvalidArgument, Unauthenticated, verify_webhook
from imageeditor.sdk.operations import grayscale_operation
from imageeditor.sdk.requests import build_submit_request
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc
from imageeditor.v1 import task_pb2
from tests.e2e.callback_receiver import Answer, Receiver
from tests.e2e.harness import ServerProcess, free_port, jpeg_bytes

pytestmark = pytest.mark.e2e

DELIVERED = task_pb2.CALLBACK_STATE_DELIVERED
FAILED = task_pb2.CALLBACK_STATE_FAILED
IMAGE = jpeg_bytes(64, 48)


def callback_settings(receiver: Receiver, **more: str) -> dict[str, str]:
    return {
        "IMAGEEDITOR_CALLBACK_ALLOWED_HOSTS": receiver.allowlist_entry,
        "IMAGEEDITOR_CALLBACK_RETRY_SCHEDULE": "0.3,0.3,0.5,1,1,1,2,2",
        "IMAGEEDITOR_CALLBACK_WINDOW_SECONDS": "0.5",
        "IMAGEEDITOR_CALLBACK_TIMEOUT_SECONDS": "3",
        **more,
    }


StartServer = Callable[..., tuple[ServerProcess, Client]]


@pytest.fixture
def start_server(make_server: type[ServerProcess], tmp_path: Path) -> Iterator[StartServer]:
    clients: list[Client] = []

    def start(receiver: Receiver, **more: str) -> tuple[ServerProcess, Client]:
        server = make_server(tmp_path / "data", free_port(), **callback_settings(receiver, **more))
        server.start()
        client = Client(server.address, server.api_key)
        clients.append(client)
        return server, client

    yield start
    for client in clients:
        client.close()


def secret_of(server: ServerProcess) -> str:
    return (server.data_dir / "dev-webhook-secret").read_text().strip()


def status_when(
    client: Client, task_id: str, done: Callable[[task_pb2.Task], bool]
) -> task_pb2.Task:
    deadline = time.monotonic() + 30
    while True:
        task = client.get_status(task_id)
        if done(task):
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting; the task is now:\n{task}")
        time.sleep(0.1)


def callback_settled(task: task_pb2.Task) -> bool:
    return task.callback.state in (DELIVERED, FAILED)


def test_a_finished_task_posts_a_signed_callback_that_the_sdk_verifies(
    receiver: Receiver, start_server: StartServer
) -> None:
    server, client = start_server(receiver)
    task = client.submit(IMAGE, operations=[grayscale_operation()], callback_url=receiver.url)

    (request,) = receiver.wait_for(1)
    secret = secret_of(server)
    verify_webhook(secret, request.headers, request.body)
    (event,) = request.events
    assert (event.type, event.task.id) == ("task.succeeded", task.id)
    assert event.task.state == task_pb2.TASK_STATE_SUCCEEDED and event.task.result.sha256
    assert request.headers["webhook-id"] == event.id
    assert request.headers["content-type"] == "application/json"

    with pytest.raises(Unauthenticated):
        verify_webhook(secret, request.headers, request.body.replace(b"SUCCEEDED", b"FAILED"))
    stale = request.headers | {"webhook-timestamp": str(int(time.time()) - 3600)}
    with pytest.raises(Unauthenticated):
        verify_webhook(secret, stale, request.body)

    shown = status_when(client, task.id, callback_settled)
    assert (shown.callback.state, shown.callback.event_id) == (DELIVERED, event.id)
    assert [a.http_status for a in shown.callback.attempts] == [204]
    assert shown.callback.event_type == "task.succeeded" and shown.callback.url == receiver.url


def test_500_then_200_delivers_with_the_same_event_id_both_times(
    receiver: Receiver, start_server: StartServer
) -> None:
    _, client = start_server(receiver.answer(Answer(500)))
    task = client.submit(IMAGE, callback_url=receiver.url)

    first, second = receiver.wait_for(2)
    assert [e.id for e in first.events] == [e.id for e in second.events]
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    shown = status_when(client, task.id, callback_settled)
    assert shown.callback.state == DELIVERED
    assert [a.http_status for a in shown.callback.attempts] == [500, 204]
    assert shown.callback.attempts[0].error


def test_a_receiver_down_for_a_while_then_up_gets_the_callback(
    start_server: StartServer,
) -> None:
    receiver = Receiver(free_port())  # not listening yet: connections are refused
    _, client = start_server(receiver)
    task = client.submit(IMAGE, callback_url=receiver.url)
    down = status_when(client, task.id, lambda t: len(t.callback.attempts) >= 2)
    assert down.callback.state == task_pb2.CALLBACK_STATE_PENDING
    assert {a.http_status for a in down.callback.attempts} == {0}

    receiver.start()
    try:
        (request,) = receiver.wait_for(1)
        assert [e.task.id for e in request.events] == [task.id]
        shown = status_when(client, task.id, callback_settled)
        assert shown.callback.state == DELIVERED
        assert shown.callback.attempts[-1].http_status == 204
    finally:
        receiver.stop()


def test_410_gone_stops_every_further_attempt_for_that_url_until_an_operator_enables_it(
    receiver: Receiver, start_server: StartServer
) -> None:
    server, client = start_server(receiver.answer(Answer(410)))
    first = client.submit(IMAGE, callback_url=receiver.url)
    shown = status_when(client, first.id, callback_settled)
    assert (shown.callback.state, shown.callback.failure_reason) == (FAILED, "ENDPOINT_GONE")

    later = client.submit(IMAGE, callback_url=receiver.url)
    again = status_when(client, later.id, callback_settled)
    assert (again.callback.state, again.callback.failure_reason) == (FAILED, "ENDPOINT_GONE")
    time.sleep(1.5)  # longer than the whole retry schedule's first steps
    assert len(receiver.received) == 1

    # The receiver is fixed: an operator lifts the stop and sends the second event again.
    server.cli("callbacks", "enable", "dev", receiver.url, check=True)
    resent = server.cli("callbacks", "redeliver", again.callback.event_id, check=True)
    assert resent.stdout.split()[:2] == [again.callback.event_id, "PENDING"]
    _, request = receiver.wait_for(2)
    assert [e.id for e in request.events] == [again.callback.event_id]
    shown = status_when(client, later.id, lambda t: t.callback.state == DELIVERED)
    assert [a.http_status for a in shown.callback.attempts] == [0, 204]


def test_tasks_finishing_together_share_requests_and_every_event_arrives_once(
    receiver: Receiver, start_server: StartServer
) -> None:
    server, client = start_server(receiver, IMAGEEDITOR_CALLBACK_WINDOW_SECONDS="1.5")
    tasks = [client.submit(IMAGE, callback_url=receiver.url) for _ in range(6)]
    for task in tasks:
        status_when(client, task.id, callback_settled)

    events = receiver.events()
    assert len(receiver.received) < len(tasks)
    assert sorted(e.task.id for e in events) == sorted(t.id for t in tasks)
    assert len({e.id for e in events}) == len(tasks)
    for request in receiver.received:  # several events, one signature over all of them
        verify_webhook(secret_of(server), request.headers, request.body)


def test_a_batch_callback_arrives_once_with_every_item(
    receiver: Receiver, start_server: StartServer
) -> None:
    _, client = start_server(receiver)
    items = [build_submit_request(IMAGE, operations=[grayscale_operation()]) for _ in range(3)]
    reply = client.batch_submit(items, callback_url=receiver.url)
    task_ids = [r.task.id for r in reply.results]

    (request,) = receiver.wait_for(1)
    (event,) = request.events
    assert (event.type, event.batch.batch_id) == ("batch.completed", reply.batch_id)
    assert [t.id for t in event.batch.tasks] == task_ids
    assert {t.state for t in event.batch.tasks} == {task_pb2.TASK_STATE_SUCCEEDED}
    shown = status_when(client, task_ids[0], lambda t: t.batch_callback.state == DELIVERED)
    assert shown.batch_callback.event_id == event.id
    time.sleep(1.0)
    assert len(receiver.received) == 1


def test_a_redirect_to_a_private_address_is_refused(
    receiver: Receiver, start_server: StartServer
) -> None:
    metadata = "http://169.254.169.254/latest/meta-data/"
    _, client = start_server(receiver.answer(Answer(307, {"Location": metadata})))
    task = client.submit(IMAGE, callback_url=receiver.url)
    shown = status_when(client, task.id, callback_settled)
    assert (shown.callback.state, shown.callback.failure_reason) == (FAILED, "URL_NOT_ALLOWED")
    assert len(receiver.received) == 1


def test_a_callback_url_naming_an_internal_address_is_refused_at_submit(
    receiver: Receiver, start_server: StartServer
) -> None:
    _, client = start_server(receiver)
    for url in (
        "http://127.0.0.1:9/",
        "http://169.254.169.254/",
        "http://0x7f.1/",
        "http://localhost/x",
    ):
        with pytest.raises(InvalidArgument) as refused:
            client.submit(IMAGE, callback_url=url)
        assert refused.value.reason == "URL_NOT_ALLOWED"
        assert "callback_url" in refused.value.field_violations
    assert list(client.list_tasks()) == []  # nothing was created


def test_a_server_killed_mid_delivery_delivers_after_its_restart(
    receiver: Receiver, start_server: StartServer
) -> None:
    server, client = start_server(receiver.answer(Answer(204, hold_seconds=20)))
    task = client.submit(IMAGE, callback_url=receiver.url)
    receiver.wait_for(1)  # the sender is waiting for the held answer
    assert server.process is not None
    server.process.kill()
    server.process.wait()

    server.start()
    client2 = Client(server.address, server.api_key)
    try:
        first, second = receiver.wait_for(2)
        assert [e.id for e in first.events] == [e.id for e in second.events]
        shown = status_when(client2, task.id, callback_settled)
        assert shown.callback.state == DELIVERED
    finally:
        client2.close()


def test_grpc_status_code_of_a_refused_callback_url_is_invalid_argument(
    receiver: Receiver, start_server: StartServer
) -> None:
    server, _ = start_server(receiver)
    with grpc.insecure_channel(server.address) as channel:
        stub = pb_grpc.ImageEditorServiceStub(channel)
        request = pb.SubmitTaskRequest(image_data=IMAGE, callback_url="http://10.1.2.3/hook")
        with pytest.raises(grpc.RpcError) as failed:
            stub.SubmitTask(request, metadata=[("authorization", f"Bearer {server.api_key}")])
    assert failed.value.code() is grpc.StatusCode.INVALID_ARGUMENT
