"""The CLI without a server: argument parsing, what it prints, how errors become exit codes."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf import json_format

from imageeditor.cli import commands
from imageeditor.cli.edit_options import parse_size
from imageeditor.cli.main import main
from imageeditor.cli.output import format_error, format_task, print_message
from imageeditor.cli.parser import build_parser, parse_label
from imageeditor.cli.progress import ProgressLine
from imageeditor.core.adapters.storage import open_storage
from imageeditor.core.errors import InvalidArgument, NotFound, Unauthenticated, Unavailable
from imageeditor.core.ports import WebhookSecret
from imageeditor.core.settings import Settings
from imageeditor.core.task import utcnow
from imageeditor.sdk.credentials import api_key_hint
from imageeditor.sdk.errors import SERVER_UNREACHABLE
from imageeditor.v1 import operations_pb2, task_pb2


def running_task() -> task_pb2.Task:
    return task_pb2.Task(
        id="t-1",
        state=task_pb2.TASK_STATE_RUNNING,
        stage=task_pb2.STAGE_EDIT,
        progress=0.4,
        version=3,
        labels={"team": "a"},
    )


@pytest.mark.parametrize(
    ("text", "size"), [("640x480", (640, 480)), ("640X0", (640, 0)), ("0x10", (0, 10))]
)
def test_sizes_parse(text: str, size: tuple[int, int]) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["640", "640x", "x480", "axb", "-1x5", "0x0", "640x480x2"])
def test_bad_sizes_are_usage_errors(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_size(text)


def test_a_bad_size_exits_2_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["submit", "cat.png", "--resize", "big"])
    assert caught.value.code == 2
    assert "'big' is not WIDTHxHEIGHT" in capsys.readouterr().err


def test_labels_parse() -> None:
    assert parse_label("team=a=b") == ("team", "a=b")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_label("team")


def test_submit_arguments() -> None:
    argv = "submit cat.png --resize 64x32 --fit cover --grayscale --format webp --quality 80"
    argv += " --label a=1 --label b=2 --watch -o out.webp --json"
    args = build_parser().parse_args(argv.split())

    assert args.run is commands.submit
    assert (args.image, args.resize, args.format, args.quality) == ("cat.png", (64, 32), "webp", 80)
    assert dict(args.label) == {"a": "1", "b": "2"}
    assert args.watch and args.json and args.output == "out.webp"
    operations = commands.operations_from(args)
    assert operations[0].resize.fit == operations_pb2.RESIZE_FIT_COVER
    assert operations[1].WhichOneof("kind") == "grayscale"


def kinds_of(argv: str) -> list[str | None]:
    args = build_parser().parse_args(argv.split())
    return [op.WhichOneof("kind") for op in commands.operations_from(args)]


def test_edit_steps_follow_the_command_line_order() -> None:
    assert kinds_of("submit a.png --rotate 90 --crop 10x10 --flip") == ["rotate", "crop", "flip"]
    assert kinds_of("submit a.png --flop --resize 5x5 --grayscale --blur 2 --sharpen") == [
        "flop",
        "resize",
        "grayscale",
        "blur",
        "sharpen",
    ]
    # The adjust flags make one step, at the first of them; a modifier adds no step.
    assert kinds_of("batch a.png --contrast 2 --remove-background --brightness 0.5 --expand") == [
        "adjust",
        "remove_background",
    ]
    assert kinds_of("submit a.png") == []


def test_edit_step_values_and_modifiers() -> None:
    argv = "submit a.png --crop 30x20+4+5 --rotate -12.5 --expand --brightness 0.5"
    argv += " --remove-background --model u2net --alpha-matting --background-color #00ff0080"
    argv += " --effort 9 --keep-metadata"
    args = build_parser().parse_args(argv.split())
    crop, rotate, adjust, remove = commands.operations_from(args)
    assert (crop.crop.box.left, crop.crop.box.top, crop.crop.box.width) == (4, 5, 30)
    assert (rotate.rotate.degrees, rotate.rotate.expand) == (-12.5, True)
    assert (adjust.adjust.brightness, adjust.adjust.contrast) == (0.5, 1.0)
    background = remove.remove_background.background
    assert remove.remove_background.model == "u2net" and remove.remove_background.alpha_matting
    assert (background.green, background.alpha) == (255, 128)
    assert (args.effort, args.keep_metadata) == (9, True)
    argv = "submit a.png --gravity north_east --crop 30x20"
    (placed,) = commands.operations_from(build_parser().parse_args(argv.split()))
    assert placed.crop.size.gravity == operations_pb2.GRAVITY_NORTH_EAST


@pytest.mark.parametrize(
    "flags",
    ["--crop 0x10", "--crop 10x10+1", "--crop 10", "--background-color red", "--gravity up"],
)
def test_bad_edit_flags_are_usage_errors(flags: str) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["submit", "a.png", *flags.split()])
    assert caught.value.code == 2


def test_list_arguments() -> None:
    args = build_parser().parse_args(["list", "--state", "running", "--state", "failed"])
    assert (args.state, args.limit, args.batch) == (["running", "failed"], 50, "")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["list", "--state", "sleeping"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["list", "--limit", "0"])


def test_operator_commands_parse() -> None:
    assert build_parser().parse_args(["keys", "create", "alice"]).name == "alice"
    assert build_parser().parse_args(["db", "upgrade", "--json"]).json
    secret = build_parser().parse_args(["keys", "webhook-secret", "bob", "--rotate"])
    assert (secret.user, secret.rotate, secret.overlap_hours) == ("bob", True, None)
    hours = ["keys", "webhook-secret", "bob", "--overlap-hours"]
    assert build_parser().parse_args([*hours, "0.5"]).overlap_hours == 0.5


@pytest.mark.parametrize("hours", ["-1", "nan", "inf", "soon", "8761"])
def test_a_rotation_overlap_must_be_0_to_a_year_of_hours(hours: str) -> None:
    with pytest.raises(SystemExit) as caught:
        build_parser().parse_args(["keys", "webhook-secret", "bob", "--overlap-hours", hours])
    assert caught.value.code == 2


# -- operator commands on a fresh embedded database ------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """IMAGEEDITOR_DATA_DIR for the operator commands: a new SQLite database per test."""
    monkeypatch.setenv("IMAGEEDITOR_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("IMAGEEDITOR_DATABASE_URL", raising=False)
    return tmp_path


def stored_secrets(data_dir: Path, user_id: str) -> list[WebhookSecret]:
    stores = open_storage(Settings(data_dir=data_dir))  # sealing with the data folder's key
    try:
        return stores.webhook_secrets.webhook_secrets(user_id, utcnow())
    finally:
        stores.close()


def test_keys_create_prints_the_key_alone_then_the_webhook_secret(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["keys", "create", "reporting"]) == 0
    key, secret_line = capsys.readouterr().out.splitlines()

    (secret,) = stored_secrets(data_dir, "reporting")
    assert key.startswith("iek_")
    assert secret_line == f"webhook secret: {secret.secret}"

    assert main(["keys", "create", "reporting", "--json"]) == 0
    fields = json.loads(capsys.readouterr().out)
    # A second key of the same user: a new key, the same secret.
    assert (fields["user_id"], fields["webhook_secret"]) == ("reporting", secret.secret)
    assert fields["key"].startswith("iek_") and fields["key"] != key


def test_webhook_secret_shows_the_users_secrets_and_rotates_them(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*flags: str) -> list[str]:
        assert main(["keys", "webhook-secret", "alice", *flags]) == 0
        return capsys.readouterr().out.splitlines()

    (first,) = run()
    assert run() == [first]  # made once
    assert [s.secret for s in stored_secrets(data_dir, "alice")] == [first]

    new_line, old_line = run("--rotate", "--overlap-hours", "2")
    newest, older = stored_secrets(data_dir, "alice")
    assert (new_line, older.secret) == (newest.secret, first)
    assert older.expires_at is not None
    assert older.expires_at - newest.created_at == timedelta(hours=2)
    assert old_line == f"{first}  (signs until {older.expires_at:%Y-%m-%d %H:%M:%S} UTC)"

    records = [json.loads(line) for line in run("--json")]
    assert [(r["secret"], r["expires_at"]) for r in records] == [
        (newest.secret, None),
        (first, older.expires_at.isoformat()),
    ]

    lines = run("--rotate", "--overlap-hours", "0")
    (only,) = stored_secrets(data_dir, "alice")
    assert lines == [only.secret, "the previous secrets no longer sign"]
    assert only.secret not in (first, newest.secret)


def test_image_source_tells_urls_from_files() -> None:
    assert commands.image_source("https://e.com/a.png") == "https://e.com/a.png"
    assert str(commands.image_source("a.png")) == "a.png"


def test_json_output_is_the_protobuf_mapping_on_one_line() -> None:
    out = io.StringIO()
    print_message(running_task(), as_json=True, file=out)

    (line,) = out.getvalue().splitlines()
    assert json.loads(line)["state"] == "TASK_STATE_RUNNING"
    assert json_format.Parse(line, task_pb2.Task()) == running_task()


def test_human_output_is_a_compact_line() -> None:
    done = task_pb2.Task(id="t-2", state=task_pb2.TASK_STATE_SUCCEEDED)
    done.result.CopyFrom(
        task_pb2.ResultInfo(
            width=640, height=480, format=operations_pb2.IMAGE_FORMAT_WEBP, size_bytes=12_600
        )
    )
    failed = task_pb2.Task(id="t-3", state=task_pb2.TASK_STATE_FAILED)
    failed.error.code, failed.error.message = 3, "not an image"

    assert format_task(running_task()) == "t-1  RUNNING  edit 40%"
    assert format_task(done) == "t-2  SUCCEEDED  640x480 webp 12.3 KiB"
    assert format_task(failed) == "t-3  FAILED  INVALID_ARGUMENT: not an image"


def test_human_output_shows_where_the_callbacks_stand() -> None:
    task = task_pb2.Task(id="t-4", state=task_pb2.TASK_STATE_FAILED)
    task.callback.state = task_pb2.CALLBACK_STATE_PENDING
    task.callback.attempts.add(http_status=503)
    task.callback.attempts.add(error="connection refused")
    task.batch_callback.state = task_pb2.CALLBACK_STATE_FAILED
    task.batch_callback.failure_reason = "ENDPOINT_GONE"
    assert format_task(task) == (
        "t-4  FAILED  callback PENDING after 2 attempts (connection refused)"
        "  batch callback FAILED ENDPOINT_GONE"
    )
    task.callback.state = task_pb2.CALLBACK_STATE_DELIVERED
    assert "callback DELIVERED  batch" in format_task(task)


def test_error_lines() -> None:
    invalid = InvalidArgument("bad request", field_violations={"output.quality": "1-100"})
    refused = Unavailable("connection refused", reason=SERVER_UNREACHABLE)

    assert format_error(NotFound("task t-1 not found"), "h:1") == (
        "error: NOT_FOUND: task t-1 not found"
    )
    assert format_error(invalid, "h:1") == (
        "error: INVALID_ARGUMENT: bad request (output.quality: 1-100)"
    )
    assert "the server at h:1 is not reachable" in format_error(refused, "h:1")


def test_an_error_line_does_not_say_a_field_or_a_description_twice() -> None:
    named = InvalidArgument(
        "task_id 'x' is not a UUID", field_violations={"task_id": "must be a UUID"}
    )
    said = InvalidArgument(
        "image_url is not a usable URL: no host", field_violations={"image_url": "no host"}
    )
    assert format_error(named, "h:1") == (
        "error: INVALID_ARGUMENT: task_id 'x' is not a UUID (must be a UUID)"
    )
    assert format_error(said, "h:1") == (
        "error: INVALID_ARGUMENT: image_url is not a usable URL: no host"
    )


def test_json_errors_carry_code_reason_and_violations(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    refused = InvalidArgument(
        "bad", field_violations={"output.quality": "1-100"}, reason="INVALID_QUALITY"
    )

    def fail(args: argparse.Namespace) -> int:
        raise refused

    monkeypatch.setattr(commands, "status", fail)
    assert main(["status", "--json", "t-1"]) == 1
    error = json.loads(capsys.readouterr().err)["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["reason"] == "INVALID_QUALITY"
    assert error["field_violations"] == [{"field": "output.quality", "description": "1-100"}]


def test_a_missing_key_says_where_the_cli_looked(tmp_path: Path) -> None:
    env = {"IMAGEEDITOR_DATA_DIR": str(tmp_path / "data")}
    assert api_key_hint(env) == (
        f"no API key: IMAGEEDITOR_API_KEY is not set and there is no {tmp_path}/data/dev-api-key"
        " (embedded mode writes it in its IMAGEEDITOR_DATA_DIR, default var)"
    )
    line = format_error(Unauthenticated("no key"), "h:1", api_key_hint(env))
    assert f"there is no {tmp_path}/data/dev-api-key" in line
    assert api_key_hint({"IMAGEEDITOR_API_KEY": "iek_x"}) == (
        "the key in IMAGEEDITOR_API_KEY was refused"
    )


def test_main_prints_one_error_line_and_exits_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_found(args: argparse.Namespace) -> int:
        raise NotFound(f"task {args.task_id} not found")

    monkeypatch.setattr(commands, "status", not_found)

    assert main(["status", "t-9"]) == 1
    assert capsys.readouterr().err == "error: NOT_FOUND: task t-9 not found\n"


def test_main_reports_an_unreadable_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "/nonexistent/cat.png"]) == 1
    assert capsys.readouterr().err.startswith("error: /nonexistent/cat.png: ")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def ticking(*moments: float) -> Callable[[], float]:
    """A clock that reads `moments` in turn."""
    readings = iter(moments)
    return lambda: next(readings)


def test_progress_redraws_in_place_on_a_terminal_with_the_time_taken() -> None:
    stream = Terminal()
    with ProgressLine(stream, width=4, clock=ticking(10.0, 10.5, 13.25)) as bar:
        bar.show(0.5, "RUNNING edit")
        bar.show(1.0, "DONE")

    assert stream.getvalue() == ("\r[##--]  50% 0.5s RUNNING edit\r[####] 100% 3.2s DONE        \n")


def test_progress_writes_plain_lines_elsewhere_and_only_on_a_change() -> None:
    stream = io.StringIO()
    with ProgressLine(stream, width=4, clock=ticking(0.0, 1.0, 2.0)) as bar:
        bar.show(0.5, "RUNNING edit")
        bar.show(0.5, "RUNNING edit")  # the same: not written, however late
        bar.show(1.0, "DONE")

    assert stream.getvalue().splitlines() == [
        "[##--]  50% 1.0s RUNNING edit",
        "[####] 100% 2.0s DONE",
    ]


def test_callbacks_commands_say_what_they_found(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["callbacks", "enable", "alice", "https://hooks.example.com/x"]) == 0
    assert capsys.readouterr().out == (
        "callbacks to https://hooks.example.com/x for alice were not disabled\n"
    )
    unknown = "00000000-0000-4000-8000-000000000000"
    assert main(["callbacks", "redeliver", unknown]) == 1
    assert capsys.readouterr().err == f"error: no callback event {unknown}\n"


def test_operator_commands_do_not_make_a_database_where_none_was_meant(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IMAGEEDITOR_DATA_DIR", raising=False)
    monkeypatch.delenv("IMAGEEDITOR_DATABASE_URL", raising=False)
    assert main(["keys", "create", "reporting"]) == 1
    error = capsys.readouterr().err
    assert f"there is no database at {tmp_path}/var/imageeditor.db" in error
    assert "IMAGEEDITOR_DATA_DIR" in error
    assert not (tmp_path / "var" / "imageeditor.db").exists()
    # Making one is a deliberate step; then the command works.
    assert main(["db", "upgrade"]) == 0
    assert main(["keys", "create", "reporting"]) == 0


def test_version_and_completion(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("imageeditor 0.")
    assert main(["completion", "bash"]) == 0
    script = capsys.readouterr().out
    assert "imageeditor" in script and "watch" in script and "--request-id" in script
