"""How both clients talk to the service: channel options, retry policy and call metadata.

Retries of unary calls are left to gRPC itself (a service config), so they honour the
channel's state and never replay a call the server has already answered. Streams are not
retried here: `watch` resumes by version on its own (see watching.py).
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from imageeditor.v1 import image_editor_service_pb2_grpc

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
SERVICE_NAME = "imageeditor.v1.ImageEditorService"
UNARY_METHODS = ("SubmitTask", "BatchSubmit", "GetStatus", "CancelTask", "ListTasks")

# UNAVAILABLE only: it is the one code that means "the request did not get processed, try
# again" (a restart, a dropped connection). Everything else is an answer.
RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.2s",
    "maxBackoff": "3s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


def service_config() -> str:
    """The JSON service config that gives the unary methods their retry policy."""
    names = [{"service": SERVICE_NAME, "method": method} for method in UNARY_METHODS]
    return json.dumps({"methodConfig": [{"name": names, "retryPolicy": RETRY_POLICY}]})


def channel_options() -> list[tuple[str, str | int]]:
    """Options for a channel to the service: 64 MiB messages and the retry policy."""
    return [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", service_config()),
    ]


def open_channel(
    address: str,
    credentials: grpc.ChannelCredentials | None,
    options: list[tuple[str, str | int]] | None = None,
) -> grpc.Channel:
    """A blocking channel to `address`: TLS with `credentials`, plain text without."""
    if credentials is not None:
        return grpc.secure_channel(address, credentials, options=options)
    return grpc.insecure_channel(address, options=options)


def auth_metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    """The metadata every call carries: `authorization: Bearer <key>` when there is a key."""
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


def new_stub(channel: grpc.Channel | grpc.aio.Channel) -> Any:
    """The generated ImageEditorService stub on `channel` (sync or aio alike).

    The generated module is untyped, so the stub is Any: each client gives every response
    its protobuf type where it receives it.
    """
    return image_editor_service_pb2_grpc.ImageEditorServiceStub(channel)  # type: ignore[no-untyped-call]
