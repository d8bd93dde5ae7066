"""`make bench` (third part): the service around the pipeline against its own parts.

Every case starts what it needs on loopback (a throwaway PostgreSQL database, the local Redis,
a private Redis broker, worker processes, the reference servers), runs ours and the reference
alternately, ROUNDS times, and prints medians with the ratio and its target (issue 11):

  submit    SubmitTask of a 1 KB inline PNG from a grpc.aio client at concurrency 50, in
            production and embedded mode (no workers), against a bare grpc.aio server of the
            generated SubmitTask answering a response of the same size: ≥ 0.5x its calls/s,
            p99 ≤ 3x its p99.
  batch     BatchSubmit of 100 and 1,000 items in production: ≥ 5,000 and ≥ 10,000 accepted
            tasks/s; references: a PostgreSQL executemany of the same rows, Celery
            apply_async of the same messages one by one.
  roundtrip submit → terminal event of a 1 KB job, one worker, sequential: median ≤ 2x a raw
            Celery no-op delay() → get() on the same Redis.
  watch     WatchTask fan-out on one production server, 500 tasks x 10 watchers (5,000
            streams), 2 workers: 100% of transitions in order, p99 ≤ 250 ms, RSS ≤ 400 MB.
  resize    12 MP JPEG jobs through the whole service (inline → fit 1024 → JPEG q85, submit →
            watch → GetResult), 4 concurrent clients, embedded and production: ≥ 1.25x the
            jobs/s of thumbor 7.8 with 2 processes on its file loader, and CPU per job (every
            process of the service) ≤ 1.3x the pipeline's own; 2 edit workers ≥ 1.7x one.
  removal   background removal of three photos by 2 concurrent clients through the whole
            service (embedded) against `rembg s` 2.0.86 on the same model file: ≥ 1.3x its
            images/s at ≤ 0.75x its memory (issue 14).
  reuse     the same 12 MP job submitted again (result reuse, issue 14): submit → SUCCEEDED of
            the identical job ≤ 0.2x the first's, which ran; embedded and production.

Every load generator runs in a process of its own. `python bench/service.py submit watch`
runs some cases; BENCH_ROUNDS (3) and BENCH_SECONDS (5) change the effort.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONCURRENCY = 50
SUBMIT = "/imageeditor.v1.ImageEditorService/SubmitTask"
POSTGRES_SERVER = os.environ.get(
    "IMAGEEDITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("IMAGEEDITOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
# Production runs with /metrics on, as deployed; BENCH_METRICS=0 measures without.
METRICS = os.environ.get("BENCH_METRICS", "1") != "0"
# The bench measures the service, not its per-user limits.
UNLIMITED = {
    "IMAGEEDITOR_SUBMIT_RATE": "1000000",
    "IMAGEEDITOR_SUBMIT_BURST": "1000000",
    "IMAGEEDITOR_BATCH_RATE": "1000000",
    "IMAGEEDITOR_BATCH_BURST": "1000000",
    "IMAGEEDITOR_MAX_BATCH_SIZE": "1000",
    "IMAGEEDITOR_MAX_WATCH_STREAMS_PER_USER": "100000",
    # The cases that measure runs submit the same image again and again, which result reuse
    # would answer without a run; the reuse case turns it on (and the submit case measures
    # submits as deployed, with it on).
    "IMAGEEDITOR_RESULT_REUSE": "off",
}


# -- what the cases share ------------------------------------------------------------------------


def png_1kb() -> bytes:
    from PIL import Image

    image = Image.effect_noise((24, 24), 40).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def submit_request(image: bytes, **fields: Any) -> bytes:
    from imageeditor.v1 import image_editor_service_pb2 as pb

    return pb.SubmitTaskRequest(image_data=image, **fields).SerializeToString()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def in_process(function: Callable[..., Any], *args: Any) -> Any:
    """Run `function(*args)` in a fresh spawned process and return its result."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(function, args)


def row(*cells: object) -> str:
    return "  ".join(f"{c:>11}" if i else f"{c:<44}" for i, c in enumerate(cells))


def verdict(ok: bool) -> str:
    return "yes" if ok else "NO"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A throwaway database on the local PostgreSQL server, migrated to head."""
    import secrets

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from imageeditor.core.adapters.sql.engine import upgrade_database

    admin = create_engine(make_url(POSTGRES_SERVER), isolation_level="AUTOCOMMIT")
    name = f"imageeditor_bench_{secrets.token_hex(4)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_database(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass
class Deployment:
    address: str
    api_key: str
    server_pid: int
    cluster: Any = None  # production: tests.e2e.production_harness.Cluster


@contextlib.contextmanager
def production(workers: int = 0, **settings: str) -> Iterator[Deployment]:
    """One production server (PostgreSQL, Redis, a private Redis broker) and `workers`."""
    from tests.e2e.production_harness import (
        SHORT_TIMINGS,
        RedisBroker,
        cluster_env,
        start_cluster,
    )

    broker = RedisBroker().start()
    try:
        with postgres_database() as database, tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            env = cluster_env(database, REDIS_URL, broker.url, root)
            for name in SHORT_TIMINGS:  # the tests' quick recoveries: production's own here
                env.pop(name)
            env.update(UNLIMITED, **settings)
            if METRICS:  # as deployed (deploy/kubernetes): every RPC counted, scraped or not
                from tests.e2e.harness import free_port

                env["IMAGEEDITOR_METRICS_PORT"] = str(free_port())
                if workers == 1:  # workers on one host would share the port
                    env["IMAGEEDITOR_WORKER_METRICS_PORT"] = str(free_port())
            cluster = start_cluster(root, env, servers=1, workers=workers)
            try:
                server = cluster.servers[0]
                assert server.process is not None
                yield Deployment(server.address, cluster.api_key, server.process.pid, cluster)
            finally:
                cluster.stop()
    finally:
        broker.stop()


@contextlib.contextmanager
def embedded(workers: int = 2, **settings: str) -> Iterator[Deployment]:
    from tests.e2e.harness import ServerProcess, free_port

    with tempfile.TemporaryDirectory() as folder:
        server = ServerProcess(Path(folder), free_port(), workers, **{**UNLIMITED, **settings})
        server.start()
        try:
            assert server.process is not None
            yield Deployment(server.address, server.api_key, server.process.pid)
        finally:
            server.stop()


# -- load generators (each in a process of its own) -----------------------------------------------


def unary_load(
    address: str, method: str, request: bytes, api_key: str, concurrency: int, seconds: float
) -> tuple[int, list[float], float]:
    """`concurrency` callers sending `request` back to back for `seconds`: calls made, their
    latencies, and the wall time."""
    import grpc

    async def run() -> tuple[int, list[float], float]:
        options = [("grpc.max_send_message_length", 64 * 2**20)]
        async with grpc.aio.insecure_channel(address, options=options) as channel:
            call = channel.unary_unary(method)
            metadata = (("authorization", f"Bearer {api_key}"),)
            await call(request, metadata=metadata, timeout=30)  # connected and warm
            latencies: list[float] = []
            deadline = time.perf_counter() + seconds

            async def caller() -> None:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    await call(request, metadata=metadata, timeout=30)
                    latencies.append(time.perf_counter() - started)

            started = time.perf_counter()
            await asyncio.gather(*(caller() for _ in range(concurrency)))
            return len(latencies), latencies, time.perf_counter() - started

    return asyncio.run(run())


# -- the reference servers -------------------------------------------------------------------------


def echo_server(port: int, response: bytes, ready: Any) -> None:
    """A bare grpc.aio server of the generated SubmitTask: it parses the request as ours
    does and answers a response message of the same size as ours, doing nothing else."""
    import grpc

    from imageeditor.v1 import image_editor_service_pb2 as pb
    from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc

    answer = pb.SubmitTaskResponse.FromString(response)

    class Echo(pb_grpc.ImageEditorServiceServicer):
        async def SubmitTask(self, request: Any, context: Any) -> Any:
            return answer

    async def serve() -> None:
        server = grpc.aio.server()
        pb_grpc.add_ImageEditorServiceServicer_to_server(Echo(), server)
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        ready.set()
        await server.wait_for_termination()

    asyncio.run(serve())


@contextlib.contextmanager
def echo(response: bytes) -> Iterator[Deployment]:
    from tests.e2e.harness import free_port

    port = free_port()
    spawn = mp.get_context("spawn")
    ready = spawn.Event()
    process = spawn.Process(target=echo_server, args=(port, response, ready), daemon=True)
    process.start()
    ready.wait(30)
    try:
        assert process.pid is not None
        yield Deployment(f"127.0.0.1:{port}", "", process.pid)
    finally:
        process.terminate()
        process.join()


# -- case: SubmitTask ----------------------------------------------------------------------------


def submit_case() -> None:
    print(f"SubmitTask, 1 KB inline PNG, concurrency {CONCURRENCY}, {SECONDS:.0f} s a round")
    print(row("", "calls/s", "p50 ms", "p99 ms", "x echo/s", "p99 x echo", "≥0.5, ≤3"))
    request = submit_request(png_1kb())
    # No workers in either mode: the case measures the edge and the store, and tasks left
    # running from one round must not take the CPU from the next (embedded workers would).
    modes: dict[str, Callable[[], contextlib.AbstractContextManager[Deployment]]] = {
        "production": lambda: production(IMAGEEDITOR_RESULT_REUSE="user"),
        "embedded": lambda: embedded(workers=0, IMAGEEDITOR_RESULT_REUSE="user"),
    }
    for name, start in modes.items():
        with start() as ours:
            response = _one_response(ours, request)
            with echo(response) as reference:
                figures: dict[str, list[tuple[float, float, float]]] = {"ours": [], "echo": []}
                for _ in range(ROUNDS):
                    for side, target in (("echo", reference), ("ours", ours)):
                        figures[side].append(_unary_round(target, request))
        us, them = _medians(figures["ours"]), _medians(figures["echo"])
        ratio, p99_ratio = us[0] / them[0], us[2] / them[2]
        print(row(f"echo (reference for {name})", *(f"{v:.0f}" for v in them), "", "", ""))
        print(
            row(
                f"ours, {name}",
                *(f"{v:.0f}" if i == 0 else f"{v:.1f}" for i, v in enumerate(us)),
                f"{ratio:.2f}",
                f"{p99_ratio:.2f}",
                verdict(ratio >= 0.5 and p99_ratio <= 3),
            )
        )


def _one_response(target: Deployment, request: bytes) -> bytes:
    """What our SubmitTask answers, serialized: the echo answers as many bytes."""
    import grpc

    with grpc.insecure_channel(target.address) as channel:
        call = channel.unary_unary(SUBMIT)
        answer: bytes = call(request, metadata=(("authorization", f"Bearer {target.api_key}"),))
        return answer


def _unary_round(target: Deployment, request: bytes) -> tuple[float, float, float]:
    calls, latencies, wall = in_process(
        unary_load, target.address, SUBMIT, request, target.api_key, CONCURRENCY, SECONDS
    )
    return calls / wall, statistics.median(latencies) * 1000, percentile(latencies, 0.99) * 1000


def _medians(rounds: list[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(statistics.median(column) for column in zip(*rounds, strict=True))


# -- case: BatchSubmit ----------------------------------------------------------------------------

BATCH = "/imageeditor.v1.ImageEditorService/BatchSubmit"
BATCH_TARGETS = {100: 5_000, 1_000: 10_000}


def batch_request(size: int) -> bytes:
    from imageeditor.v1 import image_editor_service_pb2 as pb

    item = pb.SubmitTaskRequest.FromString(submit_request(png_1kb()))
    return pb.BatchSubmitRequest(requests=[item] * size).SerializeToString()


def sequential_calls(
    address: str, method: str, request: bytes, api_key: str, count: int
) -> list[float]:
    """`count` calls one after the other (after one to warm up): their latencies."""
    import grpc

    options = [("grpc.max_send_message_length", 64 * 2**20)]
    with grpc.insecure_channel(address, options=options) as channel:
        call = channel.unary_unary(method)
        metadata = (("authorization", f"Bearer {api_key}"),)
        call(request, metadata=metadata, timeout=60)
        seconds = []
        for _ in range(count):
            started = time.perf_counter()
            call(request, metadata=metadata, timeout=60)
            seconds.append(time.perf_counter() - started)
    return seconds


def store_reference(database: str, size: int, count: int) -> list[float]:
    """The same task rows, inserted by a PostgreSQL executemany (the driver's), a
    transaction per call: seconds per call."""
    from sqlalchemy import insert

    from imageeditor.core.adapters.sql import tables
    from imageeditor.core.adapters.sql.engine import create_engine_for
    from imageeditor.core.adapters.sql.rows import task_to_row
    from imageeditor.core.sealing import NO_SEALING
    from imageeditor.core.spec import TaskSpec
    from imageeditor.core.task import Task

    engine = create_engine_for(database)
    spec = TaskSpec(input_key="inputs/x", input_size=1024)
    seconds = []
    for _ in range(count + 1):
        rows = [
            task_to_row(Task(id=str(uuid.uuid4()), user_id="ref", spec=spec), NO_SEALING)
            for _ in range(size)
        ]
        started = time.perf_counter()
        with engine.begin() as connection:
            connection.execute(insert(tables.tasks), rows)  # the driver's executemany
        seconds.append(time.perf_counter() - started)
    engine.dispose()
    return seconds[1:]


def broker_reference(broker_url: str, size: int, count: int) -> list[float]:
    """The same number of messages, published by Celery's apply_async one by one to the same
    kind of broker (the task body: a task snapshot of the same size): seconds per batch."""
    from celery import Celery

    from imageeditor.core.adapters.celery.config import TASK_NAME, celery_config
    from imageeditor.core.settings import Settings
    from imageeditor.core.snapshot import task_to_dict
    from imageeditor.core.spec import TaskSpec
    from imageeditor.core.task import Task

    settings = Settings(broker_url=broker_url, redis_url=broker_url)
    app = Celery("bench")
    app.conf.update(celery_config(settings))
    body = task_to_dict(Task(id=str(uuid.uuid4()), user_id="ref", spec=TaskSpec()))
    seconds = []
    for _ in range(count + 1):
        started = time.perf_counter()
        for _ in range(size):
            app.send_task(TASK_NAME, kwargs={"task": body}, queue="edits")
        seconds.append(time.perf_counter() - started)
    return seconds[1:]


def batch_case() -> None:
    print(f"BatchSubmit of 1 KB inline PNGs, production, one call at a time, {ROUNDS} rounds")
    print(row("", "tasks/s", "ms/call", "target/s", "", "", "met"))
    for variant, settings in (
        ("default admission cap (16)", {}),
        ("no cap: every item dispatched", {"IMAGEEDITOR_MAX_DISPATCHED_PER_USER": "0"}),
    ):
        with production(**settings) as ours:
            for size, target in BATCH_TARGETS.items():
                request = batch_request(size)
                calls = max(3, 3000 // size)
                figures = {"ours": [], "store": [], "broker": []}  # type: dict[str, list[float]]
                database = ours.cluster.env["IMAGEEDITOR_DATABASE_URL"]
                broker = ours.cluster.env["IMAGEEDITOR_BROKER_URL"]
                for _ in range(ROUNDS):
                    figures["ours"] += in_process(
                        sequential_calls, ours.address, BATCH, request, ours.api_key, calls
                    )
                    if variant.startswith("default"):
                        figures["store"] += in_process(store_reference, database, size, calls)
                        figures["broker"] += in_process(broker_reference, broker, size, 2)
                per_call = statistics.median(figures["ours"])
                rate = size / per_call
                label = f"ours, {size} items, {variant}"
                print(
                    row(
                        label,
                        f"{rate:.0f}",
                        f"{per_call * 1000:.0f}",
                        target,
                        "",
                        "",
                        verdict(rate >= target),
                    )
                )
                for name, title in (
                    ("store", "PostgreSQL executemany"),
                    ("broker", "Celery apply_async, one by one"),
                ):
                    if figures[name]:
                        seconds = statistics.median(figures[name])
                        print(
                            row(
                                f"  {title}, {size} rows",
                                f"{size / seconds:.0f}",
                                f"{seconds * 1000:.0f}",
                                "",
                                "",
                                "",
                                "",
                            )
                        )


# -- case: submit → terminal event ---------------------------------------------------------------

ROUND_TRIPS = int(os.environ.get("BENCH_ROUND_TRIPS", "100"))


def service_round_trips(address: str, api_key: str, count: int) -> list[float]:
    """Submit a 1 KB job, then watch it to its terminal event; one job at a time. Seconds
    from the submit's start to the terminal event's arrival, per job."""
    import grpc

    from imageeditor.v1 import image_editor_service_pb2 as pb
    from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc
    from imageeditor.v1 import task_pb2

    succeeded = task_pb2.TASK_STATE_SUCCEEDED
    terminal = (succeeded, task_pb2.TASK_STATE_FAILED, task_pb2.TASK_STATE_CANCELLED)
    request = pb.SubmitTaskRequest.FromString(submit_request(png_1kb()))
    metadata = (("authorization", f"Bearer {api_key}"),)
    seconds = []
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.ImageEditorServiceStub(channel)
        for _ in range(count + 3):  # the first ones warm up
            started = time.perf_counter()
            task = stub.SubmitTask(request, metadata=metadata, timeout=30).task
            watch = pb.WatchTaskRequest(task_id=task.id, after_version=task.version)
            for event in stub.WatchTask(watch, metadata=metadata, timeout=30):
                if event.task.state in terminal:
                    if event.task.state != succeeded:
                        raise RuntimeError(f"a bench job ended {event.task.state}")
                    break
            seconds.append(time.perf_counter() - started)
    return seconds[3:]


def celery_round_trips(url: str, count: int) -> list[float]:
    """A Celery no-op's delay() → get(), one at a time: seconds each."""
    os.environ["BENCH_CELERY_URL"] = url
    from bench.celery_noop import noop

    seconds = []
    for _ in range(count + 3):
        started = time.perf_counter()
        noop.delay().get(timeout=30)
        seconds.append(time.perf_counter() - started)
    return seconds[3:]


@contextlib.contextmanager
def celery_noop_worker(url: str) -> Iterator[None]:
    env = {**os.environ, "BENCH_CELERY_URL": url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "celery", "-A", "bench.celery_noop", "worker"]
    command += ["--pool", "solo", "--loglevel", "INFO", "--without-mingle", "--without-gossip"]
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                log.seek(0)
                if b" ready." in log.read():
                    break
                time.sleep(0.1)
            else:
                raise RuntimeError("the reference Celery worker did not start")
            yield
        finally:
            worker.terminate()
            worker.wait(30)


def roundtrip_case() -> None:
    from tests.e2e.production_harness import RedisBroker

    print(
        f"submit → terminal event of a 1 KB job, one worker, one job at a time, {ROUND_TRIPS} jobs"
    )
    print(row("", "median ms", "p99 ms", "x Celery", "", "", "≤2"))
    broker = RedisBroker().start()
    try:
        with celery_noop_worker(broker.url), production(workers=1) as ours:
            figures: dict[str, list[float]] = {"ours": [], "celery": []}
            for _ in range(ROUNDS):
                figures["celery"] += in_process(celery_round_trips, broker.url, ROUND_TRIPS)
                figures["ours"] += in_process(
                    service_round_trips, ours.address, ours.api_key, ROUND_TRIPS
                )
    finally:
        broker.stop()
    reference = statistics.median(figures["celery"])
    print(row("Celery no-op delay() → get() (reference)", *_ms(figures["celery"]), "", "", "", ""))
    ratio = statistics.median(figures["ours"]) / reference
    print(
        row("ours, production", *_ms(figures["ours"]), f"{ratio:.1f}", "", "", verdict(ratio <= 2))
    )


def _ms(seconds: list[float]) -> list[str]:
    return [f"{statistics.median(seconds) * 1000:.1f}", f"{percentile(seconds, 0.99) * 1000:.1f}"]


# -- case: WatchTask fan-out ----------------------------------------------------------------------

FAN_TASKS = int(os.environ.get("BENCH_FAN_TASKS", "500"))
FAN_WATCHERS = int(os.environ.get("BENCH_FAN_WATCHERS", "10"))
FAN_CLIENTS = 2  # client processes, each with its share of the streams on one channel


def watchers(
    address: str, api_key: str, task_ids: list[str], per_task: int, ready: Any, out: Any
) -> None:
    """`per_task` WatchTask streams on each task, all on one channel, from version 0: for
    each stream the versions it got, how it ended, and each message's delay (arrival minus
    the transition's updated_at)."""
    import grpc

    from imageeditor.v1 import image_editor_service_pb2 as pb

    async def run() -> dict[str, Any]:
        metadata = (("authorization", f"Bearer {api_key}"),)
        async with grpc.aio.insecure_channel(address) as channel:
            watch = channel.unary_stream(
                "/imageeditor.v1.ImageEditorService/WatchTask",
                request_serializer=pb.WatchTaskRequest.SerializeToString,
                response_deserializer=pb.WatchTaskResponse.FromString,
            )
            streams: list[tuple[str, list[int], list[str]]] = []
            delays: list[float] = []
            opened = 0

            async def one(task_id: str) -> None:
                nonlocal opened
                versions: list[int] = []
                ended = ["OK"]
                streams.append((task_id, versions, ended))
                call = watch(pb.WatchTaskRequest(task_id=task_id), metadata=metadata, timeout=600)
                try:
                    async for message in call:
                        if not versions:
                            opened += 1
                            if opened == len(task_ids) * per_task:
                                ready.set()
                        elif message.task.state != 1:  # a transition after the first look
                            delays.append(
                                time.time() - message.task.update_time.ToDatetime().timestamp()
                            )
                        versions.append(message.task.version)
                except grpc.aio.AioRpcError as error:
                    ended[0] = error.code().name

            await asyncio.gather(*(one(t) for t in task_ids for _ in range(per_task)))
            return {"streams": streams, "delays": delays}

    out.put(asyncio.run(run()))


def fanout_case() -> None:
    import grpc

    from imageeditor.v1 import image_editor_service_pb2 as pb
    from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc

    streams = FAN_TASKS * FAN_WATCHERS
    print(f"WatchTask fan-out: {FAN_TASKS} tasks x {FAN_WATCHERS} watchers = {streams} streams on")
    print("one production server; 2 workers start once every stream has its first message")
    print(row("", "delivered", "in order", "p50 ms", "p99 ms", "RSS MB", "100%, ≤250, ≤400"))
    with production(workers=0) as ours:
        request = pb.SubmitTaskRequest.FromString(submit_request(png_1kb()))
        metadata = (("authorization", f"Bearer {ours.api_key}"),)
        with grpc.insecure_channel(ours.address) as channel:
            stub = pb_grpc.ImageEditorServiceStub(channel)
            ids = [stub.SubmitTask(request, metadata=metadata).task.id for _ in range(FAN_TASKS)]
        spawn = mp.get_context("spawn")
        shares = [ids[i::FAN_CLIENTS] for i in range(FAN_CLIENTS)]
        readies, out = [spawn.Event() for _ in shares], spawn.Queue()
        clients = [
            spawn.Process(
                target=watchers, args=(ours.address, ours.api_key, share, FAN_WATCHERS, r, out)
            )
            for share, r in zip(shares, readies, strict=True)
        ]
        for client in clients:
            client.start()
        for ready in readies:
            ready.wait(120)
        workers = [ours.cluster.add_worker() for _ in range(2)]
        for worker in workers:
            worker.start()
        results = [out.get(timeout=900) for _ in clients]
        for client in clients:
            client.join()
        finals = {t.id: t.version for t in ours.cluster.wait_until_finished(ids, 300)}
        rss = rss_mb(ours.server_pid)
    got = [s for r in results for s in r["streams"]]
    delays = [d for r in results for d in r["delays"]]
    # A stream owes every version from its first message (the state it found) to the last.
    expected = sum(finals[t] - (v[0] if v else 1) + 1 for t, v, _ in got)
    delivered = sum(len(versions) for _, versions, _ in got)
    in_order = all(v == list(range(v[0], v[0] + len(v))) for _, v, _ in got if v)
    ends: dict[str, int] = {}
    for _, _, (end,) in got:
        ends[end] = ends.get(end, 0) + 1
    share = delivered / expected
    p99 = percentile(delays, 0.99) * 1000 if delays else float("nan")
    ok = share == 1 and in_order and p99 <= 250 and rss <= 400
    cells = [
        f"{share:.1%}",
        "yes" if in_order else "NO",
        f"{statistics.median(delays) * 1000:.0f}" if delays else "-",
    ]
    print(row(f"ours, {streams} streams", *cells, f"{p99:.0f}", f"{rss:.0f}", verdict(ok)))
    print(f"  streams ended: {ends}")


# -- case: resize jobs through the whole service, against thumbor ---------------------------------

RESIZE_CLIENTS = 4
RESIZE_SECONDS = float(os.environ.get("BENCH_RESIZE_SECONDS", "20"))
# thumbor 7.8 needs Pillow < 13, so it lives in a virtualenv of its own (`make bench` makes it).
THUMBOR = Path(os.environ.get("BENCH_THUMBOR", ROOT / "var/bench/thumbor-venv/bin/thumbor"))


def tree_pids(pid: int) -> list[int]:
    """`pid` and every descendant alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        found.append(todo.pop())
        todo += children.get(found[-1], [])
    return found


def tree_cpu_seconds(pids: list[int]) -> float:
    """CPU seconds of these processes and all their descendants, reaped ones included."""
    total = 0.0
    for pid in {each for root in pids for each in tree_pids(root)}:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    return total


def service_resizes(address: str, api_key: str, photo: str, seconds: float) -> int:
    """RESIZE_CLIENTS callers, each: submit the photo inline (fit 1024, JPEG q85), watch it
    to its end, download the result; for `seconds`. Jobs done."""
    from concurrent.futures import ThreadPoolExecutor

    import grpc

    from imageeditor.v1 import image_editor_service_pb2 as pb
    from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc
    from imageeditor.v1 import operations_pb2, task_pb2

    request = pb.SubmitTaskRequest(
        image_data=Path(photo).read_bytes(),
        operations=[
            operations_pb2.Operation(resize=operations_pb2.Resize(width=1024, height=1024))
        ],
        output=operations_pb2.OutputOptions(format=operations_pb2.IMAGE_FORMAT_JPEG, quality=85),
    )
    metadata = (("authorization", f"Bearer {api_key}"),)
    options = [("grpc.max_send_message_length", 64 * 2**20)]

    def caller(deadline: float) -> int:
        done = 0
        with grpc.insecure_channel(address, options=options) as channel:
            stub = pb_grpc.ImageEditorServiceStub(channel)
            while time.monotonic() < deadline:
                task = stub.SubmitTask(request, metadata=metadata, timeout=60).task
                watch = pb.WatchTaskRequest(task_id=task.id, after_version=task.version)
                for event in stub.WatchTask(watch, metadata=metadata, timeout=60):
                    if event.task.state == task_pb2.TASK_STATE_SUCCEEDED:
                        break
                    if event.task.state in (
                        task_pb2.TASK_STATE_FAILED,
                        task_pb2.TASK_STATE_CANCELLED,
                    ):
                        raise RuntimeError(f"a bench job ended {event.task.state}")
                result = pb.GetResultRequest(task_id=task.id)
                size = sum(len(m.chunk) for m in stub.GetResult(result, metadata=metadata))
                assert size > 0
                done += 1
        return done

    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(RESIZE_CLIENTS) as pool:
        return sum(pool.map(caller, [deadline] * RESIZE_CLIENTS))


def thumbor_resizes(port: int, name: str, seconds: float) -> int:
    """RESIZE_CLIENTS callers GETting the same resize from thumbor for `seconds`: jobs done."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    url = f"http://127.0.0.1:{port}/unsafe/fit-in/1024x1024/filters:quality(85):format(jpeg)/{name}"

    def caller(deadline: float) -> int:
        done = 0
        while time.monotonic() < deadline:
            with urllib.request.urlopen(url, timeout=60) as response:
                assert response.status == 200 and response.read()
            done += 1
        return done

    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(RESIZE_CLIENTS) as pool:
        return sum(pool.map(caller, [deadline] * RESIZE_CLIENTS))


@contextlib.contextmanager
def thumbor(folder: Path) -> Iterator[tuple[int, int]]:
    """thumbor with 2 processes and its file loader on `folder`: (port, pid)."""
    from tests.e2e.harness import free_port

    port = free_port()
    conf = folder / "thumbor.conf"
    conf.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = {str(folder)!r}\n"
        "RESULT_STORAGE = None\nSTORAGE = 'thumbor.storages.no_storage'\n"
        "MAX_WIDTH = 0\nMAX_HEIGHT = 0\nQUALITY = 85\nRESPECT_ORIENTATION = True\n"
    )
    command = [
        str(THUMBOR),
        "-p",
        str(port),
        "-i",
        "127.0.0.1",
        "-c",
        str(conf),
        "--processes",
        "2",
    ]
    # Its own process group: thumbor forks its processes, and they outlive a parent's SIGTERM.
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        # Not watched for an exit: thumbor's parent process may hand over to its forks.
        wait_for_http(f"http://127.0.0.1:{port}/healthcheck", None, "thumbor", 60)
        yield port, server.pid
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def wait_for_http(
    url: str, server: subprocess.Popen[bytes] | None, name: str, seconds: float
) -> None:
    """Return once `url` answers; RuntimeError if `seconds` pass first (or `server`, when
    given, exits)."""
    import urllib.request

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            if time.monotonic() > deadline or (server and server.poll() is not None):
                raise RuntimeError(f"{name} did not start") from None
            time.sleep(0.2)


def pipeline_seconds(photo: str) -> float:
    """The pipeline's own CPU time for the job (validate, edit, encode), in-process: median."""
    sys.path.insert(0, str(ROOT / "bench"))
    from run import ours_resize

    data = Path(photo).read_bytes()
    ours_resize(data, "jpeg")
    seconds = []
    for _ in range(7):
        started = time.process_time()
        ours_resize(data, "jpeg")
        seconds.append(time.process_time() - started)
    return statistics.median(seconds)


def resize_case() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from run import make_inputs

    if not THUMBOR.exists():
        print(f"resize case skipped: no thumbor at {THUMBOR} (`make bench` installs it)")
        return
    photo = make_inputs()["astronaut-12MP"]
    print("resize jobs (12 MP JPEG inline → fit 1024 → JPEG q85, submit → watch → GetResult),")
    print(f"{RESIZE_CLIENTS} concurrent clients, {RESIZE_SECONDS:.0f} s a round")
    print(row("", "jobs/s", "CPU ms/job", "x thumbor", "CPU/pipeline", "", "≥1.25, ≤1.3"))
    pipeline = in_process(pipeline_seconds, str(photo))
    with thumbor(photo.parent) as (port, pid):
        in_process(thumbor_resizes, port, photo.name, 2.0)  # warm
        figures: list[tuple[float, float]] = []
        for _ in range(ROUNDS):
            before = tree_cpu_seconds([pid])
            jobs = in_process(thumbor_resizes, port, photo.name, RESIZE_SECONDS)
            figures.append((jobs / RESIZE_SECONDS, (tree_cpu_seconds([pid]) - before) / jobs))
    reference = statistics.median(rate for rate, _ in figures)
    cpu = statistics.median(c for _, c in figures)
    print(
        row(
            "thumbor 7.8, 2 processes (reference)",
            f"{reference:.1f}",
            f"{cpu * 1000:.0f}",
            "",
            "",
            "",
            "",
        )
    )
    modes: dict[str, Callable[[], contextlib.AbstractContextManager[Deployment]]] = {
        "embedded (2 workers)": embedded,
        "production (1 edit worker)": lambda: production(workers=1),
        "production (2 edit workers)": lambda: production(workers=2),
    }
    rates: dict[str, float] = {}
    for name, start in modes.items():
        with start() as ours:
            pids = [ours.server_pid]
            if ours.cluster is not None:
                pids += [worker.pid for worker in ours.cluster.workers]
            in_process(service_resizes, ours.address, ours.api_key, str(photo), 2.0)
            figures = []
            for _ in range(ROUNDS):
                before = tree_cpu_seconds(pids)
                jobs = in_process(
                    service_resizes, ours.address, ours.api_key, str(photo), RESIZE_SECONDS
                )
                figures.append((jobs / RESIZE_SECONDS, (tree_cpu_seconds(pids) - before) / jobs))
        rate = rates[name] = statistics.median(r for r, _ in figures)
        cpu = statistics.median(c for _, c in figures)
        ok = rate >= 1.25 * reference and cpu <= 1.3 * pipeline
        print(
            row(
                f"ours, {name}",
                f"{rate:.1f}",
                f"{cpu * 1000:.0f}",
                f"{rate / reference:.2f}",
                f"{cpu / pipeline:.2f}",
                "",
                verdict(ok),
            )
        )
    print(f"  the pipeline's own CPU time for the job: {pipeline * 1000:.0f} ms")
    scaling = rates["production (2 edit workers)"] / rates["production (1 edit worker)"]
    print(f"  2 edit workers x 1: {scaling:.2f} (target ≥1.7: {verdict(scaling >= 1.7)})")


# -- case: background removal against `rembg s` ---------------------------------------------------

REMOVAL_CLIENTS = 2
REMOVAL_SECONDS = float(os.environ.get("BENCH_REMOVAL_SECONDS", "20"))
REMOVAL_TARGETS = (1.3, 0.75)  # ≥ rembg's images/s, ≤ its peak RSS
REMOVAL_PHOTOS = ("astronaut", "coffee", "chelsea")
# rembg[cli] 2.0.86 in a virtualenv of its own (`make bench` makes it).
REMBG = Path(os.environ.get("BENCH_REMBG", ROOT / "var/bench/rembg-venv/bin/rembg"))


class PeakMemory:
    """The largest total PSS of a process tree, sampled every 0.2 s while in use. PSS shares
    each page among the processes that map it, so what forked processes have in common
    (a forkserver's preloaded libraries, for one) counts once, not once per process as a sum
    of their peak RSS would."""

    def __init__(self, pid: int) -> None:
        import threading

        self.pid = pid
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            total = 0
            for each in tree_pids(self.pid):
                try:
                    rollup = Path(f"/proc/{each}/smaps_rollup").read_text()
                except OSError:
                    continue
                lines = rollup.splitlines()
                total += next((int(x.split()[1]) for x in lines if x.startswith("Pss:")), 0)
            self.peak_mb = max(self.peak_mb, total / 1024)


def tree_peak_rss_mb(pid: int) -> float:
    """The sum of the peak RSS (VmHWM) of `pid` and its descendants: what the service as a
    whole needed at most (an upper bound: the peaks need not coincide)."""
    total = 0
    for each in tree_pids(pid):
        try:
            status = Path(f"/proc/{each}/status").read_text()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0
        )
    return total / 1024


@contextlib.contextmanager
def rembg_server(folder: Path) -> Iterator[tuple[int, int]]:
    """`rembg s` on loopback with a copy of the provisioned u2netp (U2NET_HOME: nothing is
    downloaded): (port, pid)."""
    import shutil

    from imageeditor.core.rembg_models import find_model_file
    from imageeditor.core.settings import Settings
    from tests.e2e.harness import free_port

    model = find_model_file(Settings.from_env().models_dir, "u2netp")
    if model is None:
        raise RuntimeError("u2netp is not provisioned: run `make models`")
    shutil.copy(model, folder / "u2netp.onnx")
    port = free_port()
    env = {**os.environ, "U2NET_HOME": str(folder)}
    command = [str(REMBG), "s", "--host", "127.0.0.1", "--port", str(port), "--no-ui"]
    command += ["--log_level", "warning"]
    server = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/api", server, "rembg s", 120)
        yield port, server.pid
    finally:
        server.terminate()
        server.wait(30)
    if (folder / "models").exists():  # rembg's layout for what it downloads
        raise RuntimeError(f"rembg s tried to download a model into {folder / 'models'}")


def rembg_removals(port: int, photos: list[str], seconds: float) -> int:
    """REMOVAL_CLIENTS callers POSTing the photos in turn to `rembg s` (u2netp, a PNG cut-out
    back) for `seconds`: images done."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    datas = [Path(p).read_bytes() for p in photos]
    url = f"http://127.0.0.1:{port}/api/remove"

    def caller(deadline: float) -> int:
        done = 0
        with httpx.Client(timeout=120) as client:
            while time.monotonic() < deadline:
                # The model is a form field: without it rembg s takes bria-rmbg, and fetches it.
                reply = client.post(
                    url,
                    files={"file": ("photo.png", datas[done % len(datas)])},
                    data={"model": "u2netp"},
                )
                if reply.status_code != 200 or not reply.content.startswith(b"\x89PNG"):
                    # A plain error: httpx's own does not cross back from the pool process.
                    raise RuntimeError(f"rembg s answered {reply.status_code}: {reply.text[:200]}")
                done += 1
        return done

    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(REMOVAL_CLIENTS) as pool:
        return sum(pool.map(caller, [deadline] * REMOVAL_CLIENTS))


def service_removals(address: str, api_key: str, photos: list[str], seconds: float) -> int:
    """REMOVAL_CLIENTS callers submitting the photos in turn inline (remove background, PNG),
    watching each to its end and downloading the cut-out, for `seconds`: images done."""
    from concurrent.futures import ThreadPoolExecutor

    from imageeditor.sdk import Client, remove_background_operation

    datas = [Path(p).read_bytes() for p in photos]

    def caller(deadline: float) -> int:
        done = 0
        with Client(address, api_key, timeout=120) as client:
            while time.monotonic() < deadline:
                task = client.submit(
                    datas[done % len(datas)],
                    operations=[remove_background_operation()],
                    format="png",
                )
                final = list(client.watch(task.id))[-1]
                if final.state != 3:  # SUCCEEDED
                    raise RuntimeError(f"a bench removal ended {final.state}: {final.error}")
                _, data = client.get_result(task.id)
                assert data.startswith(b"\x89PNG")
                done += 1
        return done

    deadline = time.monotonic() + seconds
    with ThreadPoolExecutor(REMOVAL_CLIENTS) as pool:
        return sum(pool.map(caller, [deadline] * REMOVAL_CLIENTS))


def removal_case() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from run import make_inputs

    if not REMBG.exists():
        print(f"removal case skipped: no rembg at {REMBG} (`make bench` installs it)")
        return
    inputs = make_inputs()
    photos = [str(inputs[name]) for name in REMOVAL_PHOTOS]
    print(f"background removal (u2netp, PNG cut-out) of {', '.join(REMOVAL_PHOTOS)} in turn,")
    print(
        f"{REMOVAL_CLIENTS} concurrent clients, {REMOVAL_SECONDS:.0f} s a round;"
        " memory: the peak of each side's summed PSS (sampled), and the sum of its processes'"
        " peak RSS"
    )
    print(row("", "images/s", "PSS (RSS) MB", "x rembg/s", "x rembg MB", "", "≥1.3, ≤0.75"))
    with tempfile.TemporaryDirectory() as folder, rembg_server(Path(folder)) as (port, pid):
        with PeakMemory(pid) as memory:
            in_process(rembg_removals, port, photos, 5.0)  # its session is made on first use
            rates = [
                in_process(rembg_removals, port, photos, REMOVAL_SECONDS) / REMOVAL_SECONDS
                for _ in range(ROUNDS)
            ]
        reference, reference_mb = statistics.median(rates), memory.peak_mb
        reference_rss = tree_peak_rss_mb(pid)
    print(
        row(
            "rembg s 2.0.86 (reference)",
            f"{reference:.2f}",
            f"{reference_mb:.0f} ({reference_rss:.0f})",
            *([""] * 4),
        )
    )
    for name, settings in REMOVAL_MODES.items():
        with embedded(**settings) as ours, PeakMemory(ours.server_pid) as sampled:
            in_process(service_removals, ours.address, ours.api_key, photos, 5.0)
            rates = [
                in_process(service_removals, ours.address, ours.api_key, photos, REMOVAL_SECONDS)
                / REMOVAL_SECONDS
                for _ in range(ROUNDS)
            ]
            rate, rss = statistics.median(rates), tree_peak_rss_mb(ours.server_pid)
        mb = sampled.peak_mb
        speed, memory = rate / reference, mb / reference_mb
        ok = speed >= REMOVAL_TARGETS[0] and memory <= REMOVAL_TARGETS[1]
        print(
            row(
                f"ours, {name}",
                f"{rate:.2f}",
                f"{mb:.0f} ({rss:.0f})",
                f"{speed:.2f}",
                f"{memory:.2f}",
                "",
                verdict(ok),
            )
        )


# Embedded mode, as one machine would run it; the model, the worker processes and their
# onnxruntime threads are the variables (the default first).
REMOVAL_MODES: dict[str, dict[str, Any]] = {
    "u2netp, 2 workers (the default)": {"workers": 2, "IMAGEEDITOR_REMBG_MODEL": "u2netp"},
    "u2netp-int8, 1 worker": {"workers": 1, "IMAGEEDITOR_REMBG_MODEL": "u2netp-int8"},
    "u2netp-int8, 2 workers, 1 thread each": {
        "workers": 2,
        "IMAGEEDITOR_REMBG_MODEL": "u2netp-int8",
        "IMAGEEDITOR_ONNX_THREADS": "1",
    },
}


# -- case: result reuse --------------------------------------------------------------------------

REUSE_JOBS = int(os.environ.get("BENCH_REUSE_JOBS", "8"))
REUSE_TARGET = 0.2  # a reused job's submit → SUCCEEDED, as a share of the job's own run


def reuse_latencies(address: str, api_key: str, photo: str, jobs: int) -> list[tuple[float, float]]:
    """For each of `jobs` distinct 12 MP jobs (fit 1024, JPEG at its own quality): seconds
    from submit to SUCCEEDED of its first submit (a run) and of an identical one (reused)."""
    import grpc

    from imageeditor.v1 import image_editor_service_pb2 as pb
    from imageeditor.v1 import image_editor_service_pb2_grpc as pb_grpc
    from imageeditor.v1 import operations_pb2, task_pb2

    succeeded = task_pb2.TASK_STATE_SUCCEEDED
    metadata = (("authorization", f"Bearer {api_key}"),)
    options = [("grpc.max_send_message_length", 64 * 2**20)]
    data = Path(photo).read_bytes()
    resize = operations_pb2.Operation(resize=operations_pb2.Resize(width=1024, height=1024))
    figures = []
    with grpc.insecure_channel(address, options=options) as channel:
        stub = pb_grpc.ImageEditorServiceStub(channel)

        def until_succeeded(request: pb.SubmitTaskRequest) -> tuple[float, Any]:
            started = time.perf_counter()
            task = stub.SubmitTask(request, metadata=metadata, timeout=60).task
            if task.state != succeeded:
                watch = pb.WatchTaskRequest(task_id=task.id, after_version=task.version)
                for event in stub.WatchTask(watch, metadata=metadata, timeout=60):
                    task = event.task
                    if task.state == succeeded:
                        break
            if task.state != succeeded:
                raise RuntimeError(f"a bench job ended {task.state}")
            return time.perf_counter() - started, task

        for quality in range(60, 60 + jobs + 1):  # the first warms up
            output = operations_pb2.OutputOptions(
                format=operations_pb2.IMAGE_FORMAT_JPEG, quality=quality
            )
            request = pb.SubmitTaskRequest(image_data=data, operations=[resize], output=output)
            ran, first = until_succeeded(request)
            reused, again = until_succeeded(request)
            if first.reused_from or again.reused_from != first.id:
                raise RuntimeError("the bench's jobs were not run, then reused, as it expects")
            figures.append((ran, reused))
    return figures[1:]


def reuse_case() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from run import make_inputs

    photo = make_inputs()["astronaut-12MP"]
    print(f"result reuse: {REUSE_JOBS} distinct 12 MP JPEG jobs (fit 1024 → JPEG), each submitted")
    print("twice, one at a time: submit → SUCCEEDED of the run and of the identical job after it")
    print(row("", "run ms", "reused ms", "reused/run", "", "", f"≤{REUSE_TARGET}"))
    modes: dict[str, Callable[[], contextlib.AbstractContextManager[Deployment]]] = {
        "embedded (2 workers)": lambda: embedded(IMAGEEDITOR_RESULT_REUSE="user"),
        "production (1 edit worker)": lambda: production(
            workers=1, IMAGEEDITOR_RESULT_REUSE="user"
        ),
    }
    for name, start in modes.items():
        with start() as ours:
            figures = in_process(
                reuse_latencies, ours.address, ours.api_key, str(photo), REUSE_JOBS
            )
        ran = statistics.median(r for r, _ in figures)
        reused = statistics.median(r for _, r in figures)
        ratio = reused / ran
        print(
            row(
                f"ours, {name}",
                f"{ran * 1000:.0f}",
                f"{reused * 1000:.1f}",
                f"{ratio:.3f}",
                "",
                "",
                verdict(ratio <= REUSE_TARGET),
            )
        )


CASES: dict[str, Callable[[], None]] = {
    "submit": submit_case,
    "batch": batch_case,
    "roundtrip": roundtrip_case,
    "watch": fanout_case,
    "resize": resize_case,
    "reuse": reuse_case,
    "removal": removal_case,
}


def main(names: list[str]) -> None:
    for name in names or list(CASES):
        CASES[name]()
        print()


if __name__ == "__main__":
    main(sys.argv[1:])
