"""A one-line progress bar for stderr, small enough not to need a dependency.

On a terminal the line is redrawn in place with `\\r`; anywhere else (a log file, CI) each
change is written as its own plain line, so the output stays readable there.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TextIO

BAR_WIDTH = 24


class ProgressLine:
    """`[##########--------------]  42% <text>` on `stream` (stderr by default)."""

    def __init__(self, stream: TextIO | None = None, width: int = BAR_WIDTH) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.is_tty = self.stream.isatty()
        self._last = ""

    def show(self, fraction: float, text: str) -> None:
        """Draw the bar at `fraction` (0..1) with `text` beside it, if anything changed."""
        fraction = min(max(fraction, 0.0), 1.0)
        filled = round(fraction * self.width)
        line = f"[{'#' * filled}{'-' * (self.width - filled)}] {fraction:4.0%} {text}"
        if line == self._last:
            return
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

    def __enter__(self) -> ProgressLine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
