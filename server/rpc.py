"""How every RPC ends: domain errors become canonical status codes with google.rpc details.

The table lives with the error tree (each class names its code; editcore.api.rpc_errors builds
the details); this module only applies it at the gRPC boundary, for unary and streaming
methods alike, and hides unexpected exceptions behind INTERNAL.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn, TypeVar

import grpc
from grpc_status import rpc_status

from editcore.api.rpc_errors import to_status
from editcore.errors import ImageEditorError, Internal

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


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
            return await method(self, request, context)
        except ImageEditorError as exc:
            await abort_with_error(context, exc)
        except grpc.aio.AbortError:
            raise
        except Exception:
            await abort_with_error(context, _internal(name))

    return unary  # type: ignore[return-value]
