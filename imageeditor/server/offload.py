"""Where an RPC's CPU-bound steps run: off the event loop, in a pool bounded by the cores.

The event loop only moves bytes and awaits. Probing inline images, validating a batch of a
hundred items and building large responses take milliseconds each, and a hostile request
can make them take far longer: run on the loop, they would hold every other call, health
checks included. In the pool, a flood of them waits its turn while the loop keeps serving.

The pool's threads hold the GIL while they run Python, and hand it to a waiting loop only
every switch interval (5 ms by default): a pool at work makes each of the loop's steps wait
that long. The pool lowers the interval to 1 ms in its process (`bench/hostile.py`, four
clients flooding 24 MB requests: one A/B pair of runs gave a health-check p99 of 105-119 ms
at 5 ms and 57-100 ms at 1 ms, though runs on a 2-core machine vary by tens of ms; the rest is
gRPC copying each request on the loop, GIL held).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

GIL_SWITCH_SECONDS = 0.001
# Requests up to this size are validated on the loop: 23 µs for a 1 KB PNG, against 69 µs for
# a hop to the pool and back on a quiet server (measured on the 2-core bench machine).
INLINE_BYTES = 16 * 1024


class Offload:
    """A bounded thread pool for CPU-bound steps; the caller's context (its trace) goes along."""

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads or os.cpu_count() or 2
        sys.setswitchinterval(min(sys.getswitchinterval(), GIL_SWITCH_SECONDS))
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="edge-cpu")

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` in the pool, awaited."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    async def run_sized(
        self, size: int, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """`fn(*args, **kwargs)` on the loop when its input is `size` ≤ INLINE_BYTES bytes,
        else in the pool. For steps whose work is bounded by their input's size (the header
        probe is: imageeditor.core.image_structure): a small input costs less than the hop."""
        if size <= INLINE_BYTES:
            return fn(*args, **kwargs)
        return await self.run(fn, *args, **kwargs)

    def close(self) -> None:
        """Stop taking work; what is running finishes on its own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
