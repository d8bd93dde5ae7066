"""Result reuse's key and result copy (imageeditor.core.reuse); the flows are end to end."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from imageeditor.core.adapters.blobs.local import LocalBlobStore
from imageeditor.core.reuse import ResultReuse, copy_result_of
from imageeditor.core.settings import Settings
from imageeditor.core.spec import ImageFormat, OutputOptions, Resize, TaskSpec
from imageeditor.core.task import ResultInfo, Task

SPEC = TaskSpec(input_key="inputs/a", input_size=3, operations=(Resize(width=10, height=10),))


def reuse(mode: str = "user", seconds: float = 60) -> ResultReuse:
    settings = Settings(result_reuse=mode, result_reuse_seconds=seconds)
    return ResultReuse(None, settings)  # type: ignore[arg-type]  # keys need no store


def test_the_key_covers_the_source_bytes_the_edits_and_the_output_and_nothing_else() -> None:
    key = reuse().key("alice", SPEC, b"abc")
    same_job = replace(SPEC, input_key="inputs/b", callback_url="https://x.example/hook")
    assert reuse().key("alice", same_job, b"abc") == key
    assert reuse().key("alice", SPEC, b"abd") != key
    assert reuse().key("alice", replace(SPEC, operations=()), b"abc") != key
    assert reuse().key("alice", replace(SPEC, style_prompt="oil"), b"abc") != key
    webp = replace(SPEC, output=OutputOptions(format=ImageFormat.WEBP))
    assert reuse().key("alice", webp, b"abc") != key


def test_the_key_is_per_user_unless_shared() -> None:
    assert reuse().key("alice", SPEC, b"abc") != reuse().key("bob", SPEC, b"abc")
    shared = reuse("shared")
    assert shared.key("alice", SPEC, b"abc") == shared.key("bob", SPEC, b"abc")


def test_reuse_is_off_by_setting_or_by_a_zero_retention_and_a_bad_mode_is_refused() -> None:
    assert reuse().enabled
    assert not reuse("off").enabled
    assert not reuse(seconds=0).enabled
    with pytest.raises(ValueError, match="IMAGEEDITOR_RESULT_REUSE"):
        reuse("everyone")


def test_a_result_is_copied_under_the_new_tasks_key_unless_its_blob_is_gone(
    tmp_path: Path,
) -> None:
    blobs = LocalBlobStore(tmp_path)
    uri = blobs.put("results/src.png", b"png bytes")
    result = ResultInfo(1, 1, ImageFormat.PNG, 9, "00" * 32, uri, "results/src.png")
    running = Task(id="src", user_id="alice", spec=SPEC).start()
    source = running.succeed(result)

    copied = copy_result_of(blobs, source, "new")
    assert copied is not None and copied.key == "results/new.png"
    assert blobs.get("results/new.png") == b"png bytes" and copied.sha256 == result.sha256
    assert copy_result_of(blobs, running, "other") is None  # no result yet
    blobs.delete("results/src.png")
    assert copy_result_of(blobs, source, "late") is None
