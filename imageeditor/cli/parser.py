"""The `imageeditor` command line: subcommands, options and the parsing of their values.

Each subcommand's `run` default names the function in commands.py, batch.py or admin.py
that carries it out; parsing never touches the network.
"""

from __future__ import annotations

import argparse
from importlib import metadata

from imageeditor.cli import admin, batch, commands
from imageeditor.cli.edit_options import add_edit_options
from imageeditor.core.queues import QUEUES
from imageeditor.sdk.requests import STATES

FORMAT_CHOICES = ("png", "webp", "jpeg", "avif")
WORKER_QUEUES = QUEUES
MAX_OVERLAP_HOURS = 24 * 365


def package_version() -> str:
    try:
        return metadata.version("imageeditor")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "unknown"


def parse_label(text: str) -> tuple[str, str]:
    """ "key=value" -> ("key", "value")."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, value


def build_parser() -> argparse.ArgumentParser:
    """The parser of every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print protobuf JSON, one per line")
    # Commands that call the server; the operator commands open the database instead.
    client = argparse.ArgumentParser(add_help=False, parents=[common])
    client.add_argument(
        "--tls",
        action="store_true",
        help="connect with TLS (the server checked against IMAGEEDITOR_TLS_CA_FILE, else the"
        " system's roots); IMAGEEDITOR_TLS=true does the same",
    )

    parser = argparse.ArgumentParser(
        prog="imageeditor",
        description="Submit and follow image-editing jobs. IMAGEEDITOR_ADDRESS picks the server,"
        " IMAGEEDITOR_API_KEY the key (default: the embedded server's development key).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        parents=[common],
        help="run the server (embedded unless IMAGEEDITOR_REDIS_URL is set)",
    )
    serve.set_defaults(run=admin.serve)

    worker = sub.add_parser("worker", parents=[common], help="run a worker (production mode)")
    worker.add_argument(
        "--queues",
        type=_queue_list,
        default=("edits", "models"),
        metavar="Q1,Q2",
        help="queues to consume: edits, models, callbacks (default: edits,models)",
    )
    worker.add_argument("--concurrency", type=_positive, metavar="N", help="processes (cores)")
    worker.add_argument("--loglevel", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    worker.set_defaults(run=admin.worker)

    flower = sub.add_parser(
        "flower", help="run Flower over the workers (production mode; basic auth from settings)"
    )
    flower.set_defaults(run=admin.flower)

    health = sub.add_parser(
        "health", parents=[client], help="check the server's gRPC health (exit 0 when SERVING)"
    )
    health.add_argument("service", nargs="?", default="", help="a service name (default: all)")
    health.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS")
    health.set_defaults(run=admin.health)

    submit = sub.add_parser("submit", parents=[client], help="submit one image")
    submit.add_argument("image", metavar="IMAGE_PATH_OR_URL")
    _add_output_options(submit)
    submit.add_argument("--prompt", default="", help="a style prompt to apply")
    submit.add_argument("--callback-url", default="", help="receives a POST when done")
    submit.add_argument("--request-id", default="", help="idempotency key")
    submit.add_argument("--label", type=parse_label, action="append", default=[])
    submit.add_argument("-o", "--output", metavar="OUT", help="wait, then save the result here")
    submit.set_defaults(run=commands.submit)

    batch_cmd = sub.add_parser("batch", parents=[client], help="submit many images at once")
    batch_cmd.add_argument("files", nargs="+", metavar="FILE")
    _add_output_options(batch_cmd)
    batch_cmd.set_defaults(run=batch.run)

    for name, run, text in (
        ("status", commands.status, "show a task"),
        ("watch", commands.watch, "follow a task until it finishes"),
        ("cancel", commands.cancel, "cancel a task"),
    ):
        command = sub.add_parser(name, parents=[client], help=text)
        command.add_argument("task_id", metavar="ID")
        command.set_defaults(run=run)

    completion = sub.add_parser(
        "completion",
        help='print a shell completion script: eval "$(imageeditor completion bash)"',
    )
    completion.add_argument("shell", choices=("bash", "zsh", "tcsh"))
    completion.set_defaults(run=commands.completion, parser=parser)

    listing = sub.add_parser("list", parents=[client], help="list your tasks, newest first")
    listing.add_argument("--state", choices=tuple(STATES), action="append", default=[])
    listing.add_argument("--batch", default="", metavar="ID", help="only tasks of this batch")
    listing.add_argument("--label", type=parse_label, action="append", default=[])
    listing.add_argument("--limit", type=_positive, default=50, metavar="N")
    listing.set_defaults(run=commands.list_tasks)

    result = sub.add_parser("result", parents=[client], help="download a task's result")
    result.add_argument("task_id", metavar="ID")
    result.add_argument("-o", "--output", metavar="OUT", required=True)
    result.set_defaults(run=commands.result)

    keys = sub.add_parser("keys", help="manage API keys (operator: opens the database)")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = keys_sub.add_parser("create", parents=[common], help="create a key, print it once")
    create.add_argument("name", metavar="NAME")
    create.set_defaults(run=admin.create_key)
    listing = keys_sub.add_parser(
        "list", parents=[common], help="every key: id, name, user, made, last used, revoked"
    )
    listing.add_argument("--user", metavar="USER", help="only this user's keys")
    listing.set_defaults(run=admin.list_keys)
    revoke = keys_sub.add_parser("revoke", parents=[common], help="revoke a key (by its id)")
    revoke.add_argument("key_id", metavar="ID")
    revoke.set_defaults(run=admin.revoke_key)
    encryption = keys_sub.add_parser(
        "encryption-key", parents=[common], help="print a new key for IMAGEEDITOR_ENCRYPTION_KEYS"
    )
    encryption.set_defaults(run=admin.new_encryption_key)
    secret = keys_sub.add_parser(
        "webhook-secret",
        parents=[common],
        help="show a user's webhook secrets, newest first (made if none), or --rotate",
    )
    secret.add_argument("user", metavar="USER")
    secret.add_argument("--rotate", action="store_true", help="make a new secret")
    secret.add_argument(
        "--overlap-hours",
        type=_hours,
        metavar="H",
        help="with --rotate: how long the older secrets keep signing (default 24; 0: stop now)",
    )
    secret.set_defaults(run=admin.webhook_secret)

    callbacks = sub.add_parser("callbacks", help="callback deliveries (operator)")
    callbacks_sub = callbacks.add_subparsers(
        dest="callbacks_command", required=True, metavar="ACTION"
    )
    enable = callbacks_sub.add_parser(
        "enable", parents=[common], help="send to a URL again after it answered 410 Gone"
    )
    enable.add_argument("user", metavar="USER")
    enable.add_argument("url", metavar="URL")
    enable.set_defaults(run=admin.enable_callbacks)
    redeliver = callbacks_sub.add_parser(
        "redeliver", parents=[common], help="send delivered or failed callback events again"
    )
    redeliver.add_argument("event_ids", nargs="+", metavar="EVENT_ID")
    redeliver.set_defaults(run=admin.redeliver_callbacks)

    db = sub.add_parser("db", help="manage the database (operator)")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", parents=[common], help="apply pending migrations")
    upgrade.set_defaults(run=admin.upgrade_db)
    reencrypt = db_sub.add_parser(
        "reencrypt",
        parents=[common],
        help="seal stored URLs, prompts, secrets under the newest key",
    )
    reencrypt.set_defaults(run=admin.reencrypt_db)

    models = sub.add_parser("models", help="background-removal model files (operator)")
    models_sub = models.add_subparsers(dest="models_command", required=True, metavar="ACTION")
    fetch = models_sub.add_parser(
        "fetch", parents=[common], help="install a model file (u2netp) in the models folder"
    )
    fetch.add_argument("--model", default="u2netp", help="the model to fetch (u2netp)")
    fetch.add_argument(
        "--no-warm", action="store_true", help="skip compiling rembg's numba code into its cache"
    )
    fetch.set_defaults(run=admin.fetch_models)
    quantize = models_sub.add_parser(
        "quantize", parents=[common], help="make u2netp-int8 from the installed u2netp (~2 min)"
    )
    quantize.add_argument("--force", action="store_true", help="make it again if it exists")
    quantize.set_defaults(run=admin.quantize_models)
    warm = models_sub.add_parser(
        "warm", parents=[common], help="compile rembg's numba code into its cache (once)"
    )
    warm.set_defaults(run=admin.warm_models)
    models_list = models_sub.add_parser(
        "list", parents=[common], help="show which models are installed"
    )
    models_list.set_defaults(run=admin.list_models)
    return parser


def _add_output_options(command: argparse.ArgumentParser) -> None:
    add_edit_options(command)
    command.add_argument("--format", choices=FORMAT_CHOICES, help="output format (png)")
    command.add_argument(
        "--quality", type=int, default=0, help="1-100 (JPEG, lossy WEBP, AVIF; default 85)"
    )
    command.add_argument(
        "--effort",
        type=int,
        default=0,
        metavar="N",
        help="PNG zlib level 1-9, WEBP method 1-6, AVIF 1-10 (slower, smaller)",
    )
    command.add_argument(
        "--keep-metadata", action="store_true", help="keep the source's EXIF and ICC profile"
    )
    command.add_argument("--watch", action="store_true", help="follow until finished")


def _queue_list(text: str) -> tuple[str, ...]:
    queues = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = set(queues) - set(WORKER_QUEUES)
    if not queues or unknown:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a comma-separated list of {', '.join(WORKER_QUEUES)}"
        )
    return queues


def _hours(text: str) -> float:
    """A rotation overlap: 0 (the old secrets stop at once) up to a year."""
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 <= hours <= MAX_OVERLAP_HOURS:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a number of hours from 0 to {MAX_OVERLAP_HOURS}"
        )
    return hours


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)
