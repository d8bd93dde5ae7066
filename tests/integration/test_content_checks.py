"""The content checker at the validate stage: the default, and a refusing one plugged in."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from imageeditor.core.errors import InvalidArgument
from imageeditor.core.settings import Settings
from imageeditor.core.task import TaskState
from imageeditor.workers.background import BackgroundRemover
from imageeditor.workers.content_checks import StructuralChecker, content_checker_from_settings
from imageeditor.workers.pipeline import Pipeline
from imageeditor.workers.runner import TaskRunner
from imageeditor.workers.styles.presets import PresetStyles
from tests.integration.worker_parts import Parts


class RefuseEverything:
    def check(self, image: Image.Image) -> None:
        raise InvalidArgument("no cats allowed", reason="CONTENT_REJECTED")


def test_a_refusing_checker_fails_the_task_with_its_reason(tmp_path: Path) -> None:
    parts = Parts(tmp_path)
    settings = Settings(data_dir=tmp_path)
    pipeline = Pipeline(
        parts.blobs,
        settings,
        styles=PresetStyles(),
        remover=BackgroundRemover(settings),
        checker=RefuseEverything(),
    )
    runner = TaskRunner(parts.lifecycle, parts.blobs, pipeline, max_attempts=3)
    task = parts.queue()
    final = runner.run(task.id).task
    assert final is not None and final.state is TaskState.FAILED
    assert final.error is not None
    assert (final.error.reason, final.error.message) == ("CONTENT_REJECTED", "no cats allowed")
    assert final.attempts == 1  # a refusal is permanent: no retry
    parts.store.close()


def test_the_structural_checker_refuses_what_the_pipeline_cannot_take() -> None:
    checker = StructuralChecker(max_pixels=100)
    checker.check(Image.new("RGB", (10, 10)))
    with pytest.raises(InvalidArgument) as too_big:
        checker.check(Image.new("RGB", (11, 10)))
    assert too_big.value.reason == "IMAGE_TOO_LARGE"
    with pytest.raises(InvalidArgument) as odd_mode:
        checker.check(Image.new("CMYK", (2, 2)))
    assert odd_mode.value.reason == "CONTENT_REJECTED"


def test_the_checker_is_chosen_by_name() -> None:
    assert isinstance(content_checker_from_settings(Settings()), StructuralChecker)
    with pytest.raises(InvalidArgument) as unknown:
        content_checker_from_settings(Settings(content_checker="nsfw-model"))
    assert "IMAGEEDITOR_CONTENT_CHECKER" in unknown.value.field_violations
