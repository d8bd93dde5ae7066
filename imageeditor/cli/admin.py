"""Operator subcommands: run the server or a worker, create API keys and webhook secrets,
migrate the database, install background-removal models.

These open the database, start the server or load worker code themselves, so they need the
`server` or `worker` extra.
Their imports happen inside each command: the SDK-only install must still load the CLI.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from imageeditor.cli.progress import ProgressLine
from imageeditor.core.errors import FailedPrecondition
from imageeditor.core.settings import Settings

if TYPE_CHECKING:  # the SDK-only install has no SQLAlchemy: imported where used
    from imageeditor.core.adapters.sql.callback_store import SqlCallbackStore
    from imageeditor.core.adapters.storage import StorageAdapters
    from imageeditor.core.ports import ApiKey

SERVER_EXTRA_HINT = "this command needs the server extras: pip install 'imageeditor[server,worker]'"


class MissingExtra(RuntimeError):
    """An operator command ran where only the SDK is installed."""


def serve(args: argparse.Namespace) -> int:
    """`imageeditor serve` until SIGINT or SIGTERM: the embedded server (and worker), or with
    IMAGEEDITOR_REDIS_URL set, a production server (its workers run as `imageeditor worker`)."""
    settings = Settings.from_env()
    try:
        if settings.is_embedded:
            from imageeditor.embedded.main import run
        else:
            from imageeditor.server.main import run
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    run(settings)
    return 0


def worker(args: argparse.Namespace) -> int:
    """`imageeditor worker [--queues edits,models] [--concurrency N]`: a Celery worker."""
    try:
        from imageeditor.workers.main import run
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    run(Settings.from_env(), args.queues, args.concurrency, args.loglevel)
    return 0


def flower(args: argparse.Namespace) -> int:
    """`imageeditor flower`: Flower over the workers (production mode), with basic auth."""
    try:
        from imageeditor.workers.flower import run
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    run(Settings.from_env())
    return 0


def health(args: argparse.Namespace) -> int:
    """`imageeditor health [SERVICE]`: print the server's gRPC health status; exit 0 only when
    SERVING (a container's health check; a draining server answers NOT_SERVING)."""
    import grpc

    try:
        from grpc_health.v1 import health_pb2, health_pb2_grpc
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    from imageeditor.sdk.channel import open_channel
    from imageeditor.sdk.credentials import resolve_address, resolve_tls

    address = resolve_address(None)
    channel = open_channel(address, resolve_tls(args.tls or None))
    request = health_pb2.HealthCheckRequest(service=args.service)
    stub: Any = health_pb2_grpc.HealthStub(channel)  # the stubs type the methods loosely
    try:
        with channel:
            reply = stub.Check(request, timeout=args.timeout)
    except grpc.RpcError as error:
        print(f"{address}: {error.code().name}: {error.details()}", file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def create_key(args: argparse.Namespace) -> int:
    """`imageeditor keys create NAME`: store a new key and print it (it is shown only once),
    with the webhook secret that signs the user's callbacks (made if the user has none)."""
    with _stores() as stores:
        from imageeditor.core.apikeys import create_api_key
        from imageeditor.core.webhook_secrets import ensure_webhook_secret

        plaintext, record = create_api_key(stores.api_keys, args.name)
        secret = ensure_webhook_secret(stores.webhook_secrets, record.user_id)[0]
    if args.json:
        fields = {"key": plaintext, "id": record.id, "name": record.name, "user_id": record.user_id}
        print(json.dumps({**fields, "webhook_secret": secret.secret}))
    else:
        print(plaintext)  # alone on the first line: scripts read it from there
        print(f"webhook secret: {secret.secret}")
    return 0


def list_keys(args: argparse.Namespace) -> int:
    """`imageeditor keys list [--user USER]`: every key (of a user), oldest first: id, name,
    user, when made, when last used (to the minute) and, for a revoked one, when revoked."""
    with _stores() as stores:
        keys = stores.api_keys.list_api_keys(args.user)
    for key in keys:
        if args.json:
            print(json.dumps(_key_fields(key)))
            continue
        used = f"last used {_utc_text(key.last_used_at)}" if key.last_used_at else "never used"
        revoked = f"  REVOKED {_utc_text(key.revoked_at)}" if key.revoked_at else ""
        made = f"made {_utc_text(key.created_at)}"
        print(f"{key.id}  {key.name}  user={key.user_id}  {made}  {used}{revoked}")
    return 0


def revoke_key(args: argparse.Namespace) -> int:
    """`imageeditor keys revoke ID`: the key stops working within seconds, on every server."""
    with _stores() as stores:
        from imageeditor.core.task import utcnow

        key = stores.api_keys.revoke_api_key(args.key_id, utcnow())
    if key is None:
        _to_stderr(f"error: no API key {args.key_id}")
        return 1
    if args.json:
        print(json.dumps(_key_fields(key)))
    else:
        assert key.revoked_at is not None
        print(f"{key.id}  {key.name}  revoked {_utc_text(key.revoked_at)}")
    return 0


def _key_fields(key: ApiKey) -> dict[str, str | None]:
    def text(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment is not None else None

    return {
        "id": key.id,
        "name": key.name,
        "user_id": key.user_id,
        "created_at": key.created_at.isoformat(),
        "last_used_at": text(key.last_used_at),
        "revoked_at": text(key.revoked_at),
    }


def webhook_secret(args: argparse.Namespace) -> int:
    """`imageeditor keys webhook-secret USER [--rotate [--overlap-hours H]]`: the user's active
    webhook secrets, newest first (one is made if there is none); with --rotate a new one
    first, the older ones signing on until the overlap ends."""
    retired = False  # whether a rotation stopped older secrets at once
    with _callback_store() as store:
        from datetime import timedelta

        from imageeditor.core.task import utcnow
        from imageeditor.core.webhook_secrets import (
            DEFAULT_ROTATION_OVERLAP,
            ensure_webhook_secret,
            rotate_webhook_secret,
        )

        now = utcnow()
        if args.rotate:
            overlap = DEFAULT_ROTATION_OVERLAP
            if args.overlap_hours is not None:
                overlap = timedelta(hours=args.overlap_hours)
            retired = not overlap and bool(store.webhook_secrets(args.user, now))
            rotate_webhook_secret(store, args.user, overlap, now)
        secrets = ensure_webhook_secret(store, args.user, now)
    for secret in secrets:
        if args.json:
            expires_at = secret.expires_at.isoformat() if secret.expires_at else None
            fields = {"id": secret.id, "user_id": secret.user_id, "secret": secret.secret}
            created_at = secret.created_at.isoformat()
            print(json.dumps({**fields, "created_at": created_at, "expires_at": expires_at}))
        elif secret.expires_at is not None:
            print(f"{secret.secret}  (signs until {_utc_text(secret.expires_at)})")
        else:
            print(secret.secret)
    if retired and not args.json:
        print("the previous secrets no longer sign")
    return 0


def enable_callbacks(args: argparse.Namespace) -> int:
    """`imageeditor callbacks enable USER URL`: lift the stop a 410 Gone put on a URL."""
    with _callback_store() as store:
        enabled = store.enable_endpoint(args.user, args.url)
    if args.json:
        print(json.dumps({"user_id": args.user, "url": args.url, "was_disabled": enabled}))
    elif enabled:
        print(f"callbacks to {args.url} for {args.user} are sent again")
    else:
        print(f"callbacks to {args.url} for {args.user} were not disabled")
    return 0


def redeliver_callbacks(args: argparse.Namespace) -> int:
    """`imageeditor callbacks redeliver EVENT_ID...`: PENDING again, due now (the sender picks
    them up within a reconcile interval). Exits 1 if an id names no event."""
    from imageeditor.core.task import utcnow

    missing = 0
    with _callback_store() as store:
        for event_id in args.event_ids:
            delivery = store.redeliver(event_id, utcnow())
            if delivery is None:
                missing += 1
                print(f"error: no callback event {event_id}", file=sys.stderr)
                continue
            gone = store.endpoint_disabled(delivery.user_id, delivery.url)
            if args.json:
                fields = {"event_id": delivery.id, "url": delivery.url, "url_disabled": gone}
                print(json.dumps({**fields, "state": delivery.state.value}))
            else:
                line = f"{delivery.id}  {delivery.state.value.upper()}  {delivery.url}"
                if gone:
                    line += "  (its URL is disabled: `imageeditor callbacks enable` it first)"
                print(line)
    return 1 if missing else 0


@contextmanager
def _stores(create: bool = False) -> Iterator[StorageAdapters]:
    """The configured stores, sealing with the configured keys, the database schema brought
    up to date first (operator commands are often the first thing run against a fresh one).
    Unless `create`, a new SQLite database is not made in the default data folder (./var):
    run elsewhere than the server, the command would work on a database of its own."""
    try:
        from imageeditor.core.adapters.storage import open_storage
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    settings = Settings.from_env()
    if not create:
        _refuse_a_new_default_database(settings)
    stores = open_storage(settings, migrate=True)
    try:
        yield stores
    finally:
        stores.close()


def _refuse_a_new_default_database(settings: Settings) -> None:
    database = settings.database_path
    chosen = settings.database_url or os.environ.get("IMAGEEDITOR_DATA_DIR")
    if chosen or database.exists():
        return
    raise FailedPrecondition(
        f"there is no database at {database.resolve()}: operator commands work on the"
        " server's database. Run this in the folder `imageeditor serve` runs in, or set"
        " IMAGEEDITOR_DATA_DIR to its data folder (IMAGEEDITOR_DATABASE_URL in production"
        " mode); `imageeditor db upgrade` makes a new database here",
        reason="NO_DATABASE",
    )


@contextmanager
def _callback_store() -> Iterator[SqlCallbackStore]:
    with _stores() as stores:
        yield stores.deliveries


def upgrade_db(args: argparse.Namespace) -> int:
    """`imageeditor db upgrade`: apply every pending migration (sealing what is in clear)."""
    with _stores(create=True):
        pass
    if args.json:
        print(json.dumps({"upgraded": True}))
    else:
        print("database schema is up to date")
    return 0


def reencrypt_db(args: argparse.Namespace) -> int:
    """`imageeditor db reencrypt`: seal every stored URL, prompt and webhook secret again
    under the newest key (the first of IMAGEEDITOR_ENCRYPTION_KEYS); the older keys can go
    once it has run. Values in clear are sealed too. Safe to run again."""
    with _stores() as stores, ProgressLine() as line:
        changed = stores.tasks.reseal(
            lambda table, walked, total: line.show(
                walked / total if total else 1.0, f"{table} {walked}/{total} rows"
            )
        )
    if args.json:
        print(json.dumps(changed))
    else:
        total = sum(changed.values())
        detail = ", ".join(f"{n} {table}" for table, n in changed.items() if n)
        print(
            f"sealed {total} value(s) again under the newest key"
            + (f": {detail}" if detail else "")
        )
    return 0


def new_encryption_key(args: argparse.Namespace) -> int:
    """`imageeditor keys encryption-key`: print a new key for IMAGEEDITOR_ENCRYPTION_KEYS
    (put it first to rotate, then run `imageeditor db reencrypt`)."""
    from imageeditor.core.sealing import new_key

    key = new_key()
    print(json.dumps({"key": key}) if args.json else key)
    return 0


def fetch_models(args: argparse.Namespace) -> int:
    """`imageeditor models fetch [--model u2netp]`: install a model file unless the right one
    is already there, then warm numba's cache (alpha matting's first use)."""
    try:
        from imageeditor.workers.model_files import fetch_model, warm_numba_cache
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    report = _to_stderr if args.json else print
    result = fetch_model(Settings.from_env().models_dir, args.model, report)
    if not args.no_warm:
        warm_numba_cache(report)
    if args.json:
        fields = {"model": result.model, "path": str(result.path), "md5": result.md5}
        print(json.dumps({**fields, "fetched": result.fetched}))
    return 0


def quantize_models(args: argparse.Namespace) -> int:
    """`imageeditor models quantize [--force]`: make the int8 u2netp from the installed one
    (imageeditor.workers.quantization), unless this recipe made it already."""
    try:
        from imageeditor.core.rembg_models import find_model_file
        from imageeditor.workers.quantization import TARGET, is_current, quantize_u2netp
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    report = _to_stderr if args.json else print
    models_dir = Settings.from_env().models_dir
    path = find_model_file(models_dir, TARGET)
    made = path is None or args.force or not is_current(path)
    if made:
        with ProgressLine() as line:
            path = quantize_u2netp(models_dir, line.show)
            line.show(1.0, f"{TARGET}: made")
    else:
        report(f"{TARGET}: already made at {path} (--force makes it again)")
    if args.json:
        print(json.dumps({"model": TARGET, "path": str(path), "made": made}))
    return 0


def warm_models(args: argparse.Namespace) -> int:
    """`imageeditor models warm`: compile pymatting's numba code into numba's cache."""
    try:
        from imageeditor.workers.model_files import warm_numba_cache
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    seconds = warm_numba_cache(_to_stderr if args.json else print)
    if args.json:
        print(json.dumps({"warmed": True, "seconds": round(seconds, 2)}))
    return 0


def list_models(args: argparse.Namespace) -> int:
    """`imageeditor models list`: every known model, whether its file is installed, its md5."""
    try:
        from imageeditor.workers.model_files import model_statuses
    except ImportError as error:
        raise MissingExtra(f"{SERVER_EXTRA_HINT} ({error})") from error
    settings = Settings.from_env()
    statuses = model_statuses(settings.models_dir)
    if args.json:
        for s in statuses:
            fields = {"model": s.name, "installed": s.path is not None, "path": str(s.path or "")}
            print(
                json.dumps(
                    {
                        **fields,
                        "size_bytes": s.size_bytes,
                        "md5_ok": s.md5_ok,
                        "fetchable": s.fetchable,
                        "default": s.name == settings.rembg_model,
                    }
                )
            )
        return 0
    print(f"models folder: {settings.models_dir} (default model: {settings.rembg_model})")
    print(f"{'MODEL':<24}{'STATE':<11}{'SIZE':>10}  MD5")
    for s in statuses:
        state = "installed" if s.path else "missing"
        size = f"{s.size_bytes / 2**20:.1f} MiB" if s.path else ""
        md5 = {True: "ok", False: "MISMATCH", None: ""}[s.md5_ok] if s.path else ""
        print(f"{s.name:<24}{state:<11}{size:>10}  {md5}".rstrip())
    print(
        "`imageeditor models fetch` installs u2netp, `imageeditor models quantize` makes "
        "u2netp-int8 from it; for another model, place its <name>.onnx in the models folder"
    )
    return 0


def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)
