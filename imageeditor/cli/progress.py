"""A one-line progress bar for stderr, small enough not to need a dependency.

On a terminal the line is redrawn in place with `\\r`; anywhere else (a log file, CI) each
change is written as its own plain line, so the output stays readable there.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 24


class ProgressLine:
    """`[##########--------------]  42% 3.1s <text>` on `stream` (stderr by default): the
    fraction done, the time since the line was made, and what is going on."""

    def __init__(
        self,
        stream: TextIO | None = None,
        width: int = BAR_WIDTH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.is_tty = self.stream.isatty()
        self._clock = clock
        self._started = clock()
        self._shown: tuple[str, str] | None = None
        self._last = ""

    def show(self, fraction: float, text: str) -> None:
        """Draw the bar at `fraction` (0..1) with `text` beside it, if either changed."""
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * self.width)
        shown = f"[{'#' * filled}{'-' * (self.width - filled)}] {fraction:4.0%}"
        if (shown, text) == self._shown:
            return
        self._shown = (shown, text)
        line = f"{shown} {self._clock() - self._started:.1f}s {text}"
        if self.is_tty:
            # Pad with spaces so a shorter line fully covers the previous one.
            padding = " " * max(len(self._last) - len(line), 0)
            self.stream.write(f"\r{line}{padding}")
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()
        self._last = line

    def close(self) -> None:
        """End the redrawn line so later output starts on a line of its own."""
        if self.is_tty and self._last:
            self.stream.write("\n")
            self.stream.flush()
        self._last = ""
        self._shown = None

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
