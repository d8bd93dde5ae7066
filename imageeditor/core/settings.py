"""The one settings object, read from the environment once in each composition root.

Its defaults are the embedded mode: one process, SQLite and results under the data
directory, in-process broker, events, cache and rate limits.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from imageeditor.core.callbacks import DEFAULT_RETRY_SCHEDULE
from imageeditor.core.errors import InvalidArgument

MIB = 1024 * 1024
DEFAULT_DATA_DIR = Path("var")
# In the data directory: embedded mode's development API key, which the SDK and CLI read.
DEV_API_KEY_FILE = "dev-api-key"


def bad_setting(variable: str, problem: str) -> InvalidArgument:
    """The error that stops a process whose setting `variable` cannot work (BAD_SETTING)."""
    return InvalidArgument(
        f"{variable}: {problem}", field_violations={variable: problem}, reason="BAD_SETTING"
    )


@dataclass(frozen=True)
class Settings:
    """Every knob of the service. Environment variable: IMAGEEDITOR_<FIELD NAME UPPERCASED>."""

    data_dir: Path = DEFAULT_DATA_DIR
    listen_address: str = "127.0.0.1:50051"
    # TLS on the gRPC port: the server's certificate chain and key (PEM files; both or
    # neither), and with a client CA, mutual TLS: only clients with a certificate it signed.
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_client_ca_file: str = ""
    database_url: str = ""  # empty: SQLite at <data_dir>/imageeditor.db
    # Production mode: set redis_url (and a PostgreSQL database_url). redis://, rediss:// or
    # redis+sentinel://host:port[,host:port]/service_name[/db].
    redis_url: str = ""
    broker_url: str = ""  # empty: redis_url; amqp:// for RabbitMQ
    storage_url: str = ""  # empty: file://<data_dir>/blobs; or s3://bucket/prefix
    s3_endpoint_url: str = ""  # for S3-compatible stores (MinIO, Ceph, moto)
    s3_region: str = "us-east-1"
    s3_access_key_id: str = ""  # empty: boto3's own credential chain
    s3_secret_access_key: str = ""
    s3_presign_seconds: int = 0  # >0: results also carry a presigned URL valid this long
    hot_cache_seconds: float = 1.0  # in-process layer over the Redis status cache
    reconcile_interval_seconds: float = 10.0
    queued_redispatch_seconds: float = 30.0  # QUEUED this long without a start: dispatch again
    running_lease_seconds: float = 600.0  # RUNNING this long without a transition: requeue
    task_soft_time_limit_seconds: float = 240.0
    task_hard_time_limit_seconds: float = 300.0
    # A running task whose run has not committed its cancel this long after CancelTask (its
    # process was killed) is cancelled by the server.
    cancel_grace_seconds: float = 2.0
    # Embedded worker threads; 0 accepts tasks but runs none (they wait, QUEUED).
    embedded_workers: int = 2
    max_message_bytes: int = 32 * MIB
    max_inline_image_bytes: int = 25 * MIB
    max_fetch_bytes: int = 25 * MIB
    fetch_timeout_seconds: float = 20.0
    max_image_pixels: int = 50_000_000
    max_frames: int = 1_000  # animated sources: more frames than this are refused
    content_checker: str = "structural"  # the validate stage's checker (workers/content_checks)
    # The largest image an operation may make (0: max_image_pixels), and its longest side:
    # checked at submit where the source's size is known, and before every operation.
    max_output_pixels: int = 0
    max_output_side: int = 10_000
    max_batch_size: int = 100
    # Fairness: at most this many of one user's unfinished tasks are dispatched at once; the
    # rest wait, in order (imageeditor.core.admission). 0: no cap.
    max_dispatched_per_user: int = 16
    # Threads that validate requests and build large responses off the event loop (0: one
    # per core). A flood of heavy requests queues for them; the loop keeps answering.
    edge_cpu_threads: int = 0
    max_attempts: int = 3
    # Result reuse (imageeditor.core.reuse): a task whose inline source has the same bytes,
    # operations, style and output options as an earlier one takes that one's result without
    # a run. "user": among one user's tasks; "shared": among all users' (how fast a task
    # ends then tells that someone processed the same image); "off". A result is reused for
    # result_reuse_seconds after it was made.
    result_reuse: str = "user"
    result_reuse_seconds: float = 86400.0
    # Open WatchTask streams per user in each server process; failed authentications per
    # peer address: a burst, then this many a second (beyond: refused without a lookup).
    max_watch_streams_per_user: int = 100
    # Calls that have arrived and wait for the server to take them up (gRPC core's pending
    # requests): beyond this, gRPC cancels the oldest; beyond twice this, every new one. Its
    # own default (1,000) cancelled ~40% of 5,000 WatchTask streams opened at once.
    max_pending_calls: int = 10_000
    auth_failure_rate: float = 1.0
    auth_failure_burst: int = 20
    submit_rate: float = 20.0  # per user, tokens per second
    submit_burst: int = 40
    batch_rate: float = 1.0  # per user; the seed system allowed one batch a second
    batch_burst: int = 2
    result_chunk_bytes: int = 256 * 1024
    shutdown_grace_seconds: float = 5.0
    allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    # Background removal (rembg). Model files are provisioned at install, never downloaded at
    # run time; the default folder is rembg's own convention ($U2NET_HOME or ~/.u2net).
    models_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("U2NET_HOME", "~/.u2net")).expanduser()
    )
    rembg_model: str = "u2netp"
    onnx_threads: int = 0  # onnxruntime intra-op threads; 0: one per core
    onnx_memory_arena: bool = True  # 1.7x faster u2netp for ~200 MB per process (bench/)
    # Style prompts: "presets" (named Pillow styles) or "http" (an OpenAI-compatible
    # images/edits API).
    style_backend: str = "presets"
    style_http_url: str = ""
    style_http_api_key: str = ""
    style_http_model: str = ""
    style_http_timeout_seconds: float = 60.0
    style_http_retries: int = 3
    # Callbacks: the timeout of one POST (redirects included); the delays before each retry
    # (default: the Standard Webhooks schedule, 8 attempts over ~27.6 h), jittered ±20%; how
    # long events for one URL are gathered into one request, and at most how many; the
    # embedded mode's sender threads; hosts that callbacks may reach although their addresses
    # are not public (as allowed_hosts does for image URLs).
    callback_timeout_seconds: float = 15.0
    callback_retry_schedule: tuple[float, ...] = DEFAULT_RETRY_SCHEDULE
    callback_window_seconds: float = 1.0
    callback_max_events: int = 50
    callback_workers: int = 4
    callback_allowed_hosts: tuple[str, ...] = field(default_factory=tuple)
    # Operating it. The host the operator endpoints listen on (metrics, Flower; 0.0.0.0 in a
    # container). Prometheus /metrics (imageeditor.core.metrics) of a server (the embedded one
    # includes its workers) and of a Celery worker (all its pool processes); 0: off. Logs:
    # "text" (one line a record) or "json" (one object a line, with trace and task ids:
    # imageeditor.core.logs). Flower (`imageeditor flower`): its port and "user:password"; Celery
    # task events (what Flower shows) are sent while task_events is on.
    ops_host: str = "127.0.0.1"
    metrics_port: int = 0
    worker_metrics_port: int = 0
    log_format: str = "text"
    log_level: str = "INFO"
    flower_port: int = 5555
    flower_basic_auth: str = ""
    task_events: bool = True
    # Encryption at rest (imageeditor.core.sealing): AES-SIV keys, newest first; a new value is
    # sealed
    # with the first, any of them opens one. Embedded mode makes one in the data folder when
    # none is given; production requires them.
    encryption_keys: tuple[str, ...] = field(default_factory=tuple)

    def __repr__(self) -> str:
        """Every field, with secrets and the passwords of URLs hidden: a Settings object
        printed in a log or a traceback gives nothing away."""
        shown = ", ".join(
            f"{name}={_shown(name, getattr(self, name))!r}" for name in self.__dataclass_fields__
        )
        return f"Settings({shown})"

    @property
    def is_embedded(self) -> bool:
        """No Redis configured: one process with in-process broker, events, cache and limits."""
        return not self.redis_url

    @property
    def effective_max_output_pixels(self) -> int:
        return self.max_output_pixels or self.max_image_pixels

    @property
    def effective_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @property
    def effective_storage_url(self) -> str:
        return self.storage_url or (self.data_dir / "blobs").resolve().as_uri()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.database_path.resolve()}"

    @property
    def database_path(self) -> Path:
        """Embedded mode's SQLite file (when database_url is empty)."""
        return self.data_dir / "imageeditor.db"

    @property
    def dev_key_path(self) -> Path:
        """Where embedded mode keeps its development API key for the CLI to find."""
        return self.data_dir / DEV_API_KEY_FILE

    @property
    def encryption_key_path(self) -> Path:
        """Where embedded mode keeps the key it made, when IMAGEEDITOR_ENCRYPTION_KEYS is empty."""
        return self.data_dir / "encryption-key"

    @property
    def dev_webhook_secret_path(self) -> Path:
        """Where embedded mode keeps the secret that signs the development user's callbacks."""
        return self.data_dir / "dev-webhook-secret"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for name, f in cls.__dataclass_fields__.items():
            raw = env.get(f"IMAGEEDITOR_{name.upper()}")
            if raw is None:
                continue
            values[name] = _parse(name, str(f.type), raw)
        return cls(**values)  # type: ignore[arg-type]


def _parse(name: str, type_name: str, raw: str) -> object:
    try:
        if type_name == "Path":
            return Path(raw)
        if type_name == "int":
            return int(raw)
        if type_name == "bool":
            return _parse_bool(raw)
        if type_name == "float":
            return float(raw)
        if type_name.startswith("tuple"):
            items = tuple(item.strip() for item in raw.split(",") if item.strip())
            return tuple(float(item) for item in items) if "float" in type_name else items
        return raw
    except ValueError as exc:
        variable = f"IMAGEEDITOR_{name.upper()}"
        raise InvalidArgument(
            f"{variable}={raw!r} is not a valid {type_name}",
            field_violations={variable: str(exc)},
            reason="BAD_SETTING",
        ) from None


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


# Fields whose whole value is a secret; URLs may hold a password in their userinfo.
SECRET_FIELDS = frozenset(
    {"s3_secret_access_key", "style_http_api_key", "encryption_keys", "flower_basic_auth"}
)
_URL_PASSWORD = re.compile(r"(//[^/:@]*:)[^/@]*@")


def _shown(name: str, value: object) -> object:
    if name in SECRET_FIELDS:
        return "***" if value else value
    if isinstance(value, str) and "://" in value:
        return _URL_PASSWORD.sub(r"\1***@", value.split("?", 1)[0])
    return value
