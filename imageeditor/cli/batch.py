"""`imageeditor batch`: submit many images in one BatchSubmit and, with --watch, follow them
all at once on one WatchBatch stream, with one progress bar for the whole batch.

Output, in the order of the FILEs: a line per item (its task, or why it was rejected); with
--json each accepted item's task (in its final state when --watch waited for it) and each
rejected item as a BatchSubmitResult `{"error": ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

from imageeditor.cli.commands import image_source
from imageeditor.cli.edit_options import operations_from
from imageeditor.cli.output import format_refusal, format_task, print_message
from imageeditor.cli.progress import ProgressLine
from imageeditor.sdk.aio_client import AsyncClient
from imageeditor.sdk.requests import build_submit_request
from imageeditor.v1 import image_editor_service_pb2 as pb
from imageeditor.v1 import task_pb2


def run(args: argparse.Namespace) -> int:
    """Submit every FILE; exit 1 if any item was rejected or (with --watch) did not succeed."""
    # Files are read here, before the event loop starts, so reading never stalls it.
    requests = [
        build_submit_request(
            image_source(name),
            operations=operations_from(args),
            format=args.format,
            quality=args.quality,
            effort=args.effort,
            keep_metadata=args.keep_metadata,
        )
        for name in args.files
    ]
    return asyncio.run(_submit_and_follow(args, requests))


async def _submit_and_follow(
    args: argparse.Namespace, requests: Sequence[pb.SubmitTaskRequest]
) -> int:
    async with AsyncClient(tls=args.tls or None) as client:
        response = await client.batch_submit(requests)
        accepted = [item.task for item in response.results if item.HasField("task")]
        if args.watch and accepted:
            finals = await watch_batch(client, response.batch_id)
            for item in response.results:
                if item.HasField("task"):
                    item.task.CopyFrom(finals[item.task.id])
    if not args.json:
        rejected = len(response.results) - len(accepted)
        print(f"batch {response.batch_id}: {len(accepted)} accepted, {rejected} rejected")
    for name, item in zip(args.files, response.results, strict=False):
        if args.json:  # the task itself; a rejected item as {"error": Status}
            print_message(item.task if item.HasField("task") else item, as_json=True)
        elif item.HasField("task"):
            print(f"{name}  {format_task(item.task)}")
        else:
            print(f"{name}  {format_refusal(item.error)}")
    succeeded = all(
        item.HasField("task")
        and (not args.watch or item.task.state == task_pb2.TASK_STATE_SUCCEEDED)
        for item in response.results
    )
    return 0 if succeeded else 1


async def watch_batch(
    client: AsyncClient, batch_id: str, bar: ProgressLine | None = None
) -> dict[str, task_pb2.Task]:
    """Follow the whole batch on one WatchBatch stream, with one bar for it; returns the last
    state of every accepted item, by task id."""
    bar = bar or ProgressLine()
    last: dict[str, task_pb2.Task] = {}
    with bar:
        async for update in client.watch_batch(batch_id):
            if update.HasField("task"):
                last[update.task.id] = update.task
            bar.show(update.progress.fraction_done, describe_progress(update.progress))
    return last


def describe_progress(progress: pb.BatchProgress) -> str:
    """`3/10 done: 2 succeeded, 1 failed, 4 running, 3 queued` (zero counts left out)."""
    accepted = progress.total - progress.refused
    done = progress.succeeded + progress.failed + progress.cancelled
    counts = [
        (progress.succeeded, "succeeded"),
        (progress.failed, "failed"),
        (progress.cancelled, "cancelled"),
        (progress.running, "running"),
        (progress.queued, "queued"),
    ]
    shown = ", ".join(f"{count} {name}" for count, name in counts if count)
    return f"{done}/{accepted} done" + (f": {shown}" if shown else "")
