"""The embedded worker's pipelines, each in a child process that can be stopped at any moment.

A Celery worker runs each task in a pool process it can kill (a time limit, a revoke); the
embedded worker gets the same from here. Each of its threads owns a `ProcessSlot`: a child
process holding a Pipeline (with its own rembg session) that runs one task's stages as the
thread's runner asks for them, stage by stage, so every transition is still committed by the
runner, in the parent, where the store is. Because the work happens in another process:

- CancelTask stops a task within moments, inside a long operation too: `interrupt` kills the
  child (SIGKILL) and the runner commits CANCELLED;
- the task time limits hold: at the soft limit the child gets SIGUSR1, which raises into the
  running stage (the task fails DEADLINE_EXCEEDED, TIME_LIMIT, as under Celery's soft limit);
  at the hard limit it is killed, with the same outcome;
- a crash (a decoder's segfault, the kernel's OOM killer) ends the child, not the server: the
  task goes back to the queue, its attempt counted, like one whose Celery worker died.

A child that was killed or died is replaced when the slot's next task opens. Children come
from a forkserver with the pipeline modules already imported, so a replacement is ready in
milliseconds rather than the second a fresh interpreter takes to import them; the forkserver
is a fresh interpreter itself, so nothing of the server's threads (gRPC's) is forked.

The protocol, one request and one reply at a time over a pipe:

    ("open", task)    -> ("ok",)                  a run of the task (its snapshot as JSON)
    ("stage", stage)  -> ("ok",) | ("error", s)   run one stage; s: a google.rpc.Status
    ("result",)       -> ("result", info)         the stored result (ResultInfo as JSON)
    ("exit",)         -> (none)                   finish up and exit
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext
from multiprocessing.process import BaseProcess
from typing import Any

from google.rpc import status_pb2

from imageeditor.core.adapters.blobs.factory import blob_store_from_settings
from imageeditor.core.api.rpc_errors import from_status, to_status
from imageeditor.core.errors import DeadlineExceeded, ImageEditorError, Internal, Unavailable
from imageeditor.core.logs import configure_logging
from imageeditor.core.settings import Settings
from imageeditor.core.snapshot import result_from_dict, result_to_dict, task_from_dict, task_to_dict
from imageeditor.core.task import ResultInfo, Stage, Task
from imageeditor.workers.background import BackgroundRemover
from imageeditor.workers.pipeline import InProcessRun, Pipeline, RunInterrupted, stages_of
from imageeditor.workers.styles import create_style_generator

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
EXIT_SECONDS = 5.0
# Imported once by the forkserver, so each child forks with them loaded.
PRELOADED = ["imageeditor.workers.pipeline_process", "imageeditor.workers.pipeline"]


def forkserver_context() -> ForkServerContext:
    """The multiprocessing context the slots start their children in."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOADED)
    return context


class ProcessSlot:
    """One worker thread's child process, and the run it is doing (PipelineRuns)."""

    def __init__(
        self,
        settings: Settings,
        context: ForkServerContext,
        *,
        name: str,
        warm_up: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._context = context
        self._name = name
        self._warm_up = warm_up
        self._clock = clock
        self._lock = threading.Lock()
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._interrupted: bool | None = None  # set by interrupt(): cancel or shutdown

    # -- the parent's side of a run ---------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The child's process id, while it lives."""
        process = self._process
        return process.pid if process is not None and process.is_alive() else None

    def start(self) -> None:
        """Start the child now (RunHost), rather than with the first run."""
        with self._lock:
            if self._process is None or not self._process.is_alive():
                self._start()

    def open(self, task: Task) -> ChildRun:
        """Start a run of `task` in the child (starting the child first if needed)."""
        with self._lock:
            self._interrupted = None
            if self._process is None or not self._process.is_alive():
                self._start()
        reply = self.exchange(("open", task_to_dict(task)), None)
        if reply[0] == "error":
            raise from_status_bytes(reply[1])
        # The time limits count from here: a child's start is not the task's time.
        return ChildRun(self, task, _Deadlines(self._clock(), self._settings, self._clock))

    def interrupt(self, *, cancel: bool) -> None:
        """Stop the run now: kill the child. The runner sees RunInterrupted."""
        with self._lock:
            self._interrupted = cancel
            process = self._process
        if process is not None and process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGKILL)

    def close(self, timeout: float = EXIT_SECONDS) -> None:
        """Ask the child to exit; kill it if it has not within `timeout` (a task running)."""
        with self._lock:
            process, conn = self._process, self._conn
            self._process = self._conn = None
        if process is None or conn is None:
            return
        with contextlib.suppress(OSError):
            conn.send(("exit",))
        process.join(timeout)
        if process.is_alive():
            process.kill()
            process.join()
        conn.close()

    def _start(self) -> None:
        parent, child = self._context.Pipe()
        process = self._context.Process(
            target=child_main,
            args=(child, self._settings, self._warm_up),
            name=self._name,
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent

    def exchange(self, message: tuple[Any, ...], deadlines: _Deadlines | None) -> tuple[Any, ...]:
        """Send `message` and wait for the reply, keeping the time limits and interrupts."""
        process, conn = self._process, self._conn
        assert process is not None and conn is not None
        try:
            conn.send(message)
            while not conn.poll(POLL_SECONDS):
                if not process.is_alive():
                    break
                if deadlines is not None:
                    deadlines.enforce(process)
            else:
                reply: tuple[Any, ...] = conn.recv()
                return reply
        except (EOFError, OSError):
            pass  # the child is gone: the reasons are below
        process.join(1.0)
        raise self._why_gone(process, deadlines)

    def _why_gone(self, process: BaseProcess, deadlines: _Deadlines | None) -> Exception:
        with self._lock:
            interrupted, self._interrupted = self._interrupted, None
            self._process = self._conn = None
        if interrupted is not None:
            return RunInterrupted(cancel=interrupted)
        if deadlines is not None and deadlines.killed:
            return deadlines.error()
        code = process.exitcode
        log.warning("%s: the pipeline process died (exit code %s)", self._name, code)
        return Unavailable(
            f"the worker process running the task died (exit code {code})",
            reason="WORKER_LOST",
            retry_after=1.0,
        )


class _Deadlines:
    """A run's time limits: SIGUSR1 to the child at the soft one, SIGKILL at the hard one."""

    def __init__(self, started: float, settings: Settings, clock: Callable[[], float]) -> None:
        self._soft = started + settings.task_soft_time_limit_seconds
        self._hard = started + settings.task_hard_time_limit_seconds
        self._clock = clock
        self._warned = False
        self.killed = False

    def enforce(self, process: BaseProcess) -> None:
        now = self._clock()
        pid = process.pid
        if pid is None:
            return
        if now >= self._hard and not self.killed:
            self.killed = True
            os.kill(pid, signal.SIGKILL)
        elif now >= self._soft and not self._warned:
            self._warned = True
            os.kill(pid, signal.SIGUSR1)

    @staticmethod
    def error() -> DeadlineExceeded:
        return DeadlineExceeded("the task ran out of time", reason="TIME_LIMIT")


class ChildRun:
    """One task's run in a slot's child (PipelineRun)."""

    def __init__(self, slot: ProcessSlot, task: Task, deadlines: _Deadlines) -> None:
        self._slot = slot
        self.stages = stages_of(task.spec)
        self._deadlines = deadlines

    def call(self, message: tuple[Any, ...]) -> tuple[Any, ...]:
        reply = self._slot.exchange(message, self._deadlines)
        if reply[0] == "error":
            raise from_status_bytes(reply[1])
        return reply

    def run_stage(self, stage: Stage) -> None:
        self.call(("stage", stage.value))

    def result(self) -> ResultInfo:
        info = result_from_dict(self.call(("result",))[1])
        assert info is not None
        return info


def from_status_bytes(raw: bytes) -> ImageEditorError:
    return from_status(status_pb2.Status.FromString(raw))


# -- the child ----------------------------------------------------------------------------------


class _SoftTimeLimit(BaseException):
    """Raised by the SIGUSR1 handler. A BaseException, so that no `except Exception` in the
    stage's code (a decoder's, which would call the image corrupt) takes it for its own."""


_in_stage = False


def _soft_limit(signum: int, frame: Any) -> None:
    # Raised only inside a stage: raised while the pipe is being read, it would cut a message.
    if _in_stage:
        raise _SoftTimeLimit


def child_main(conn: Connection, settings: Settings, warm_up: bool) -> None:
    """The child's loop: build a Pipeline, then answer the parent until told to exit."""
    configure_logging(settings.log_format, settings.log_level)
    signal.signal(signal.SIGUSR1, _soft_limit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C at the terminal is the server's
    remover = BackgroundRemover(settings)
    pipeline = Pipeline(
        blob_store_from_settings(settings),
        settings,
        styles=create_style_generator(settings),
        remover=remover,
    )
    warming = threading.Thread(target=remover.warm_up, name="rembg-warm-up", daemon=True)
    if warm_up:
        warming.start()
    try:
        _serve(conn, pipeline)
    finally:
        if warming.is_alive():  # onnxruntime aborts a process that exits while it loads
            warming.join(EXIT_SECONDS)


def _serve(conn: Connection, pipeline: Pipeline) -> None:
    global _in_stage
    run: InProcessRun | None = None  # the task's run in this process, as a Celery worker's
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError, _SoftTimeLimit):
            return
        kind = message[0]
        if kind == "exit":
            return
        try:
            if kind == "open":
                run = pipeline.open(task_from_dict(message[1]))
                reply: tuple[Any, ...] = ("ok",)
            elif kind == "stage":
                assert run is not None
                _in_stage = True
                try:
                    run.run_stage(Stage(message[1]))
                finally:
                    _in_stage = False
                reply = ("ok",)
            else:  # "result"
                assert run is not None
                reply = ("result", result_to_dict(run.result()))
        except _SoftTimeLimit:
            reply = ("error", to_status(_Deadlines.error()).SerializeToString())
        except ImageEditorError as exc:
            reply = ("error", to_status(exc).SerializeToString())
        except Exception:
            log.exception("task stage failed unexpectedly")
            error = Internal("the worker failed unexpectedly", reason="INTERNAL")
            reply = ("error", to_status(error).SerializeToString())
        try:
            conn.send(reply)
        except (OSError, _SoftTimeLimit):
            return
