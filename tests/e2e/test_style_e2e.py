"""Style prompts through a real server process and the CLI, on each style backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from imageeditor.core.styles import PRESET_STYLES
from tests.e2e.harness import ServerProcess, free_port
from tests.fake_images_api import RESULT_COLOUR, RESULT_SIZE, FakeImagesApi

pytestmark = pytest.mark.e2e

KEY = "sk-e2e-style-key"


def test_the_http_backend_styles_a_task_through_the_images_api(
    make_server: type[ServerProcess], photo: Path, tmp_path: Path
) -> None:
    out = tmp_path / "styled.png"
    with FakeImagesApi(api_key=KEY, model="") as api:
        server = make_server(
            tmp_path / "data",
            free_port(),
            IMAGEEDITOR_STYLE_BACKEND="http",
            IMAGEEDITOR_STYLE_HTTP_URL=api.url,
            IMAGEEDITOR_STYLE_HTTP_API_KEY=KEY,
        ).start()
        result = server.cli(
            "submit", str(photo), "--prompt", "make it watercolour", "--format", "png",
            "--watch", "--json", "-o", str(out),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout.splitlines()[-1])["state"] == "TASK_STATE_SUCCEEDED"
        assert api.problems == []
        assert [seen.fields["prompt"] for seen in api.requests] == ["make it watercolour"]
    with Image.open(out) as styled:
        assert styled.size == RESULT_SIZE
        assert styled.convert("RGB").getpixel((0, 0)) == RESULT_COLOUR
    server.stop()
    assert KEY not in server.log.read_text()


def test_presets_refuse_an_unknown_prompt_at_submit_with_the_list(
    server: ServerProcess, photo: Path
) -> None:
    result = server.cli("submit", str(photo), "--prompt", "make it watercolour")
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "style_prompt" in result.stderr
    assert all(name in result.stderr for name in PRESET_STYLES)
    assert server.cli("list", "--json", check=True).stdout.strip() == ""  # nothing was queued


def test_an_http_backend_without_a_url_stops_the_server_at_start(
    make_server: type[ServerProcess], tmp_path: Path
) -> None:
    server = make_server(tmp_path / "data", free_port(), IMAGEEDITOR_STYLE_BACKEND="http")
    with pytest.raises(RuntimeError, match="server exited") as caught:
        server.start()
    assert "IMAGEEDITOR_STYLE_HTTP_URL" in str(caught.value)
