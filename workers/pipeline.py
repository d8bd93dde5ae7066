"""The image pipeline: which stages a task goes through and what each does.

Each stage reads and writes a `Work` record; the image work itself is done by pure functions
(workers.imaging, workers.operations) and the injected style generator (workers.styles), and
I/O (fetch, store) stays here at the edges. The runner (workers.runner) walks the stages and
commits a transition before each.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from PIL import Image

from editcore.ports import BlobStore
from editcore.settings import Settings
from editcore.spec import RemoveBackground, Resize, TaskSpec
from editcore.task import ResultInfo, Stage
from workers.background import BackgroundRemover
from workers.content_checks import ContentChecker, content_checker_from_settings
from workers.fetch import fetch_image
from workers.imaging import EncodedImage, decode, encode
from workers.operations import OPERATIONS, OutputLimits, Registry, apply_operations
from workers.operations.resize import decode_size_needed
from workers.styles import StyleGenerator

FILE_EXTENSIONS = {"png": "png", "webp": "webp", "jpeg": "jpg"}


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
        steps: list[tuple[Stage, StageStep]] = [
            (Stage.FETCH, self.fetch),
            (Stage.VALIDATE, self.validate),
            (Stage.EDIT, self.edit),
        ]
        if spec.style_prompt:
            steps.append((Stage.STYLE, self.style))
        steps += [(Stage.ENCODE, self.encode), (Stage.STORE, self.store)]
        return steps

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

    def edit(self, work: Work) -> None:
        assert work.image is not None
        work.image = apply_operations(
            work.image, work.spec.operations, self._operations, limits=self._limits
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


def _draft(spec: TaskSpec) -> Callable[[tuple[int, int]], tuple[int, int]] | None:
    """How small a JPEG may be decoded: as small as the first operation, a resize, needs."""
    first = spec.operations[0] if spec.operations else None
    if isinstance(first, Resize) and (first.width or first.height):
        return partial(decode_size_needed, op=first)
    return None
