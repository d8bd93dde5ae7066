"""The background-removal models the service knows: rembg model names, files and hashes.

Shared by the worker (which loads them), the CLI (`imageeditor models list|fetch`) and
submit-time validation (a name not listed here is refused). Each model is one ONNX file,
`<name>.onnx`, in Settings.models_dir: flat (rembg's `$U2NET_HOME/<name>.onnx`, where
provisioning puts it) or in rembg's newer `models/<name>/<name>.onnx` layout. Whether a
model is usable is whether its file is present; nothing is ever downloaded at run time.

Left out on purpose: rembg's remote backends (they send the image elsewhere), the custom-path
models, `sam` (it needs prompts) and `u2net_cloth_seg` (it returns several masks).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ModelInfo:
    """A rembg model: its name and the md5 rembg checks its file against ("" if none); a
    model made here from another (`made_from`) runs with that one's rembg session."""

    name: str
    md5: str = ""
    made_from: str = ""

    @property
    def session_name(self) -> str:
        """The rembg session (pre- and post-processing) the model runs with."""
        return self.made_from or self.name

    @property
    def file_name(self) -> str:
        return f"{self.name}.onnx"


KNOWN_MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo("u2netp", "8e83ca70e441ab06c318d82300c84806"),
        # int8, made by `imageeditor models quantize` (imageeditor.workers.quantization)
        ModelInfo("u2netp-int8", made_from="u2netp"),
        ModelInfo("u2net", "60024c5c889badc19c04ad937298a77b"),
        ModelInfo("u2net_human_seg", "c09ddc2e0104f800e3e1bb4652583d1f"),
        ModelInfo("silueta", "55e59e0d8062d2f5d013f4725ee84782"),
        ModelInfo("isnet-general-use", "fc16ebd8b0c10d971d3513d564d01e29"),
        ModelInfo("isnet-anime", "6f184e756bb3bd901c8849220a83e38e"),
        ModelInfo("birefnet-general", "7a35a0141cbbc80de11d9c9a28f52697"),
        ModelInfo("birefnet-general-lite", "4fab47adc4ff364be1713e97b7e66334"),
        ModelInfo("birefnet-general-fp16"),
        ModelInfo("birefnet-portrait", "c3a64a6abf20250d090cd055f12a3b67"),
        ModelInfo("birefnet-dis", "2d4d44102b446f33a4ebb2e56c051f2b"),
        ModelInfo("birefnet-hrsod", "c017ade5de8a50ff0fd74d790d268dda"),
        ModelInfo("birefnet-cod", "f6d0d21ca89d287f17e7afe9f5fd3b45"),
        ModelInfo("birefnet-massive", "33e726a2136a3d59eb0fdf613e31e3e9"),
        ModelInfo("bria-rmbg"),
    )
}


def find_model_file(models_dir: Path, name: str) -> Path | None:
    """The installed file of model `name`, looked up in rembg's order, or None."""
    file_name = f"{name}.onnx"
    for path in (models_dir / "models" / name / file_name, models_dir / file_name):
        if path.is_file():
            return path
    return None


def file_md5(path: Path) -> str:
    """The md5 of a file, read in chunks (models run to hundreds of MB)."""
    digest = hashlib.md5(usedforsecurity=False)  # rembg publishes md5s; a check, not security
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
