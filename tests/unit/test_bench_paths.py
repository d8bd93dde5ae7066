"""The bench's own call into the worker's pipeline (bench/run.py ours_resize) still fits the
pipeline: a broken bench is found by `make test`, not by the next `make bench`."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path
from types import ModuleType

from PIL import Image

BENCH = Path(__file__).resolve().parents[2] / "bench" / "run.py"


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_bench_resize_runs_the_workers_stages() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (2048, 1536), "teal").save(buffer, "JPEG")
    data = _bench().ours_resize(buffer.getvalue(), "webp")
    result = Image.open(io.BytesIO(data))
    assert result.format == "WEBP"
    assert result.size == (1024, 768)
