"""Fairness between users: only so many of one user's tasks are dispatched at a time.

A queue (the broker's, the embedded worker's) serves its messages in order, so a user who
submits ten thousand tasks would make everyone after them wait for all ten thousand. Instead,
at most `cap` (IMAGEEDITOR_MAX_DISPATCHED_PER_USER) of a user's unfinished tasks are
admitted (dispatched, or running) at once; the others wait in the store, QUEUED and in order,
and are admitted as earlier ones finish. Another user's task then waits behind at most `cap`
tasks of each busy user. A cap of 0 admits every task at once.

Whoever sees a task of a user end admits that user's next ones (and dispatches the tasks that
wait for its result: imageeditor.core.reuse): the worker that ran it, the server that
cancelled it; the reconciler admits for every user with tasks waiting, so an admission lost
to a crash only waits for its next pass.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from imageeditor.core.ports import TaskStore
from imageeditor.core.task import Task

USERS_PER_PASS = 1000


class Dispatch(Protocol):
    def dispatch(self, task: Task) -> None: ...


class Admission:
    def __init__(self, store: TaskStore, dispatcher: Dispatch, cap: int) -> None:
        self._store = store
        self._dispatcher = dispatcher
        self.cap = cap

    def prepare(self, task: Task) -> Task:
        """A new task as it is stored: waiting for admission when there is a cap."""
        return replace(task, admitted=not self.cap)

    def admit_new(self, created: list[Task]) -> list[Task]:
        """What may be dispatched now that `created` exist: all of them without a cap, else
        what fits for each of their users (older waiting tasks first), admitted in the store.
        The caller dispatches them (in the context each was submitted in)."""
        if not self.cap:
            return created
        users = dict.fromkeys(task.user_id for task in created)
        return [task for user in users for task in self._store.admit_waiting(user, self.cap)]

    def admit(self, user_id: str) -> int:
        """Admit and dispatch the user's waiting tasks that fit under the cap."""
        return len(self._admit(user_id)) if self.cap else 0

    def _admit(self, user_id: str) -> list[Task]:
        admitted = self._store.admit_waiting(user_id, self.cap)
        for task in admitted:
            self._dispatcher.dispatch(task)
        return admitted

    def after(self, task: Task | None) -> None:
        """Once a task has ended, its user's next ones may go, and so may the tasks that
        waited for its result (imageeditor.core.reuse): their worker takes it, or runs them if
        there is none."""
        if task is None or not task.state.terminal:
            return
        self.admit(task.user_id)
        if task.content_key:
            for waiting in self._store.waiting_for(task.id):
                if waiting.admitted:
                    self._dispatcher.dispatch(waiting)

    def admit_everyone(self) -> int:
        """Admit for every user with tasks waiting (the reconciler's pass)."""
        if not self.cap:
            return 0
        return sum(self.admit(user) for user in self._store.users_waiting(USERS_PER_PASS))
