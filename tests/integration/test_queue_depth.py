"""Queue depths for the metrics sampler, read from real brokers
(imageeditor.core.adapters.celery)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from imageeditor.core.adapters.celery.config import create_celery
from imageeditor.core.adapters.celery.dispatch import BrokerPublisher, CeleryDispatcher
from imageeditor.core.queues import EDITS_QUEUE, QUEUES
from imageeditor.core.settings import Settings
from imageeditor.core.spec import TaskSpec
from imageeditor.core.task import Task
from tests.e2e.harness import free_port
from tests.e2e.production_harness import RedisBroker


@pytest.fixture
def redis_broker() -> Iterator[str]:
    broker = RedisBroker().start()
    yield broker.url
    broker.stop()


def publish_three(broker_url: str) -> BrokerPublisher:
    app = create_celery(Settings(redis_url="redis://unused", broker_url=broker_url))
    publisher = BrokerPublisher(app)
    dispatcher = CeleryDispatcher(publisher)
    for n in range(3):
        spec = TaskSpec(image_url=f"https://example.com/{n}.png")
        assert dispatcher.try_dispatch(Task(id=f"depth-{n}", user_id="u", spec=spec))
    return publisher


@pytest.mark.redis
def test_redis_queue_depths_count_waiting_messages_and_empty_queues_as_zero(
    redis_broker: str,
) -> None:
    publisher = publish_three(redis_broker)
    assert publisher.queue_depths() == {"edits": 3, "models": 0, "callbacks": 0}


def test_rabbitmq_queue_depths(rabbitmq_url: str) -> None:
    publisher = publish_three(rabbitmq_url)
    app = create_celery(Settings(redis_url="redis://unused", broker_url=rabbitmq_url))
    try:
        depths = publisher.queue_depths()
        assert depths[EDITS_QUEUE] >= 3 and set(depths) == set(QUEUES)
    finally:
        with app.connection_for_write() as connection, connection.channel() as channel:
            channel.queue_purge(EDITS_QUEUE)


def test_an_unreachable_broker_gives_no_depths() -> None:
    app = create_celery(
        Settings(redis_url="redis://unused", broker_url=f"redis://127.0.0.1:{free_port()}/0")
    )
    assert BrokerPublisher(app).queue_depths() == {}
