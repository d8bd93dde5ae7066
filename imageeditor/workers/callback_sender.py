"""Sending callbacks: claim what is due for one URL, render it, sign it, POST it, record it.

The same sender runs in the `callbacks` Celery queue's workers and in embedded mode's
callback threads. The outbox in the store is the truth (imageeditor.core.callbacks): a sender only
ever holds a lease on the deliveries it is posting, so a sender that dies mid-request loses
nothing; once the lease runs out the deliveries are due again (and, the event ids being the
same, the receiver can tell a repeat from a new event).

One request carries every never-tried event for the URL that falls due within the
aggregation window (up to callback_max_events); an event that has been tried before goes
alone, so a request that failed falls back to single sends. How each answer is taken:

- 2xx: delivered.
- 410 Gone: the URL wants no more events; it is disabled for this user, these events fail
  (ENDPOINT_GONE) and so does every later one for it, unsent.
- an address that is not public, on the first hop or a redirect: failed (URL_NOT_ALLOWED).
- no answer (connection error, timeout), 408, 429: retried on the schedule, honouring
  Retry-After; after the last retry, failed (RETRIES_EXHAUSTED).
- 5xx or another 4xx to a request of several events: each event is retried alone at once
  (one event the receiver chokes on must not hold back the others); to a single event:
  5xx is retried on the schedule, another 4xx fails it (REJECTED).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from google.protobuf import json_format

from imageeditor.core.adapters.blobs.factory import ResultLinks
from imageeditor.core.api.convert import task_to_proto
from imageeditor.core.callbacks import (
    ENDPOINT_GONE,
    REJECTED,
    RETRIES_EXHAUSTED,
    URL_NOT_ALLOWED,
    Attempt,
    Delivery,
    DeliveryState,
    EventType,
    PostResult,
    RetryPolicy,
    Verdict,
    verdict,
)
from imageeditor.core.logs import task_context
from imageeditor.core.metrics import CALLBACK_DURATION, CALLBACK_EVENTS, CALLBACK_REQUESTS
from imageeditor.core.ports import (
    DeliveryStore,
    DownloadLinks,
    ProcessAdapters,
    TaskStore,
    WebhookSecretStore,
)
from imageeditor.core.settings import Settings
from imageeditor.core.task import Task, utcnow
from imageeditor.core.telemetry import callback_span
from imageeditor.core.urls import redact_url
from imageeditor.core.webhook_secrets import ensure_webhook_secret
from imageeditor.core.webhooks import signed_headers
from imageeditor.v1 import callback_pb2
from imageeditor.workers.callback_post import post_callback

log = logging.getLogger(__name__)

SUBJECT_MISSING = "SUBJECT_MISSING"  # the task or batch of an event is gone from the store
# A claim outlives the POST's timeout by this much (rendering, signing, recording).
LEASE_MARGIN_SECONDS = 10.0

Post = Callable[..., PostResult]


@dataclass(frozen=True)
class SendReport:
    """What one `deliver_due` did; `next_due` is the earliest retry it scheduled."""

    requests: int = 0
    delivered: int = 0
    failed: int = 0
    next_due: datetime | None = None


class CallbackSender:
    def __init__(
        self,
        tasks: TaskStore,
        deliveries: DeliveryStore,
        secrets: WebhookSecretStore,
        settings: Settings,
        *,
        links: DownloadLinks | None = None,
        post: Post = post_callback,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ) -> None:
        self._tasks = tasks
        self._deliveries = deliveries
        self._secrets = secrets
        self._settings = settings
        self._links = links or ResultLinks()
        self._post = post
        self._clock = clock
        self._rng = rng or random.Random()
        self._policy = RetryPolicy(settings.callback_retry_schedule)
        self._lease = timedelta(seconds=settings.callback_timeout_seconds + LEASE_MARGIN_SECONDS)

    @classmethod
    def over(cls, adapters: ProcessAdapters, settings: Settings) -> CallbackSender:
        """A sender on one process's stores and download links."""
        return cls(
            adapters.tasks,
            adapters.deliveries,
            adapters.webhook_secrets,
            settings,
            links=adapters.links,
        )

    def deliver_due(self, user_id: str, url: str) -> SendReport:
        """POST everything due for (user, url), one request at a time, until nothing is left
        that is due. (New events are due from the moment they are owed; the aggregation
        window is the wait before a sender is woken, so they gather meanwhile.)"""
        report = SendReport()
        while True:
            now = self._clock()
            token, claimed = self._deliveries.claim_deliveries(
                user_id, url, now, now + self._lease, self._settings.callback_max_events
            )
            if not claimed:
                return report
            finished = self._send(user_id, url, claimed)
            self._deliveries.finish_deliveries(token, finished)
            report = _add(report, finished, requests=1)

    def _send(self, user_id: str, url: str, claimed: list[Delivery]) -> list[Delivery]:
        now = self._clock()
        if self._deliveries.endpoint_disabled(user_id, url):
            why = "not sent: the URL answered 410 Gone before"
            return [_give_up(d, ENDPOINT_GONE, now, why) for d in claimed]
        subjects = self._subjects(claimed)
        missing = [d for d in claimed if d.id not in subjects]
        sendable = [d for d in claimed if d.id in subjects]
        finished = [_give_up(d, SUBJECT_MISSING, now, "its task is gone") for d in missing]
        if not sendable:
            return finished
        body = render_payload(sendable, subjects, self._links)
        secrets = [s.secret for s in ensure_webhook_secret(self._secrets, user_id, now)]
        msg_id = message_id(sendable)
        headers = signed_headers(secrets, msg_id, body, time.time())
        with callback_span([d.traceparent for d in sendable], url, len(sendable)) as trace:
            result = self._post(
                url,
                body,
                {**headers, **trace},
                timeout=self._settings.callback_timeout_seconds,
                allowed_hosts=self._settings.callback_allowed_hosts,
            )
            attempt = Attempt(
                at=now,
                http_status=result.http_status,
                error=result.error,
                duration_ms=result.duration_ms,
            )
            outcome = self._judge(user_id, url, sendable, result, attempt)
            tasks = {task.id for found in subjects.values() for task in found}
            with task_context(next(iter(tasks)) if len(tasks) == 1 else ""):
                _log_outcome(url, msg_id, result, outcome)
        _count(result, outcome)
        return finished + outcome

    def _judge(
        self,
        user_id: str,
        url: str,
        sent: list[Delivery],
        result: PostResult,
        attempt: Attempt,
    ) -> list[Delivery]:
        answer = verdict(result)
        if answer is Verdict.DELIVERED:
            return [d.delivered(attempt) for d in sent]
        if answer is Verdict.GONE:
            self._deliveries.disable_endpoint(user_id, url, result.error, attempt.at)
            return [d.failed(attempt, ENDPOINT_GONE) for d in sent]
        if answer is Verdict.NOT_ALLOWED:
            return [d.failed(attempt, URL_NOT_ALLOWED) for d in sent]
        answered = result.http_status >= 500 or answer is Verdict.REJECTED
        if len(sent) > 1 and answered:
            # Fall back to single sends, at once: tried events are claimed one at a time.
            return [d.retry_at(attempt, attempt.at) for d in sent]
        if answer is Verdict.REJECTED:
            return [d.failed(attempt, REJECTED) for d in sent]
        return [self._retry(d, attempt, result.retry_after) for d in sent]

    def _retry(self, delivery: Delivery, attempt: Attempt, retry_after: float | None) -> Delivery:
        failures = len(delivery.attempts) + 1
        when = self._policy.next_attempt(failures, attempt.at, retry_after, self._rng)
        if when is None:
            return delivery.failed(attempt, RETRIES_EXHAUSTED)
        return delivery.retry_at(attempt, when)

    def _subjects(self, claimed: Sequence[Delivery]) -> dict[str, list[Task]]:
        """Each delivery's tasks (one for a task event, the batch's for a batch event), by
        delivery id; a delivery whose task or batch is gone has none."""
        wanted: dict[str, list[str]] = {}
        for d in claimed:
            if d.event_type is EventType.BATCH_COMPLETED:
                batch = self._tasks.get_batch(d.batch_id)
                if batch is not None:
                    wanted[d.id] = list(batch.task_ids)
            else:
                wanted[d.id] = [d.task_id]
        ids = [task_id for task_ids in wanted.values() for task_id in task_ids]
        found = {t.id: t for t in self._tasks.get_tasks(ids)}
        return {
            delivery_id: [found[i] for i in task_ids if i in found]
            for delivery_id, task_ids in wanted.items()
            if all(i in found for i in task_ids)
        }


def render_payload(
    deliveries: Sequence[Delivery], subjects: Mapping[str, list[Task]], links: DownloadLinks
) -> bytes:
    """The request body: a CallbackPayload in the protobuf JSON mapping, compact UTF-8."""
    payload = callback_pb2.CallbackPayload()
    for d in deliveries:
        tasks = subjects[d.id]
        event = payload.events.add(id=d.id, type=d.event_type.value)
        event.create_time.FromDatetime(d.created_at)
        protos = [task_to_proto(t, links.download_url(t.result)) for t in tasks]
        if d.event_type is EventType.BATCH_COMPLETED:
            event.batch.batch_id = d.batch_id
            event.batch.tasks.extend(protos)
        else:
            event.task.CopyFrom(protos[0])
    data = json_format.MessageToDict(payload)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def message_id(deliveries: Sequence[Delivery]) -> str:
    """The `webhook-id` of a request: the event id when it carries one event (so it is the
    same on every attempt), else a digest of the event ids it carries."""
    if len(deliveries) == 1:
        return deliveries[0].id
    digest = hashlib.sha256(",".join(sorted(d.id for d in deliveries)).encode()).hexdigest()
    return f"msg_{digest[:32]}"


def _give_up(delivery: Delivery, reason: str, now: datetime, why: str) -> Delivery:
    """Fail a delivery without sending it (recorded as an attempt with no answer)."""
    return delivery.failed(Attempt(at=now, error=why), reason)


def _add(report: SendReport, finished: Sequence[Delivery], requests: int) -> SendReport:
    retries = [d.next_attempt_at for d in finished if d.next_attempt_at is not None]
    due = [t for t in (report.next_due, *retries) if t is not None]
    return replace(
        report,
        requests=report.requests + requests,
        delivered=report.delivered + sum(d.state is DeliveryState.DELIVERED for d in finished),
        failed=report.failed + sum(d.state is DeliveryState.FAILED for d in finished),
        next_due=min(due) if due else None,
    )


def _count(result: PostResult, outcome: list[Delivery]) -> None:
    CALLBACK_REQUESTS.labels(verdict(result).value).inc()
    CALLBACK_DURATION.observe(result.duration_ms / 1000)
    for delivery in outcome:
        CALLBACK_EVENTS.labels(delivery.state.value).inc()


def _log_outcome(url: str, msg_id: str, result: PostResult, outcome: list[Delivery]) -> None:
    url = redact_url(url)
    states = sorted({d.state.value for d in outcome})
    if result.error:
        log.warning(
            "callback %s to %s (%d event(s)): %s → %s",
            msg_id,
            url,
            len(outcome),
            result.error,
            ", ".join(states),
        )
    else:
        log.info("callback %s to %s delivered (%d event(s))", msg_id, url, len(outcome))
