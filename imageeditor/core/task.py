"""The task model and its state machine.

    QUEUED ──start──▶ RUNNING ──succeed──▶ SUCCEEDED
      │                 │  ├──fail──────▶ FAILED
      │                 │  ├──cancel────▶ CANCELLED   (at a stage boundary, after a cancel request)
      │                 └──requeue──▶ QUEUED          (its worker died; resumed later)
      ├──cancel──▶ CANCELLED
      └──fail────▶ FAILED                               (e.g. too many attempts)

Every transition returns a new Task with `version + 1`; stores save it only if the stored
version is still the one it was derived from (compare-and-set), so two workers racing on one
task cannot both win, and watchers can order and resume by version.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from imageeditor.core.errors import FailedPrecondition
from imageeditor.core.spec import ImageFormat, TaskSpec


class TaskState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskState.SUCCEEDED, TaskState.FAILED, TaskState.CANCELLED})
UNFINISHED_STATES = frozenset({TaskState.QUEUED, TaskState.RUNNING})


class Stage(enum.StrEnum):
    """Pipeline stages, in pipeline order."""

    NONE = ""
    FETCH = "fetch"
    VALIDATE = "validate"
    EDIT = "edit"
    REMOVE_BACKGROUND = "remove_bg"
    STYLE = "style"
    ENCODE = "encode"
    STORE = "store"


PIPELINE_STAGES = (
    Stage.FETCH,
    Stage.VALIDATE,
    Stage.EDIT,
    Stage.REMOVE_BACKGROUND,
    Stage.STYLE,
    Stage.ENCODE,
    Stage.STORE,
)

_ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    TaskState.QUEUED: frozenset(
        {
            TaskState.RUNNING,
            TaskState.SUCCEEDED,  # an identical task's result, reused
            TaskState.CANCELLED,
            TaskState.FAILED,
        }
    ),
    TaskState.RUNNING: frozenset(
        {
            TaskState.RUNNING,  # stage change
            TaskState.SUCCEEDED,
            TaskState.FAILED,
            TaskState.CANCELLED,
            TaskState.QUEUED,
        }
    ),
}


@dataclass(frozen=True)
class TaskError:
    """Why a task failed: a canonical gRPC code name, a stable reason and a message."""

    code: str
    reason: str
    message: str


@dataclass(frozen=True)
class StageTiming:
    """When a run entered a stage, and how long it spent there (None while it still does)."""

    stage: Stage
    started_at: datetime
    duration_ms: int | None = None

    def closed(self, moment: datetime) -> StageTiming:
        """This stage ended at `moment` (unchanged if it had ended already)."""
        if self.duration_ms is not None:
            return self
        elapsed = max((moment - self.started_at).total_seconds(), 0.0)
        return replace(self, duration_ms=int(elapsed * 1000))


@dataclass(frozen=True)
class ResultInfo:
    """The stored result of a succeeded task."""

    width: int
    height: int
    format: ImageFormat
    size_bytes: int
    sha256: str
    uri: str
    key: str


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Task:
    """An image-editing job as the store keeps it."""

    id: str
    user_id: str
    spec: TaskSpec
    state: TaskState = TaskState.QUEUED
    stage: Stage = Stage.NONE
    progress: float = 0.0
    attempts: int = 0
    version: int = 1
    created_at: datetime = field(default_factory=utcnow)
    updated_at: datetime = field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    processing_ms: int | None = None
    error: TaskError | None = None
    result: ResultInfo | None = None
    batch_id: str = ""
    request_id: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    cancel_requested: bool = False
    # A digest of the request that created the task, so a request_id used again for a
    # different request is told apart from a retry (AIP-155); "" when it had no request_id.
    request_digest: str = ""
    # Whether the task may be dispatched yet: fairness lets only so many of one user's tasks
    # into the queue at once (TaskStore.admit_waiting); the others wait, QUEUED, in order.
    admitted: bool = True
    # The stages of the current (or last) run, in order, each with its start and duration.
    stage_timings: tuple[StageTiming, ...] = ()
    # What makes the result reusable (imageeditor.core.reuse): a digest of the scope, the
    # source's bytes and everything that shapes the output; "" when reuse does not apply.
    content_key: str = ""
    # The identical task whose result this one took without running, or, while QUEUED, the
    # one it waits for; "" once it runs itself.
    reused_from: str = ""

    # -- transitions -----------------------------------------------------------------------

    def _to(self, state: TaskState, now: datetime | None, **changes: object) -> Task:
        allowed = _ALLOWED.get(self.state, frozenset())
        if state not in allowed:
            raise FailedPrecondition(
                f"task {self.id} is {self.state}; it cannot become {state}",
                reason="INVALID_TRANSITION",
            )
        moment = now or utcnow()
        if state is not TaskState.RUNNING and self.stage_timings:  # the run's last stage ends
            changes.setdefault("stage_timings", self._timings_closed_at(moment))
        if state.terminal:
            changes["finished_at"] = moment
            if self.started_at is not None:
                elapsed = moment - self.started_at
                changes["processing_ms"] = int(elapsed.total_seconds() * 1000)
        return replace(self, state=state, version=self.version + 1, updated_at=moment, **changes)  # type: ignore[arg-type]

    def start(self, now: datetime | None = None) -> Task:
        """QUEUED → RUNNING, counting the attempt."""
        moment = now or utcnow()
        return self._to(
            TaskState.RUNNING,
            moment,
            started_at=moment,
            attempts=self.attempts + 1,
            stage=Stage.NONE,
            progress=0.0,
            stage_timings=(),
            reused_from="",  # it runs itself: it waits for no one any more
        )

    def enter_stage(
        self, stage: Stage, now: datetime | None = None, progress: float | None = None
    ) -> Task:
        """RUNNING → RUNNING in a new stage; `progress` is the share of the run's stages
        already done (by default, as if the run had every pipeline stage once)."""
        self._require(TaskState.RUNNING)
        if progress is None:
            progress = PIPELINE_STAGES.index(stage) / len(PIPELINE_STAGES)
        moment = now or utcnow()
        timings = (*self._timings_closed_at(moment), StageTiming(stage, moment))
        return self._to(
            TaskState.RUNNING, moment, stage=stage, progress=progress, stage_timings=timings
        )

    def _require(self, state: TaskState) -> None:
        if self.state is not state:
            raise FailedPrecondition(
                f"task {self.id} is {self.state}, not {state}", reason=f"NOT_{state.name}"
            )

    def _timings_closed_at(self, moment: datetime) -> tuple[StageTiming, ...]:
        return tuple(timing.closed(moment) for timing in self.stage_timings)

    def succeed(self, result: ResultInfo, now: datetime | None = None) -> Task:
        """RUNNING → SUCCEEDED: the run made `result`."""
        self._require(TaskState.RUNNING)
        return self._to(TaskState.SUCCEEDED, now, result=result, progress=1.0)

    def reuse(self, result: ResultInfo, source_id: str, now: datetime | None = None) -> Task:
        """QUEUED → SUCCEEDED with the result of an identical task, without a run."""
        self._require(TaskState.QUEUED)
        return self._to(
            TaskState.SUCCEEDED, now, result=result, progress=1.0, reused_from=source_id
        )

    def fail(self, error: TaskError, now: datetime | None = None) -> Task:
        return self._to(TaskState.FAILED, now, error=error)

    def cancel(self, now: datetime | None = None) -> Task:
        error = TaskError("CANCELLED", "CANCELLED", "the task was cancelled")
        return self._to(TaskState.CANCELLED, now, error=error, cancel_requested=False)

    def request_cancel(self, now: datetime | None = None) -> Task:
        """Mark a RUNNING task to stop at its next stage boundary (a versioned change too)."""
        return self._to(TaskState.RUNNING, now, cancel_requested=True)

    def requeue(self, now: datetime | None = None) -> Task:
        """RUNNING → QUEUED: the worker running it is gone; it will run again."""
        return self._to(TaskState.QUEUED, now, stage=Stage.NONE, progress=0.0)

    def recover(self, now: datetime | None = None) -> Task:
        """A RUNNING task whose run is gone (its worker died or was stopped): CANCELLED if a
        cancel is pending (the run was likely stopped for it), else back to QUEUED."""
        return self.cancel(now) if self.cancel_requested else self.requeue(now)
