"""The embedded worker's queue takes tasks round-robin by user."""

from __future__ import annotations

import contextvars
import threading

from imageeditor.workers.embedded import FairQueue


def put(queue: FairQueue, user: str, task: str) -> None:
    queue.put(user, (task, contextvars.Context()))


def take(queue: FairQueue, count: int) -> list[str]:
    taken = []
    for _ in range(count):
        item = queue.get()
        assert item is not None
        taken.append(item[0])
    return taken


def test_one_users_backlog_does_not_hold_another_users_task() -> None:
    queue = FairQueue()
    for n in range(1, 6):
        put(queue, "alice", f"a{n}")
    put(queue, "bob", "b1")

    assert take(queue, 3) == ["a1", "b1", "a2"]
    assert take(queue, 3) == ["a3", "a4", "a5"]


def test_users_take_turns_and_keep_their_own_order() -> None:
    queue = FairQueue()
    for task in ["a1", "a2", "a3"]:
        put(queue, "alice", task)
    for task in ["b1", "b2"]:
        put(queue, "bob", task)
    put(queue, "carol", "c1")

    assert take(queue, 6) == ["a1", "b1", "c1", "a2", "b2", "a3"]


def test_a_user_who_arrives_later_waits_one_round_at_most() -> None:
    queue = FairQueue()
    for n in range(1, 4):
        put(queue, "alice", f"a{n}")
    put(queue, "bob", "b1")
    assert take(queue, 1) == ["a1"]
    put(queue, "carol", "c1")

    assert take(queue, 3) == ["b1", "a2", "c1"]


def test_closing_wakes_the_waiting_takers_and_drops_the_rest() -> None:
    queue = FairQueue()
    got: list[object] = []
    taker = threading.Thread(target=lambda: got.append(queue.get()))
    taker.start()
    assert queue.close() == 0
    taker.join(5)
    assert got == [None]

    queue = FairQueue()
    put(queue, "alice", "a1")
    assert queue.close() == 1
    assert queue.get() is None
