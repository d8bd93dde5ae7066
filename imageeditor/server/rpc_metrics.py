"""The server interceptor that counts every RPC by method and status code and times it
(imageeditor.core.metrics: imageeditor_rpcs_total, imageeditor_rpc_duration_seconds).

Only methods the server has a handler for are counted, so a caller inventing method names
cannot grow the label set; a stream is timed from its start to its end, whichever side ends it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from time import perf_counter
from typing import TYPE_CHECKING, Any

import grpc

from imageeditor.core.metrics import RPC_DURATION, RPCS

if TYPE_CHECKING:  # generic for the type checker only
    Handler = grpc.RpcMethodHandler[Any, Any]
    Continuation = Callable[[grpc.HandlerCallDetails], Awaitable[Handler | None]]


class MetricsInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self) -> None:
        # The wrapped handler of each handler seen: a server hands out the same handler for
        # a method on every call, so the wrapping is done once (bounded: an interceptor
        # after this one may make a handler per call).
        self._wrapped: dict[Handler, Handler] = {}

    async def intercept_service(
        self, continuation: Continuation, handler_call_details: grpc.HandlerCallDetails
    ) -> Handler | None:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        wrapped = self._wrapped.get(handler)
        if wrapped is None:
            wrapped = self._wrap(handler, handler_call_details.method)
            if len(self._wrapped) >= MAX_WRAPPED:
                self._wrapped.clear()
            self._wrapped[handler] = wrapped
        return wrapped

    def _wrap(self, handler: Handler, path: str) -> Handler:
        service, _, method = path.lstrip("/").rpartition("/")
        record = _Recorder(service, method)
        if handler.unary_unary is not None:
            return handler._replace(unary_unary=record.unary(handler.unary_unary))  # type: ignore[attr-defined, no-any-return]
        if handler.unary_stream is not None:
            return handler._replace(unary_stream=record.streaming(handler.unary_stream))  # type: ignore[attr-defined, no-any-return]
        if handler.stream_unary is not None:
            return handler._replace(stream_unary=record.unary(handler.stream_unary))  # type: ignore[attr-defined, no-any-return]
        if handler.stream_stream is not None:
            return handler._replace(stream_stream=record.streaming(handler.stream_stream))  # type: ignore[attr-defined, no-any-return]
        return handler  # pragma: no cover - a handler has one of the four


MAX_WRAPPED = 256


class _Recorder:
    def __init__(self, service: str, method: str) -> None:
        self._labels = (service, method)
        self._duration = RPC_DURATION.labels(service, method)
        self._counted: dict[str, Any] = {}  # the counter of each code, looked up once

    def unary(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        async def call(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started, error = perf_counter(), None
            try:
                return await behavior(request, context)
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._done(context, error, started)

        return call

    def streaming(self, behavior: Callable[..., Any]) -> Callable[..., Any]:
        if not inspect.isasyncgenfunction(behavior):  # writes with context.write()
            return self.unary(behavior)

        async def stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            started, error = perf_counter(), None
            try:
                async for response in behavior(request, context):
                    yield response
            except BaseException as exc:
                error = exc
                raise
            finally:
                self._done(context, error, started)

        return stream

    def _done(
        self,
        context: grpc.aio.ServicerContext[Any, Any],
        error: BaseException | None,
        started: float,
    ) -> None:
        self._duration.observe(perf_counter() - started)
        code = _code(context, error)
        counter = self._counted.get(code)
        if counter is None:
            counter = self._counted[code] = RPCS.labels(*self._labels, code)
        counter.inc()


def _code(context: grpc.aio.ServicerContext[Any, Any], error: BaseException | None) -> str:
    """The status the call ends with: the one the method set or aborted with; CANCELLED when
    the caller went away; UNKNOWN for an exception gRPC turns into one; else OK."""
    code = context.code()
    if isinstance(code, grpc.StatusCode):
        return str(code.name)
    if isinstance(code, int) and code:
        return _BY_NUMBER.get(code, "UNKNOWN")
    if isinstance(error, (asyncio.CancelledError, GeneratorExit)):
        return "CANCELLED"
    if error is not None and not isinstance(error, grpc.aio.AbortError):
        return "UNKNOWN"
    return "OK"


_BY_NUMBER = {code.value[0]: code.name for code in grpc.StatusCode}
