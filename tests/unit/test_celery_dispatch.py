"""Publishing dispatch messages: routing, failure handling, and the shared Celery settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from imageeditor.cli import admin
from imageeditor.cli.parser import build_parser
from imageeditor.core.adapters.celery.config import (
    DELIVER_CALLBACKS_NAME,
    MAX_COUNTDOWN_SECONDS,
    TASK_NAME,
    celery_config,
)
from imageeditor.core.adapters.celery.dispatch import (
    BrokerPublisher,
    CeleryCallbackNotifier,
    CeleryDispatcher,
)
from imageeditor.core.queues import CALLBACKS_QUEUE, EDITS_QUEUE, MODELS_QUEUE
from imageeditor.core.settings import Settings
from imageeditor.core.snapshot import task_from_dict
from imageeditor.core.spec import Grayscale, RemoveBackground, TaskSpec
from imageeditor.core.task import Task
from imageeditor.workers.main import worker_argv


@dataclass
class FakeApp:
    fail: bool = False
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def send_task(self, name: str, **options: Any) -> None:
        if self.fail:
            raise ConnectionRefusedError("broker down")
        self.calls.append((name, options))


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


def task_with(*operations: object) -> Task:
    spec = TaskSpec(image_url="https://example.com/a.png", operations=operations)  # type: ignore[arg-type]
    return Task(id="00000000-0000-4000-8000-000000000001", user_id="u", spec=spec)


def test_the_message_carries_the_whole_task_to_the_queue_of_its_kind_of_work() -> None:
    app = FakeApp()
    dispatcher = CeleryDispatcher(BrokerPublisher(app))  # type: ignore[arg-type]
    edit, cutout = task_with(Grayscale()), task_with(Grayscale(), RemoveBackground())

    dispatcher.dispatch(edit)
    assert dispatcher.try_dispatch(cutout, countdown=4.0)

    (name, first), (_, second) = app.calls
    assert name == TASK_NAME
    assert task_from_dict(first["kwargs"]["task"]) == edit
    assert (first["queue"], second["queue"]) == (EDITS_QUEUE, MODELS_QUEUE)
    assert (first["countdown"], second["countdown"]) == (None, 4.0)
    assert first["retry"] is True and first["retry_policy"]["max_retries"] == 3


def test_a_broker_outage_is_swallowed_and_the_broker_skipped_for_a_while() -> None:
    app, clock = FakeApp(fail=True), Clock()
    publisher = BrokerPublisher(app, cooldown_seconds=3.0, clock=clock)  # type: ignore[arg-type]
    dispatcher = CeleryDispatcher(publisher)

    dispatcher.dispatch(task_with())  # never raises: the task stays QUEUED in the store
    app.fail = False
    assert not dispatcher.try_dispatch(task_with())  # skipped: answers at once
    assert app.calls == []
    clock.now += 3.0
    assert dispatcher.try_dispatch(task_with())
    assert len(app.calls) == 1


def test_callback_nudges_go_to_their_queue_once_per_url_and_aggregation_window() -> None:
    app, clock = FakeApp(), Clock()
    notifier = CeleryCallbackNotifier(BrokerPublisher(app), 1.5, clock=clock)  # type: ignore[arg-type]

    notifier.notify("u", "https://hooks.example.com/a")
    notifier.notify("u", "https://hooks.example.com/a")  # the pending nudge will take it
    notifier.notify("u", "https://hooks.example.com/b")
    notifier.notify("v", "https://hooks.example.com/a")
    clock.now += 1.5
    notifier.notify("u", "https://hooks.example.com/a")  # the first nudge has fired by now
    assert notifier.notify_in("u", "https://hooks.example.com/a", 10_000.0)

    sent = [
        (name, o["kwargs"]["user_id"], o["kwargs"]["url"], o["countdown"]) for name, o in app.calls
    ]
    assert {name for name, *_ in sent} == {DELIVER_CALLBACKS_NAME}
    assert [s[1:] for s in sent] == [
        ("u", "https://hooks.example.com/a", 1.5),
        ("u", "https://hooks.example.com/b", 1.5),
        ("v", "https://hooks.example.com/a", 1.5),
        ("u", "https://hooks.example.com/a", 1.5),
        (
            "u",
            "https://hooks.example.com/a",
            MAX_COUNTDOWN_SECONDS,
        ),  # capped: the sweep covers later
    ]
    assert {o["queue"] for _, o in app.calls} == {CALLBACKS_QUEUE}


def test_a_nudge_the_broker_refused_is_not_counted_as_pending() -> None:
    app, clock = FakeApp(fail=True), Clock()
    publisher = BrokerPublisher(app, cooldown_seconds=0.0, clock=clock)  # type: ignore[arg-type]
    notifier = CeleryCallbackNotifier(publisher, 1.0, clock=clock)
    notifier.notify("u", "https://hooks.example.com/a")
    app.fail = False
    notifier.notify("u", "https://hooks.example.com/a")  # not swallowed by the failed one
    assert len(app.calls) == 1


def test_the_celery_settings_make_delivery_at_least_once_with_no_result_backend() -> None:
    settings = Settings(
        redis_url="redis://r:6379/0",
        task_soft_time_limit_seconds=50,
        task_hard_time_limit_seconds=60,
    )
    config = celery_config(settings)
    assert config["broker_url"] == "redis://r:6379/0"  # the broker defaults to the Redis URL
    assert config["result_backend"] is None and config["task_ignore_result"] is True
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert (config["task_soft_time_limit"], config["task_time_limit"]) == (50, 60)
    visibility = config["broker_transport_options"]["visibility_timeout"]
    assert visibility > 60 + MAX_COUNTDOWN_SECONDS
    assert config["worker_cancel_long_running_tasks_on_connection_loss"] is True
    assert {q.name for q in config["task_queues"]} == {"edits", "models", "callbacks"}
    amqp = celery_config(Settings(redis_url="redis://r", broker_url="amqp://g:g@rabbit//"))
    assert amqp["broker_url"] == "amqp://g:g@rabbit//"


def test_the_worker_command_line() -> None:
    argv = worker_argv(["edits"], 2, "INFO")
    assert argv[0] == "worker"
    assert {"--queues=edits", "--concurrency=2", "--loglevel=INFO"} <= set(argv)
    assert not any(a.startswith("--concurrency") for a in worker_argv(["models"], None, "INFO"))


def test_imageeditor_worker_takes_known_queues_only() -> None:
    parser = build_parser()
    args = parser.parse_args(["worker", "--queues", "edits, models", "--concurrency", "2"])
    assert (args.queues, args.concurrency, args.run) == (("edits", "models"), 2, admin.worker)
    assert parser.parse_args(["worker"]).queues == ("edits", "models")
    with pytest.raises(SystemExit):
        parser.parse_args(["worker", "--queues", "edits,gpu"])


def test_a_sentinel_url_becomes_kombus_sentinel_transport() -> None:
    settings = Settings(
        redis_url="redis+sentinel://:p%40ss@10.0.0.1:26379,[::1]:26380/mymaster/2"
        "?sentinel_password=s3cret"
    )
    config = celery_config(settings)
    assert config["broker_url"] == (
        "sentinel://:p%40ss@10.0.0.1:26379/2;sentinel://:p%40ss@[::1]:26380/2"
    )
    options = config["broker_transport_options"]
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"] == {"password": "s3cret"}
    plain = celery_config(Settings(redis_url="redis://r:6379/0"))
    assert plain["broker_url"] == "redis://r:6379/0"
    assert "master_name" not in plain["broker_transport_options"]
