"""The task store contract: every test runs on SQLite and on PostgreSQL (see tests/conftest.py)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from dataclasses import replace
from datetime import timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError

from imageeditor.core.adapters.sql.engine import alembic_config, create_engine_for
from imageeditor.core.adapters.sql.tables import metadata
from imageeditor.core.adapters.sql.task_store import SqlTaskStore
from imageeditor.core.apikeys import create_api_key, hash_api_key
from imageeditor.core.errors import InvalidArgument
from imageeditor.core.ports import PageCursor, RejectedItem, TaskQuery
from imageeditor.core.task import Stage, Task, TaskError, TaskState
from tests.integration.store_parts import (
    BASE_TIME,
    RESULT,
    advanced,
    created,
    make_batch,
    make_task,
    run_concurrently,
)


def ids(tasks: list[Task]) -> list[str]:
    return [task.id for task in tasks]


def page_through(store: SqlTaskStore, query: TaskQuery, limit: int) -> list[list[Task]]:
    pages: list[list[Task]] = []
    cursor: PageCursor | None = None
    while page := store.list_tasks(query, limit, cursor):
        assert len(page) <= limit
        pages.append(page)
        assert len(pages) <= 100, "the cursor does not advance"
        cursor = PageCursor(page[-1].created_at, page[-1].id)
    return pages


# -- creating and reading -----------------------------------------------------------------------


def test_a_created_task_reads_back_equal_with_utc_times(store: SqlTaskStore) -> None:
    plus_two = timezone(timedelta(hours=2))
    task = make_task(created_at=BASE_TIME.astimezone(plus_two), labels={"env": "prod", "n": "1"})

    assert store.create_task(task) == (task, True)
    stored = store.get_task(task.id)

    assert stored == task
    assert stored.created_at.utcoffset() == timedelta(0)


def test_succeeded_and_failed_tasks_keep_their_result_and_error(store: SqlTaskStore) -> None:
    running = advanced(store, created(store, make_task()), lambda t: t.start(BASE_TIME))
    finish = BASE_TIME + timedelta(seconds=3)
    succeeded = advanced(store, running, lambda t: t.succeed(RESULT, finish))
    error = TaskError("INVALID_ARGUMENT", "IMAGE_UNDECODABLE", "not an image")
    failed = advanced(store, created(store, make_task()), lambda t: t.fail(error))

    assert store.get_task(succeeded.id) == succeeded
    assert store.get_task(succeeded.id).processing_ms == 3000
    assert store.get_task(failed.id) == failed


def test_stage_timings_are_kept_with_each_transition(store: SqlTaskStore) -> None:
    running = advanced(store, created(store, make_task()), lambda t: t.start(BASE_TIME))
    fetching = advanced(
        store, running, lambda t: t.enter_stage(Stage.FETCH, BASE_TIME + timedelta(seconds=1))
    )
    editing = advanced(
        store, fetching, lambda t: t.enter_stage(Stage.EDIT, BASE_TIME + timedelta(seconds=3))
    )
    assert store.get_task(editing.id) == editing  # the open stage has no duration yet
    done = advanced(store, editing, lambda t: t.succeed(RESULT, BASE_TIME + timedelta(seconds=4)))
    stored = store.get_task(done.id)
    assert stored == done
    assert [(t.stage, t.duration_ms) for t in stored.stage_timings] == [
        (Stage.FETCH, 2000),
        (Stage.EDIT, 1000),
    ]
    # The event log's snapshots carry them too (what WatchTask replays).
    (last,) = [e for e in store.list_events(done.id, 0) if e.version == done.version]
    assert last.stage_timings == done.stage_timings


def test_reuse_reads_one_task_a_key_however_many_identical_tasks_there_are(
    store: SqlTaskStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A caller who submits the same job again and again must not make each submit read
    # every earlier copy: reuse looks at the best candidate of each kind, nothing more.
    waiting = [
        created(
            store,
            replace(make_task(created_at=BASE_TIME + timedelta(seconds=i)), content_key="f" * 64),
        )
        for i in range(40)
    ]
    read: list[int] = []
    load = store._with_labels

    def counted(connection: object, rows: list[object]) -> list[Task]:
        read.append(len(rows))
        return load(connection, rows)  # type: ignore[arg-type]

    monkeypatch.setattr(store, "_with_labels", counted)
    found = store.reusable(["f" * 64], BASE_TIME)
    assert found["f" * 64].id == waiting[0].id  # the oldest, as with one
    assert sum(read) == 1


def test_reuse_finds_the_newest_result_in_time_else_the_oldest_unfinished_task(
    store: SqlTaskStore,
) -> None:
    def keyed(key: str, minutes: int) -> Task:
        task = replace(
            make_task(created_at=BASE_TIME + timedelta(minutes=minutes)), content_key=key
        )
        return created(store, task)

    def succeeded(task: Task, minutes: int) -> Task:
        running = advanced(store, task, lambda t: t.start(BASE_TIME))
        return advanced(
            store, running, lambda t: t.succeed(RESULT, BASE_TIME + timedelta(minutes=minutes))
        )

    old, newer = succeeded(keyed("a" * 64, 0), 1), succeeded(keyed("a" * 64, 1), 2)
    waiting_first, _ = keyed("b" * 64, 3), keyed("b" * 64, 4)
    expired = succeeded(keyed("c" * 64, 0), 1)
    failed = advanced(store, keyed("d" * 64, 0), lambda t: t.fail(TaskError("X", "X", "x")))
    follower = created(
        store,
        replace(
            make_task(created_at=BASE_TIME + timedelta(minutes=5)),
            content_key="b" * 64,
            reused_from=waiting_first.id,
        ),
    )

    found = store.reusable(
        ["a" * 64, "b" * 64, "c" * 64, "d" * 64, "e" * 64],
        BASE_TIME + timedelta(minutes=1, seconds=30),
    )

    assert found["a" * 64] == newer and old.id != newer.id
    assert found["b" * 64].id == waiting_first.id  # no result yet: the oldest to wait for
    assert set(found) == {"a" * 64, "b" * 64}  # expired, failed and unknown keys find nothing
    assert expired.state is TaskState.SUCCEEDED and failed.state is TaskState.FAILED
    assert store.reusable([], BASE_TIME) == {}
    assert [t.id for t in store.waiting_for(waiting_first.id)] == [follower.id]
    assert store.get_task(follower.id) == follower  # reused_from and content_key are kept
    started = advanced(store, follower, lambda t: t.start(BASE_TIME))
    assert (
        store.waiting_for(waiting_first.id) == [] and store.get_task(started.id).reused_from == ""
    )


def test_create_is_idempotent_per_user_and_request_id(store: SqlTaskStore) -> None:
    first = created(store, make_task(request_id="req-1"))
    retry = make_task(request_id="req-1")

    assert store.create_task(retry) == (first, False)
    assert store.get_task(retry.id) is None

    bobs = make_task("bob", request_id="req-1")
    assert store.create_task(bobs) == (bobs, True)


def test_a_group_commit_creates_each_task_once_and_answers_each_in_order(
    store: SqlTaskStore,
) -> None:
    earlier = created(store, make_task(request_id="req-1"))
    fresh = make_task(labels={"k": "v"})
    retried = make_task(request_id="req-1")
    twice = make_task(request_id="req-2")
    again = make_task(request_id="req-2")  # the same request id later in the same group

    outcomes = store.create_tasks([fresh, retried, twice, again])

    assert outcomes == [(fresh, True), (earlier, False), (twice, True), (twice, False)]
    assert store.get_task(fresh.id) == fresh
    assert store.get_task(retried.id) is None and store.get_task(again.id) is None
    assert [event.version for event in store.list_events(twice.id, 0)] == [1]


def test_a_group_commit_with_a_clash_other_than_a_request_id_stores_nothing(
    store: SqlTaskStore,
) -> None:
    existing = created(store, make_task())
    fresh = make_task()

    with pytest.raises(IntegrityError):
        store.create_tasks([fresh, replace(make_task(), id=existing.id)])

    assert store.get_task(fresh.id) is None


def test_tasks_without_a_request_id_are_never_deduplicated(store: SqlTaskStore) -> None:
    one, two = make_task(), make_task()

    assert store.create_task(one)[1] and store.create_task(two)[1]
    assert store.get_task(two.id) == two


def test_racing_creates_with_one_request_id_make_one_task(store: SqlTaskStore) -> None:
    attempts = [make_task(request_id="raced") for _ in range(8)]

    outcomes = run_concurrently([lambda t=t: store.create_task(t) for t in attempts])

    assert sorted(was_created for _, was_created in outcomes) == [False] * 7 + [True]
    assert len({task.id for task, _ in outcomes}) == 1


def test_another_users_task_is_none(store: SqlTaskStore) -> None:
    task = created(store, make_task("alice"))

    assert store.get_task(task.id, "bob") is None
    assert store.get_task(task.id, "alice") == task


def test_malformed_and_unknown_ids_find_nothing(store: SqlTaskStore) -> None:
    created(store, make_task())
    unknown = str(uuid.uuid4())

    assert store.get_task("not-a-uuid") is None
    assert store.get_task(unknown) is None
    assert store.get_batch("not-a-uuid") is None
    assert store.get_batch(unknown) is None
    assert store.list_events("not-a-uuid", 0) == []
    assert store.list_tasks(TaskQuery("alice", batch_id="not-a-uuid"), 10) == []
    with pytest.raises(InvalidArgument):
        store.list_tasks(TaskQuery("alice"), 10, PageCursor(BASE_TIME, "forged"))


# -- transitions and events ---------------------------------------------------------------------


def test_of_two_transitions_from_one_version_only_the_first_is_saved(store: SqlTaskStore) -> None:
    task = created(store, make_task())
    started, cancelled = task.start(), task.cancel()

    assert store.save_transition(started)
    assert not store.save_transition(cancelled)
    assert not store.save_transition(started)  # replaying a saved transition is stale too
    assert store.get_task(task.id) == started


def test_racing_transitions_from_one_version_exactly_one_wins(store: SqlTaskStore) -> None:
    task = created(store, make_task())
    rivals = [task.start(BASE_TIME + timedelta(seconds=n)) for n in range(8)]

    outcomes = run_concurrently([lambda r=r: (r, store.save_transition(r)) for r in rivals])

    winners = [rival for rival, saved in outcomes if saved]
    assert len(winners) == 1
    assert store.get_task(task.id) == winners[0]
    assert store.list_events(task.id, 0) == [task, winners[0]]


def test_events_replay_in_version_order_after_a_version(store: SqlTaskStore) -> None:
    history = [created(store, make_task(labels={"k": "v"}))]
    for step in (
        lambda t: t.start(),
        lambda t: t.enter_stage(Stage.FETCH),
        lambda t: t.enter_stage(Stage.EDIT),
        lambda t: t.succeed(RESULT),
    ):
        history.append(advanced(store, history[-1], step))
    created(store, make_task())  # another task's events stay out

    assert [t.version for t in history] == [1, 2, 3, 4, 5]
    assert store.list_events(history[0].id, 0) == history
    assert store.list_events(history[0].id, 2) == history[2:]
    assert store.list_events(history[0].id, 5) == []


def test_unfinished_tasks_are_the_queued_and_running_ones_oldest_first(store: SqlTaskStore) -> None:
    at = [BASE_TIME + timedelta(minutes=n) for n in range(5)]
    queued_late = created(store, make_task("alice", created_at=at[4]))
    running = advanced(store, created(store, make_task("bob", created_at=at[1])), Task.start)
    queued_early = created(store, make_task("carol", created_at=at[0]))
    succeeded = advanced(store, created(store, make_task(created_at=at[2])), Task.start)
    advanced(store, succeeded, lambda t: t.succeed(RESULT))
    advanced(store, created(store, make_task(created_at=at[3])), Task.cancel)

    assert store.unfinished_tasks() == [queued_early, running, queued_late]


# -- listing --------------------------------------------------------------------------------------


def test_listing_shows_only_the_users_tasks_newest_first(store: SqlTaskStore) -> None:
    older = created(store, make_task(created_at=BASE_TIME))
    newer = created(store, make_task(created_at=BASE_TIME + timedelta(seconds=1)))
    created(store, make_task("bob"))

    assert store.list_tasks(TaskQuery("alice"), 10) == [newer, older]


def test_listing_filters_by_state(store: SqlTaskStore) -> None:
    queued = created(store, make_task())
    running = advanced(store, created(store, make_task()), Task.start)
    failed = advanced(
        store, created(store, make_task()), lambda t: t.fail(TaskError("A", "B", "c"))
    )

    def by_states(*states: TaskState) -> set[str]:
        return set(ids(store.list_tasks(TaskQuery("alice", frozenset(states)), 10)))

    assert by_states(TaskState.RUNNING) == {running.id}
    assert by_states(TaskState.QUEUED, TaskState.FAILED) == {queued.id, failed.id}
    assert by_states(TaskState.SUCCEEDED) == set()


def test_listing_filters_by_batch(store: SqlTaskStore) -> None:
    batch, batch_tasks = make_batch()
    store.create_batch(batch, batch_tasks)
    created(store, make_task())

    listed = store.list_tasks(TaskQuery("alice", batch_id=batch.id), 10)

    assert set(ids(listed)) == set(batch.task_ids)


def test_listing_filters_by_labels_all_of_which_must_match(store: SqlTaskStore) -> None:
    prod_a = created(store, make_task(labels={"env": "prod", "team": "a"}))
    prod_b = created(store, make_task(labels={"env": "prod", "team": "b"}))
    created(store, make_task(labels={"env": "dev", "team": "b"}))
    created(store, make_task())

    def by_labels(**labels: str) -> set[str]:
        return set(ids(store.list_tasks(TaskQuery("alice", labels=labels), 10)))

    assert by_labels(env="prod") == {prod_a.id, prod_b.id}
    assert by_labels(env="prod", team="b") == {prod_b.id}
    assert by_labels(env="staging") == set()
    assert by_labels(team="a", owner="x") == set()


def test_listing_filters_by_creation_time_from_inclusive_to_exclusive(store: SqlTaskStore) -> None:
    at = [BASE_TIME + timedelta(hours=n) for n in range(4)]
    tasks = [created(store, make_task(created_at=moment)) for moment in at]

    query = TaskQuery("alice", created_after=at[1], created_before=at[3])

    assert store.list_tasks(query, 10) == [tasks[2], tasks[1]]


@pytest.mark.parametrize("labels", [{}, {"even": "yes"}], ids=["all", "label-filter"])
def test_pages_cover_every_task_once_in_order(store: SqlTaskStore, labels: dict[str, str]) -> None:
    tasks = []
    for n in range(23):
        # Three tasks share each timestamp, so the id must break ties between pages.
        moment = BASE_TIME + timedelta(seconds=n // 3)
        task = make_task(created_at=moment, labels={"even": "yes"} if n % 2 == 0 else {})
        tasks.append(created(store, task))
        created(store, make_task("bob", created_at=moment, labels={"even": "yes"}))
    matching = [t for t in tasks if labels.items() <= t.labels.items()]
    newest_first = sorted(matching, key=lambda t: (t.created_at, uuid.UUID(t.id)), reverse=True)

    pages = page_through(store, TaskQuery("alice", labels=labels), limit=5)

    assert [task for page in pages for task in page] == newest_first
    assert len(pages) == -(-len(matching) // 5)


# -- batches --------------------------------------------------------------------------------------


def test_a_batch_and_its_tasks_are_created_together(store: SqlTaskStore) -> None:
    batch, batch_tasks = make_batch(request_id="batch-1", size=3)

    assert store.create_batch(batch, batch_tasks) == (batch, True)

    assert store.get_batch(batch.id) == batch
    assert store.get_batch(batch.id, "alice") == batch
    assert store.get_batch(batch.id, "bob") is None
    assert [store.get_task(task_id) for task_id in batch.task_ids] == batch_tasks
    assert store.list_events(batch_tasks[0].id, 0) == [batch_tasks[0]]


def test_a_batch_keeps_its_request_digest_and_refused_items(store: SqlTaskStore) -> None:
    batch, batch_tasks = make_batch(request_id="batch-1", size=2)
    refused = RejectedItem(1, "INVALID_ARGUMENT", "SOURCE_MISSING", "no image", (("a.b", "c"),))
    batch = replace(batch, request_digest="ab" * 32, rejected=(refused,))
    store.create_batch(batch, batch_tasks)

    stored = store.get_batch(batch.id)
    assert stored == batch and stored.size == 3
    assert stored.rejected[0].error().field_violations == {"a.b": "c"}


def test_a_task_keeps_its_request_digest(store: SqlTaskStore) -> None:
    task = replace(make_task(request_id="r-1"), request_digest="cd" * 32)
    created(store, task)
    assert store.get_task(task.id) == task
    assert store.create_task(replace(task, id=str(uuid.uuid4())))[0].request_digest == "cd" * 32


def test_a_batch_is_inserted_with_one_statement_per_table(database_url: str) -> None:
    engine = create_engine_for(database_url)
    inserts: list[tuple[str, int, bool]] = []

    def record(_conn: object, _cursor: object, sql: str, params: object, *rest: object) -> None:
        if sql.startswith("INSERT"):
            rows = len(params) if isinstance(params, list) else 1  # an executemany, or one
            inserts.append((sql.split("(")[0].split()[-1], rows))

    event.listen(engine, "before_cursor_execute", record)
    batch, batch_tasks = make_batch(size=100, labels={"a": "1"})
    SqlTaskStore(engine).create_batch(batch, batch_tasks)
    engine.dispose()
    # One executemany per table (psycopg pipelines it: one round trip), not a call per row.
    assert sorted(inserts) == [
        ("batches", 1),
        ("task_events", 100),
        ("task_labels", 100),
        ("tasks", 100),
    ]


def test_batch_create_is_idempotent_per_user_and_request_id(store: SqlTaskStore) -> None:
    batch, batch_tasks = make_batch(request_id="batch-1")
    store.create_batch(batch, batch_tasks)
    retry, retry_tasks = make_batch(request_id="batch-1")

    assert store.create_batch(retry, retry_tasks) == (batch, False)
    assert store.get_batch(retry.id) is None
    assert all(store.get_task(task.id) is None for task in retry_tasks)

    bobs, bobs_tasks = make_batch("bob", request_id="batch-1")
    assert store.create_batch(bobs, bobs_tasks) == (bobs, True)
    no_request_id = make_batch(), make_batch()
    assert all(store.create_batch(*made)[1] for made in no_request_id)


def test_a_batch_that_cannot_be_stored_leaves_nothing_behind(store: SqlTaskStore) -> None:
    existing = created(store, make_task())
    batch, batch_tasks = make_batch(size=2)
    clash = replace(batch_tasks[1], id=existing.id)  # a primary key already taken
    batch = replace(batch, task_ids=(batch_tasks[0].id, existing.id))

    with pytest.raises(IntegrityError):
        store.create_batch(batch, [batch_tasks[0], clash])

    assert store.get_batch(batch.id) is None
    assert store.get_task(batch_tasks[0].id) is None
    assert store.get_task(existing.id) == existing


# -- API keys -------------------------------------------------------------------------------------


def test_api_keys_are_listed_used_and_revoked(store: SqlTaskStore) -> None:
    _, alices = create_api_key(store, "ci", user_id="alice")
    _, bobs = create_api_key(store, "other", user_id="bob")
    assert [k.id for k in store.list_api_keys()] == [alices.id, bobs.id]
    assert store.list_api_keys("bob") == [bobs]

    store.touch_api_key(alices.id, BASE_TIME)
    revoked = store.revoke_api_key(alices.id, BASE_TIME + timedelta(minutes=1))
    again = store.revoke_api_key(alices.id, BASE_TIME + timedelta(minutes=5))

    assert revoked is not None and revoked.last_used_at == BASE_TIME
    assert revoked.revoked_at == BASE_TIME + timedelta(minutes=1)
    assert again == revoked  # the first revocation's time stays
    assert store.find_api_key(alices.key_hash) == revoked
    assert store.revoke_api_key(str(uuid.uuid4()), BASE_TIME) is None
    assert store.revoke_api_key("not-an-id", BASE_TIME) is None


def test_api_keys_are_found_by_the_hash_of_their_secret(store: SqlTaskStore) -> None:
    plaintext, record = create_api_key(store, "ci", user_id="alice")

    assert store.find_api_key(hash_api_key(plaintext)) == record
    assert store.find_api_key(hash_api_key(plaintext + "x")) is None


# -- schema ---------------------------------------------------------------------------------------


def test_the_migrated_schema_is_the_tables_metadata(database_url: str) -> None:
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = create_engine_for(database_url)
    try:
        with engine.connect() as connection:
            # Server defaults too: a column added to existing rows needs one (batches.unfinished).
            context = MigrationContext.configure(connection, opts={"compare_server_default": True})
            assert context.get_current_revision() == head
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()


# Each child imports everything, says so, then waits for the word to migrate: a tight race.
_UPGRADE_WHEN_TOLD = """
import sys
from imageeditor.core.adapters.sql.engine import upgrade_database
print("ready", flush=True)
sys.stdin.readline()
upgrade_database(sys.argv[1])
"""


@pytest.mark.postgres
def test_concurrent_upgrades_of_one_postgres_database_all_succeed(fresh_postgres_url: str) -> None:
    # Separate processes, as replicas would be (Alembic's context is global to a process).
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _UPGRADE_WHEN_TOLD, fresh_postgres_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline() == "ready\n"

    for process in processes:
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    errors = [process.communicate(timeout=60)[1] for process in processes]

    assert [process.returncode for process in processes] == [0] * len(processes), errors


def test_get_tasks_keeps_the_order_given_and_skips_unknown_ids(store: SqlTaskStore) -> None:
    first, second = make_task(labels={"env": "prod"}), make_task()
    store.create_task(first)
    store.create_task(second)

    found = store.get_tasks([second.id, str(uuid.uuid4()), "not-a-uuid", first.id])

    assert found == [second, first]


# -- admission ------------------------------------------------------------------------------------


def waiting_task(user_id: str = "alice", minutes: int = 0) -> Task:
    return replace(
        make_task(user_id, created_at=BASE_TIME + timedelta(minutes=minutes)), admitted=False
    )


def test_admission_takes_the_oldest_waiting_tasks_up_to_the_cap(store: SqlTaskStore) -> None:
    tasks = [created(store, waiting_task(minutes=n)) for n in (3, 1, 2, 0)]
    created(store, waiting_task("bob"))

    first = store.admit_waiting("alice", cap=2)
    assert [t.id for t in first] == [tasks[3].id, tasks[1].id]  # minutes 0 and 1
    assert all(t.admitted for t in first)
    assert store.admit_waiting("alice", cap=2) == []  # two are admitted and unfinished

    advanced(store, store.get_task(first[0].id), Task.start)  # type: ignore[arg-type]
    assert store.admit_waiting("alice", cap=2) == []  # RUNNING counts too
    running = store.get_task(first[0].id)
    assert running is not None
    advanced(store, running, lambda t: t.fail(TaskError("INTERNAL", "X", "x")))
    assert [t.id for t in store.admit_waiting("alice", cap=2)] == [tasks[2].id]
    assert sorted(store.users_waiting(10)) == ["alice", "bob"]


def test_concurrent_admissions_never_admit_past_the_cap(store: SqlTaskStore) -> None:
    for n in range(6):
        created(store, waiting_task(minutes=n))

    admitted = run_concurrently([lambda: store.admit_waiting("alice", cap=3)] * 4)

    assert sum(len(batch) for batch in admitted) == 3
    ids = [t.id for batch in admitted for t in batch]
    assert len(set(ids)) == len(ids)


def test_the_unfinished_counts_are_per_state(store: SqlTaskStore) -> None:
    assert store.count_unfinished() == {TaskState.QUEUED: 0, TaskState.RUNNING: 0}
    for _ in range(3):
        created(store, make_task())
    running = advanced(store, created(store, make_task()), lambda t: t.start(BASE_TIME))
    advanced(store, running, lambda t: t.succeed(RESULT, BASE_TIME))
    advanced(store, created(store, make_task()), lambda t: t.start(BASE_TIME))
    assert store.count_unfinished() == {TaskState.QUEUED: 3, TaskState.RUNNING: 1}
