"""The boundaries STYLE.md draws, checked on the import statements themselves."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ADAPTERS = ROOT / "imageeditor" / "core" / "adapters"
SERVER, WORKERS, EMBEDDED = "imageeditor.server", "imageeditor.workers", "imageeditor.embedded"
CLIENTS = ("imageeditor.sdk", "imageeditor.cli")


def imported_names(path: Path) -> set[str]:
    """Every module `path` imports, dotted in full; `from a.b import c` gives `a.b` and
    `a.b.c` (c may be a module)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def offending(names: set[str], forbidden: set[str]) -> list[str]:
    """The names that are one of `forbidden` or inside one of them."""
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))


def imports_by_module(folder: Path, *, recursive: bool = True) -> dict[str, set[str]]:
    paths = folder.rglob("*.py") if recursive else folder.glob("*.py")
    return {str(path.relative_to(ROOT)): imported_names(path) for path in paths}


# Pillow is allowed in the server for one reason: imageeditor.core.image_probe reads the headers of
# inline images at submit time. It parses headers only; decoding stays in the worker.
EXCEPTIONS = {"imageeditor/core/image_probe.py": {"PIL"}}


@pytest.mark.parametrize(
    ("package", "forbidden"),
    [
        ("imageeditor/server", {WORKERS, EMBEDDED, *CLIENTS, "rembg", "onnxruntime"}),
        ("imageeditor/workers", {SERVER, EMBEDDED, *CLIENTS}),
        ("imageeditor/core", {SERVER, WORKERS, EMBEDDED, *CLIENTS, "PIL", "rembg", "onnxruntime"}),
        ("imageeditor/sdk", {SERVER, WORKERS, "sqlalchemy", "PIL", "alembic"}),
    ],
)
def test_packages_import_only_across_allowed_boundaries(package: str, forbidden: set[str]) -> None:
    offenders = {
        module: bad
        for module, names in imports_by_module(ROOT / package).items()
        if (bad := offending(names, forbidden - EXCEPTIONS.get(module, set())))
    }
    assert offenders == {}


# What a storage or broker driver, and what the wire format, would bring into the domain.
DRIVERS = {"sqlalchemy", "alembic", "psycopg", "redis", "celery", "kombu", "boto3", "botocore"}
WIRE = {"grpc", "grpc_status", "google.protobuf", "google.rpc", "imageeditor.v1"}  # + generated


def test_the_domain_and_use_cases_import_no_driver_and_no_adapter() -> None:
    """The top level of imageeditor.core (task, spec, errors, ports, service, lifecycle, …) speaks
    only in its own terms: adapters and the protobuf face depend on it, never the reverse."""
    domain = imports_by_module(ROOT / "imageeditor" / "core", recursive=False)
    assert len(domain) > 10  # the check looks where the modules are
    forbidden = DRIVERS | WIRE | {"imageeditor.core.adapters", "imageeditor.core.api"}
    offenders = {
        module: bad for module, names in domain.items() if (bad := offending(names, forbidden))
    }
    assert offenders == {}


def test_the_protobuf_face_imports_no_driver_and_no_adapter() -> None:
    forbidden = DRIVERS | {"grpc", "imageeditor.core.adapters"}
    offenders = {
        module: bad
        for module, names in imports_by_module(ROOT / "imageeditor" / "core" / "api").items()
        if (bad := offending(names, forbidden))
    }
    assert offenders == {}


# The drivers each kind of adapter may use; every other driver and every other kind is out.
KIND_DRIVERS: dict[str, set[str]] = {
    "memory": set(),
    "redis": {"redis"},
    "sql": {"sqlalchemy", "alembic", "psycopg"},
    "celery": {"celery", "kombu"},
    "blobs": {"boto3", "botocore"},
}


def test_each_kind_of_adapter_is_known() -> None:
    kinds = {p.name for p in ADAPTERS.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert kinds == set(KIND_DRIVERS)


@pytest.mark.parametrize("kind", sorted(KIND_DRIVERS))
def test_adapters_never_import_another_kind_nor_its_driver(kind: str) -> None:
    other_kinds = {f"imageeditor.core.adapters.{k}" for k in KIND_DRIVERS if k != kind}
    forbidden = other_kinds | WIRE | (DRIVERS - KIND_DRIVERS[kind])
    offenders = {
        module: bad
        for module, names in imports_by_module(ADAPTERS / kind).items()
        if (bad := offending(names, forbidden))
    }
    assert offenders == {}


# The modules at the adapters' root join kinds into one mode's wiring; each joins only the
# kinds of its mode, so an embedded process never loads Redis or Celery.
WIRING_KINDS = {
    "storage.py": {"sql", "blobs"},
    "embedded.py": {"sql", "blobs", "memory"},
    "production.py": {"sql", "blobs", "redis", "celery"},
}


def test_each_wiring_module_is_known() -> None:
    assert {p.name for p in ADAPTERS.glob("*.py")} - {"__init__.py"} == set(WIRING_KINDS)


@pytest.mark.parametrize("module", sorted(WIRING_KINDS))
def test_a_wiring_module_joins_only_the_kinds_of_its_mode(module: str) -> None:
    kinds = WIRING_KINDS[module]
    forbidden = {f"imageeditor.core.adapters.{k}" for k in KIND_DRIVERS if k not in kinds}
    forbidden |= WIRE | (DRIVERS - set().union(*(KIND_DRIVERS[k] for k in kinds)))
    if module == "embedded.py":
        forbidden.add("imageeditor.core.adapters.production")
    assert offending(imported_names(ADAPTERS / module), forbidden) == []


def test_the_checks_see_nested_and_from_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        "import redis.asyncio\n"
        "from imageeditor.core.adapters import sql\n"
        "from google.protobuf import x\n"
    )
    names = imported_names(module)
    assert offending(names, {"redis"}) == ["redis.asyncio"]
    assert offending(names, {"imageeditor.core.adapters.sql"}) == ["imageeditor.core.adapters.sql"]
    assert offending(names, {"google.protobuf"}) == ["google.protobuf", "google.protobuf.x"]
    assert offending(names, {"google.rpc", "sqlalchemy"}) == []


def test_importing_the_sdk_pulls_in_nothing_heavy() -> None:
    code = (
        "import sys, imageeditor.sdk; "
        "heavy = {'sqlalchemy', 'PIL', 'alembic', 'imageeditor.server', 'imageeditor.workers',"
        " 'imageeditor.core.image_probe', 'redis', 'celery'}"
        " & set(sys.modules); "
        "print(sorted(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_plain_install_puts_one_package_on_the_path() -> None:
    """The SDK's distribution adds `imageeditor` to a caller's path, and nothing generic."""
    import tomllib

    found = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert found["packages"]["find"]["include"] == ["imageeditor*"]
    tops = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()}
    assert tops == {"imageeditor", "tests"}
