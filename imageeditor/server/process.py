"""What every server process does the same way: log (imageeditor.core.logs), run until SIGINT or
SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from imageeditor.core.logs import configure_logging

__all__ = ["configure_logging", "stop_on_signals"]


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (call from the running event loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
