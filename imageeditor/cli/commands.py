"""The task subcommands: each parses nothing and decides nothing, it calls the SDK and prints.

Every function takes the parsed arguments and returns the exit code: 0 on success, 1 when a
watched task ends FAILED or CANCELLED. Errors propagate to main(), which prints them.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

from imageeditor.cli.edit_options import operations_from
from imageeditor.cli.output import (
    describe_progress,
    format_result,
    format_timings,
    print_message,
)
from imageeditor.cli.progress import ProgressLine
from imageeditor.sdk.client import Client
from imageeditor.sdk.watching import is_terminal
from imageeditor.v1 import task_pb2


def image_source(text: str) -> str | Path:
    """A URL stays a string (the worker fetches it); anything else is a local file."""
    return text if text.startswith(("http://", "https://")) else Path(text)


def exit_code(task: task_pb2.Task) -> int:
    """0 for a task that SUCCEEDED (or is still going), 1 for FAILED or CANCELLED."""
    return 1 if is_terminal(task) and task.state != task_pb2.TASK_STATE_SUCCEEDED else 0


def submit(args: argparse.Namespace) -> int:
    """`imageeditor submit`: submit, and with --watch or -o follow it (and save the result)."""
    with Client(tls=args.tls or None) as client:
        task = client.submit(
            image_source(args.image),
            operations=operations_from(args),
            format=args.format,
            quality=args.quality,
            effort=args.effort,
            keep_metadata=args.keep_metadata,
            style_prompt=args.prompt,
            callback_url=args.callback_url,
            request_id=args.request_id,
            labels=dict(args.label),
        )
        if not (args.watch or args.output):
            print_message(task, as_json=args.json)
            return 0
        if args.json:
            print_message(task, as_json=True)
        if not is_terminal(task):
            task = follow(client, task.id, as_json=args.json, after_version=task.version)
        elif not args.json:
            print_message(task, as_json=False)
        if args.output and task.state == task_pb2.TASK_STATE_SUCCEEDED:
            info = client.download_result(task.id, args.output)
            print(f"wrote {args.output} ({format_result(info)})", file=sys.stderr)
        return exit_code(task)


def follow(client: Client, task_id: str, *, as_json: bool, after_version: int = 0) -> task_pb2.Task:
    """Watch a task to its end: every transition as JSON, or a progress bar on stderr and
    the final state on stdout. Returns the last state seen."""
    last: task_pb2.Task | None = None
    try:
        with ProgressLine() as bar:
            for task in client.watch(task_id, after_version=after_version):
                last = task
                if as_json:
                    print_message(task, as_json=True)
                else:
                    done = task.state == task_pb2.TASK_STATE_SUCCEEDED
                    bar.show(1.0 if done else task.progress, describe_progress(task))
    except KeyboardInterrupt:
        print(
            f"stopped watching; task {task_id} goes on without you."
            f" Follow it again with `imageeditor watch {task_id}`,"
            f" stop it with `imageeditor cancel {task_id}`.",
            file=sys.stderr,
        )
        raise
    if last is None:  # Nothing new after `after_version`: it already ended.
        last = client.get_status(task_id)
    if not as_json:
        print_message(last, as_json=False)
    return last


def status(args: argparse.Namespace) -> int:
    """`imageeditor status ID`: the task's line, and (without --json) its stage timings."""
    with Client(tls=args.tls or None) as client:
        task = client.get_status(args.task_id)
    print_message(task, as_json=args.json)
    if not args.json and (timings := format_timings(task)):
        print(f"  {timings}")
    return 0


def watch(args: argparse.Namespace) -> int:
    """`imageeditor watch ID`: follow until the task ends; exit 1 unless it SUCCEEDED."""
    with Client(tls=args.tls or None) as client:
        return exit_code(follow(client, args.task_id, as_json=args.json))


def cancel(args: argparse.Namespace) -> int:
    """`imageeditor cancel ID`."""
    with Client(tls=args.tls or None) as client:
        print_message(client.cancel(args.task_id), as_json=args.json)
    return 0


def list_tasks(args: argparse.Namespace) -> int:
    """`imageeditor list`: at most --limit tasks, newest first."""
    with Client(tls=args.tls or None) as client:
        tasks = client.list_tasks(
            states=args.state,
            batch_id=args.batch,
            labels=dict(args.label),
            page_size=min(args.limit, 500),
        )
        for task in itertools.islice(tasks, args.limit):
            print_message(task, as_json=args.json)
    return 0


def result(args: argparse.Namespace) -> int:
    """`imageeditor result ID -o OUT`."""
    with Client(tls=args.tls or None) as client:
        info = client.download_result(args.task_id, args.output)
    if args.json:
        print_message(info, as_json=True)
    else:
        print(f"wrote {args.output} ({format_result(info)})")
    return 0


def completion(args: argparse.Namespace) -> int:
    """`imageeditor completion SHELL`: the completion script of every command and option
    (shtab, from the `cli` extra: `pip install 'imageeditor[cli]'`)."""
    try:
        import shtab
    except ImportError:
        print(
            "error: shell completion needs shtab: pip install 'imageeditor[cli]'", file=sys.stderr
        )
        return 1
    print(shtab.complete(args.parser, shell=args.shell, root_prefix="imageeditor"))
    return 0
