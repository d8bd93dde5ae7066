"""The Celery configuration both production processes share, built from Settings.

The server only publishes (by task name, see imageeditor.core.adapters.celery.dispatch) and the
workers only
consume (imageeditor.workers.celery_app); both build their Celery app here, so the two sides cannot
disagree about queues, serialisation or broker options.

There is no result backend (`result_backend=None`, `task_ignore_result=True`): the task store
is the truth. Every state a client can ask for is committed there, by compare-and-set, before
anyone hears of it; a Celery result would be a second, weaker copy of the same state, another
store to keep consistent, and one more thing that must be up for a worker to finish a task.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from celery import Celery
from kombu.entity import Exchange, Queue

from imageeditor.core.queues import EDITS_QUEUE, QUEUES
from imageeditor.core.sentinel_url import SENTINEL_SCHEME, parse_sentinel_url
from imageeditor.core.settings import Settings

TASK_NAME = "imageeditor.run_task"
DELIVER_CALLBACKS_NAME = "imageeditor.deliver_callbacks"  # kwargs: user_id, url

# Publishing gives up after ~1.5 s of retries (plus the connect timeouts): a broker outage
# costs an RPC a bounded delay, never a hang. The task is committed and stays QUEUED; the
# reconciler dispatches it again later.
PUBLISH_RETRY_POLICY = {
    "max_retries": 3,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 2,
}
BROKER_CONNECT_TIMEOUT_SECONDS = 2.0
BROKER_SOCKET_TIMEOUT_SECONDS = 10.0
# The longest delay a retry is published with (workers.celery_tasks caps its countdowns).
MAX_COUNTDOWN_SECONDS = 120.0


def visibility_timeout(settings: Settings) -> float:
    """How long a Redis broker waits for the ack of a delivered message before handing it to
    another worker. Above the hard time limit plus the longest countdown (a worker holds a
    delayed message unacked until it is due), or long tasks would run twice."""
    return settings.task_hard_time_limit_seconds + MAX_COUNTDOWN_SECONDS + 60.0


def celery_config(settings: Settings) -> dict[str, Any]:
    """The `app.conf` of both processes."""
    broker_url, sentinel_options = kombu_broker(settings.effective_broker_url)
    return {
        "broker_url": broker_url,
        "result_backend": None,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        # At-least-once delivery: ack when the task returns, not when it is received, and
        # requeue the message when the process running it dies (an OOM kill, a SIGKILL).
        # The store's attempt counter stops an image that kills every worker.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # Long tasks: a process reserves one message at a time, so a slow task never holds
        # others back that an idle process could run.
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": settings.task_soft_time_limit_seconds,
        "task_time_limit": settings.task_hard_time_limit_seconds,
        "broker_transport_options": {
            "visibility_timeout": visibility_timeout(settings),
            "socket_connect_timeout": BROKER_CONNECT_TIMEOUT_SECONDS,
            "socket_timeout": BROKER_SOCKET_TIMEOUT_SECONDS,
            **sentinel_options,
        },
        # On a broker reconnect the unacked messages are redelivered: cancel what runs under
        # them rather than let two workers run the same task side by side.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": BROKER_CONNECT_TIMEOUT_SECONDS,
        "task_publish_retry": True,
        "task_publish_retry_policy": PUBLISH_RETRY_POLICY,
        # One direct exchange per queue, named after it: the plainest layout on RabbitMQ.
        "task_queues": tuple(
            Queue(name, Exchange(name, type="direct"), routing_key=name) for name in QUEUES
        ),
        "task_default_queue": EDITS_QUEUE,
        # Task events (received, started, succeeded, …) for Flower: the Celery task id is our
        # task id (imageeditor.core.adapters.celery.dispatch), so a Flower row names the task.
        "worker_send_task_events": settings.task_events,
        "task_send_sent_event": settings.task_events,
        "task_create_missing_queues": False,
    }


def kombu_broker(url: str) -> tuple[str, dict[str, Any]]:
    """The broker URL as kombu spells it, and the transport options it needs: our
    redis+sentinel:// URL (imageeditor.core.adapters.redis.connection) becomes kombu's Sentinel
    transport, `sentinel://[:password@]host:port/db;…` with the primary's name, so the broker
    follows a failover as the cache, limits and events do. Other URLs pass unchanged."""
    if not url.lower().startswith(f"{SENTINEL_SCHEME}://"):
        return url, {}
    target = parse_sentinel_url(url)
    secret = f":{quote(target.password, safe='')}@" if target.password else ""
    hosts = ";".join(
        f"sentinel://{secret}{f'[{host}]' if ':' in host else host}:{port}/{target.db}"
        for host, port in target.hosts
    )
    options: dict[str, Any] = {"master_name": target.service_name}
    if target.sentinel_password:
        options["sentinel_kwargs"] = {"password": target.sentinel_password}
    return hosts, options


def create_celery(settings: Settings, main: str = "imageeditor") -> Celery:
    """A configured Celery app with no tasks; connects to nothing until first used."""
    app = Celery(main, set_as_current=False)
    app.conf.update(celery_config(settings))
    return app
