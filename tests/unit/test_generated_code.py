"""imageeditor/v1/ must be exactly what `make gen` produces from protos/: stale code fails
here."""

from __future__ import annotations

import filecmp
import importlib.util
import subprocess
from pathlib import Path

from tests.conftest import service_unavailable

ROOT = Path(__file__).resolve().parents[2]
GENERATED = "imageeditor/v1"  # the one folder of generated Python


def load_generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("generate", ROOT / "scripts" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def files_under(folder: Path) -> set[str]:
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    load_generator().generate(tmp_path)
    fresh, committed = tmp_path / GENERATED, ROOT / GENERATED
    assert files_under(tmp_path) == {f"{GENERATED}/{name}" for name in files_under(fresh)}
    assert files_under(fresh) == files_under(committed)
    stale = [
        name
        for name in sorted(files_under(fresh))
        if not filecmp.cmp(fresh / name, committed / name, shallow=False)
    ]
    assert stale == [], f"run `make gen`: {stale}"


def test_buf_generate_writes_exactly_the_checked_in_code(tmp_path: Path) -> None:
    """`buf generate` (buf.gen.yaml, local plugins only) agrees with `make gen`."""
    buf = ROOT / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        service_unavailable("buf is not installed (make setup installs it from npm)")
    done = subprocess.run(
        [str(buf), "generate", "--template", "buf.gen.yaml", "-o", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    fresh, committed = tmp_path / GENERATED, ROOT / GENERATED
    made = files_under(fresh)
    assert made and made <= files_under(committed)
    stale = [n for n in sorted(made) if not filecmp.cmp(fresh / n, committed / n, False)]
    assert stale == [], f"buf generate disagrees with {GENERATED}/: {stale}"
