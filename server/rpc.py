"""How every RPC begins and ends at the gRPC boundary.

It ends with domain errors turned into canonical status codes with google.rpc details: the
table lives with the error tree (each class names its code; editcore.api.rpc_errors builds
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
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import grpc
from google.protobuf.message import DecodeError
from grpc_status import rpc_status

from editcore.api.rpc_errors import to_status
from editcore.errors import ImageEditorError, Internal, InvalidArgument

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


class PeerThrottle:
    """Says yes once per `seconds` for each peer (the address, without its port)."""

    def __init__(self, seconds: float, peers: int = 10_000) -> None:
        self._seconds = seconds
        self._peers = peers
        self._last: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, peer: str) -> bool:
        host = peer_host(peer)
        now = time.monotonic()
        with self._lock:
            last = self._last.get(host)
            if last is not None and now - last < self._seconds:
                return False
            self._last[host] = now
            self._last.move_to_end(host)
            while len(self._last) > self._peers:
                self._last.popitem(last=False)
            return True


def peer_host(peer: str) -> str:
    """ "ipv4:10.1.2.3:5555" -> "ipv4:10.1.2.3"; "ipv6:[::1]:5555" -> "ipv6:[::1]"."""
    host, _, port = peer.rpartition(":")
    return host if host and port.isdigit() else peer


_undecodable_log = PeerThrottle(UNDECODABLE_LOG_SECONDS)


def _undecodable(method: str, request: UndecodableRequest, context: Any) -> InvalidArgument:
    peer = context.peer() or "unknown"
    if _undecodable_log.allow(peer):
        log.warning(
            "%s: %d request bytes from %s do not parse (%s); more from this peer within %.0fs"
            " go unlogged",
            method,
            request.size,
            peer_host(peer),
            request.error[:200],
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
