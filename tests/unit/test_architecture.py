"""The boundaries STYLE.md draws, checked on the import statements themselves."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imported_top_level_modules(package: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


# Pillow is allowed in the server for one reason: editcore.image_probe reads the headers of
# inline images at submit time. It parses headers only; decoding stays in the worker.
EXCEPTIONS = {"editcore/image_probe.py": {"PIL"}}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("server", {"workers", "embedded", "clients", "rembg", "onnxruntime"}),
        ("workers", {"server", "embedded", "clients"}),
        ("editcore", {"server", "workers", "embedded", "clients", "PIL", "rembg", "onnxruntime"}),
        ("clients/sdk", {"server", "workers", "sqlalchemy", "PIL", "alembic"}),
    ],
)
def test_packages_import_only_across_allowed_boundaries(package: str, forbidden: set[str]) -> None:
    offenders = {
        module: sorted(bad)
        for module, names in imported_top_level_modules(package).items()
        if (bad := names & forbidden - EXCEPTIONS.get(module, set()))
    }
    assert offenders == {}


def test_importing_the_sdk_pulls_in_nothing_heavy() -> None:
    code = (
        "import sys, clients.sdk; "
        "heavy = {'sqlalchemy', 'PIL', 'alembic', 'server', 'workers', 'editcore.image_probe'}"
        " & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
