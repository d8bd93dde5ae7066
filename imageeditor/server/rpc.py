"""How every RPC begins and ends at the gRPC boundary.

It ends with domain errors turned into canonical status codes with google.rpc details: the
table lives with the error tree (each class names its code; imageeditor.core.api.rpc_errors builds
the details); this module applies it, for unary and streaming methods alike, and hides
unexpected exceptions behind INTERNAL.

It begins with the request bytes: gRPC parses them before the method runs, and bytes that do
not parse would end as UNKNOWN with a traceback in the log for every such call. Parsed by
`tolerant` instead, they reach the method as an UndecodableRequest, which is refused as
INVALID_ARGUMENT (REQUEST_UNDECODABLE) and logged at most once a minute per peer.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from imageeditor.core.adapters.memory.rate_limiter import InProcessRateLimiter
from imageeditor.core.api.rpc_errors import to_status
from imageeditor.core.errors import ImageEditorError, Internal, InvalidArgument, clip

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

UNDECODABLE_LOG_SECONDS = 60.0


@dataclass(frozen=True)
class UndecodableRequest:
    """What a method receives in place of a request whose bytes do not parse."""

    size: int
    error: str


def tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    """`deserializer`, giving an UndecodableRequest instead of raising on bad bytes."""

    def deserialize(raw: bytes) -> Any:
        try:
            return deserializer(raw)
        except DecodeError as exc:
            return UndecodableRequest(len(raw), str(exc))

    return deserialize


def peer_host(peer: str) -> str:
    """ "ipv4:10.1.2.3:5555" -> "ipv4:10.1.2.3"; "ipv6:[::1]:5555" -> "ipv6:[::1]"."""
    host, _, port = peer.rpartition(":")
    return host if host and port.isdigit() else peer


# One log line per peer per UNDECODABLE_LOG_SECONDS.
_undecodable_log = InProcessRateLimiter(max_keys=10_000)


def _undecodable(method: str, request: UndecodableRequest, context: Any) -> InvalidArgument:
    peer = peer_host(context.peer() or "unknown")
    if not _undecodable_log.acquire(peer, 1 / UNDECODABLE_LOG_SECONDS, 1):
        log.warning(
            "%s: %d request bytes from %s do not parse (%s); more from this peer within %.0fs"
            " go unlogged",
            method,
            request.size,
            peer,
            clip(request.error),
            UNDECODABLE_LOG_SECONDS,
        )
    return InvalidArgument(
        f"the request is not a valid {method} request message ({request.size} bytes)",
        reason="REQUEST_UNDECODABLE",
    )


async def abort_with_error(
    context: grpc.aio.ServicerContext[Any, Any], error: ImageEditorError
) -> NoReturn:
    await context.abort_with_status(rpc_status.to_status(to_status(error)))
    raise AssertionError("abort_with_status returned")  # pragma: no cover


def _internal(method: str) -> Internal:
    log.exception("%s failed", method)
    return Internal("internal error; it has been logged", reason="INTERNAL")


def rpc_method(method: F) -> F:
    """Wrap a servicer method (coroutine or async generator) so errors leave as statuses."""
    name = method.__name__

    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: Any, request: Any, context: Any) -> AsyncIterator[Any]:
            try:
                if isinstance(request, UndecodableRequest):
                    raise _undecodable(name, request, context)
                async for item in method(self, request, context):
                    yield item
            except ImageEditorError as exc:
                await abort_with_error(context, exc)
            except (grpc.aio.AbortError, GeneratorExit):
                raise
            except Exception:
                await abort_with_error(context, _internal(name))

        return stream  # type: ignore[return-value]

    @functools.wraps(method)
    async def unary(self: Any, request: Any, context: Any) -> Any:
        try:
            if isinstance(request, UndecodableRequest):
                raise _undecodable(name, request, context)
            return await method(self, request, context)
        except ImageEditorError as exc:
            await abort_with_error(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception:
            await abort_with_error(context, _internal(name))

    return unary  # type: ignore[return-value]
