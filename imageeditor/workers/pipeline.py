"""The image pipeline: which stages a task goes through and what each does.

Each stage reads and writes a `Work` record; the image work itself is done by pure functions
(workers.imaging, workers.operations) and the injected style generator (workers.styles), and
I/O (fetch, store) stays here at the edges. The runner (imageeditor.workers.runner) walks a task's
stages
through a PipelineRun and commits a transition before each: in this process (`Pipeline.open`,
as a Celery pool process runs tasks) or in a child process that can be stopped at any moment
(workers.pipeline_process, as the embedded worker runs them).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from PIL import Image

from imageeditor.core.errors import Internal
from imageeditor.core.ports import BlobStore
from imageeditor.core.settings import Settings
from imageeditor.core.spec import Operation, RemoveBackground, Resize, TaskSpec
from imageeditor.core.task import ResultInfo, Stage, Task
from imageeditor.workers.background import BackgroundRemover
from imageeditor.workers.content_checks import ContentChecker, content_checker_from_settings
from imageeditor.workers.fetch import fetch_image
from imageeditor.workers.imaging import EncodedImage, decode, encode
from imageeditor.workers.operations import OPERATIONS, OutputLimits, Registry, apply_operations
from imageeditor.workers.operations.resize import decode_size_needed
from imageeditor.workers.styles import StyleGenerator

FILE_EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg", "avif": "avif"}


@dataclass
class Work:
    """What one task carries from stage to stage."""

    task_id: str
    spec: TaskSpec
    source: bytes = b""
    image: Image.Image | None = None
    encoded: EncodedImage | None = None
    result: ResultInfo | None = None


StageStep = Callable[[Work], None]


class PipelineRun(Protocol):
    """One task on its way through the pipeline, a stage at a time."""

    stages: list[Stage]

    def run_stage(self, stage: Stage) -> None:
        """Do one stage; raises the task's ImageEditorError, or RunInterrupted."""

    def result(self) -> ResultInfo:
        """What the store stage stored."""


class PipelineRuns(Protocol):
    """Where the runner's runs happen."""

    def open(self, task: Task) -> PipelineRun: ...


class RunInterrupted(Exception):
    """The run was stopped from outside: for a cancel (the task has one pending), or by a
    shutdown (the task stays RUNNING and is resumed at the next start)."""

    def __init__(self, cancel: bool) -> None:
        super().__init__("cancelled" if cancel else "shutting down")
        self.cancel = cancel


@dataclass(frozen=True)
class EditStep:
    """A run of a task's operations done as one stage: each background removal is a
    REMOVE_BACKGROUND stage of its own, the operations between them EDIT stages."""

    stage: Stage
    first: int  # the place of its first operation in the task's list
    operations: tuple[Operation, ...]


def edit_steps(operations: Sequence[Operation]) -> list[EditStep]:
    """The operations as stages, in order; one EDIT stage (maybe empty) when none removes
    the background."""
    steps: list[EditStep] = []
    start = 0
    for index, op in enumerate(operations):
        if isinstance(op, RemoveBackground):
            if index > start:
                steps.append(EditStep(Stage.EDIT, start, tuple(operations[start:index])))
            steps.append(EditStep(Stage.REMOVE_BACKGROUND, index, (op,)))
            start = index + 1
    if start < len(operations) or not steps:
        steps.append(EditStep(Stage.EDIT, start, tuple(operations[start:])))
    return steps


def stages_of(spec: TaskSpec) -> list[Stage]:
    """The stages a task goes through, in order (STYLE only with a style prompt)."""
    stages = [Stage.FETCH, Stage.VALIDATE, *(s.stage for s in edit_steps(spec.operations))]
    if spec.style_prompt:
        stages.append(Stage.STYLE)
    return [*stages, Stage.ENCODE, Stage.STORE]


class Pipeline:
    """Builds the stage list of a task; holds the blob store, the style generator, the
    background remover (behind the RemoveBackground operation) and the limits it needs."""

    def __init__(
        self,
        blobs: BlobStore,
        settings: Settings,
        *,
        styles: StyleGenerator,
        remover: BackgroundRemover,
        checker: ContentChecker | None = None,
    ) -> None:
        self._blobs = blobs
        self._settings = settings
        self._styles = styles
        self._checker = checker or content_checker_from_settings(settings)
        self._operations: Registry = {**OPERATIONS, RemoveBackground: remover.apply}
        self._limits = OutputLimits(settings.effective_max_output_pixels, settings.max_output_side)

    def stages(self, spec: TaskSpec) -> list[tuple[Stage, StageStep]]:
        """The task's stages in order (as stages_of), each with what it does."""
        edits: list[tuple[Stage, StageStep]] = [
            (step.stage, partial(self.edit, step=step)) for step in edit_steps(spec.operations)
        ]
        steps = [(Stage.FETCH, self.fetch), (Stage.VALIDATE, self.validate), *edits]
        if spec.style_prompt:
            steps.append((Stage.STYLE, self.style))
        return [*steps, (Stage.ENCODE, self.encode), (Stage.STORE, self.store)]

    def open(self, task: Task) -> InProcessRun:
        """A run of `task` in this process (PipelineRuns)."""
        return InProcessRun(self, task)

    def fetch(self, work: Work) -> None:
        spec, s = work.spec, self._settings
        if spec.input_key:
            work.source = self._blobs.get(spec.input_key)
        else:
            work.source = fetch_image(
                spec.image_url,
                max_bytes=s.max_fetch_bytes,
                timeout=s.fetch_timeout_seconds,
                allowed_hosts=s.allowed_hosts,
            )

    def validate(self, work: Work) -> None:
        work.image = decode(
            work.source,
            max_pixels=self._settings.max_image_pixels,
            max_frames=self._settings.max_frames,
            draft=_draft(work.spec),
        )
        work.source = b""  # the decoded image replaces the bytes; let them go
        self._checker.check(work.image)

    def edit(self, work: Work, step: EditStep) -> None:
        assert work.image is not None
        work.image = apply_operations(
            work.image,
            step.operations,
            self._operations,
            limits=self._limits,
            first_index=step.first,
        )

    def style(self, work: Work) -> None:
        assert work.image is not None
        work.image = self._styles.apply(work.image, work.spec.style_prompt)

    def encode(self, work: Work) -> None:
        assert work.image is not None
        work.encoded = encode(work.image, work.spec.output)
        work.image = None

    def store(self, work: Work) -> None:
        encoded = work.encoded
        assert encoded is not None
        key = f"results/{work.task_id}.{FILE_EXTENSIONS[encoded.format]}"
        uri = self._blobs.put(key, encoded.data)
        work.result = ResultInfo(
            width=encoded.width,
            height=encoded.height,
            format=encoded.format,
            size_bytes=len(encoded.data),
            sha256=encoded.sha256,
            uri=uri,
            key=key,
        )


class InProcessRun:
    """A PipelineRun in this process: the stages called directly on one Work."""

    def __init__(self, pipeline: Pipeline, task: Task) -> None:
        self.work = Work(task_id=task.id, spec=task.spec)
        self._steps = pipeline.stages(task.spec)
        self.stages = [stage for stage, _ in self._steps]
        self._done = 0

    def run_stage(self, stage: Stage) -> None:
        """Do the next stage, which must be `stage` (a stage may come twice)."""
        expected, step = self._steps[self._done]
        if stage is not expected:
            raise Internal(f"stage {stage} run out of order (next: {expected})")
        self._done += 1
        step(self.work)

    def result(self) -> ResultInfo:
        assert self.work.result is not None
        return self.work.result


def _draft(spec: TaskSpec) -> Callable[[tuple[int, int]], tuple[int, int]] | None:
    """How small a JPEG may be decoded: as small as the first operation, a resize, needs."""
    first = spec.operations[0] if spec.operations else None
    if isinstance(first, Resize) and (first.width or first.height):
        return partial(decode_size_needed, op=first)
    return None
